import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ColumnCache } from '../../../src/modules/datasets/column-cache.js';
import { COLUMN_NAMES, readColumns, type ReadColumnsResult } from '../../../src/modules/datasets/columnar.js';
import { ingestCsv } from '../../../src/modules/datasets/ingest.js';

const FILE = '/work/shared/data/binance-BTC_USDT-1h.csv';

const plain = (r: ReadColumnsResult) => ({
  rows: r.rows,
  fromMs: r.fromMs,
  toMs: r.toMs,
  columns: Object.fromEntries(COLUMN_NAMES.map((c) => [c, [...new Float64Array(r.columns[c])]])),
});

describe('dataset column cache', () => {
  test('the ingest hands over exactly the stored columns, and cached ranges equal ranged reads of the file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'column-cache-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const r = await ingestCsv(createReadStream(FILE, { highWaterMark: 7777 }), { dir, maxBytes: 1 << 30 });
    for (const c of COLUMN_NAMES) {
      assert.ok(r.columns[c] instanceof SharedArrayBuffer);
      assert.equal(r.columns[c].byteLength, r.rows * 8, `${c} is exactly as long as the data`);
    }
    const cache = new ColumnCache(1 << 30);
    cache.set('k', { rows: r.rows, columns: r.columns });
    assert.deepEqual(plain(cache.read('k')!), plain(await readColumns(r.file)));
    const ts = new Float64Array(r.columns.ts);
    const ranges = [
      { fromMs: ts[100], toMs: ts[200] },
      { fromMs: ts[100] + 1, toMs: ts[200] - 1 },
      { fromMs: ts[r.rows - 5] },
      { toMs: ts[3] },
      { fromMs: ts[r.rows - 1] + 1 },
      { fromMs: ts[10], toMs: ts[5] },
    ];
    for (const range of ranges) assert.deepEqual(plain(cache.read('k', range)!), plain(await readColumns(r.file, range)), JSON.stringify(range));
    // A slice is a copy: the cached columns stay as they were.
    new Float64Array(cache.read('k', ranges[0])!.columns.close).fill(0);
    assert.equal(new Float64Array(cache.read('k')!.columns.close)[100], new Float64Array(r.columns.close)[100]);
  });

  test('least recently used entries leave first; the budget holds; too large entries are not cached', () => {
    const entry = (rows: number) => ({ rows, columns: Object.fromEntries(COLUMN_NAMES.map((c) => [c, new SharedArrayBuffer(rows * 8)])) as never });
    const perRow = 8 * COLUMN_NAMES.length;
    const cache = new ColumnCache(100 * perRow);
    cache.set('a', entry(40));
    cache.set('b', entry(40));
    assert.ok(cache.read('a')); // a is now the most recently used
    cache.set('c', entry(40));
    assert.equal(cache.read('b'), undefined, 'b was the least recently used');
    assert.ok(cache.read('a') && cache.read('c'));
    assert.deepEqual(cache.size, { entries: 2, bytes: 80 * perRow });
    cache.set('big', entry(51));
    assert.equal(cache.read('big'), undefined, 'more than half the budget');
    cache.delete('a');
    assert.deepEqual(cache.size, { entries: 1, bytes: 40 * perRow });
    assert.equal(new ColumnCache(0).fits(1), false);
  });
});
