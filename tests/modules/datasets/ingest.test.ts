import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HttpProblem } from '../../../src/errors.js';
import { ingestCsv } from '../../../src/modules/datasets/ingest.js';
import type { IngestResult } from '../../../src/modules/datasets/ingest.js';
import {
  COLUMN_NAMES,
  ColumnarFormatError,
  readColumnarHeader,
  readColumns,
  writeColumns,
} from '../../../src/modules/datasets/columnar.js';

const DATA = '/work/shared/data';
const MAX = 64 * 1024 * 1024;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ingest-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function* chunked(buf: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield new Uint8Array(buf.subarray(i, i + size)); // fresh copies
}

async function* randomChunks(buf: Buffer, seed: number, maxSize: number): AsyncGenerator<Buffer> {
  let s = seed >>> 0;
  for (let i = 0; i < buf.length; ) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const n = 1 + (s % maxSize);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

const ingestText = (text: string | Buffer, dir: string, chunk = 65536) =>
  ingestCsv(chunked(Buffer.from(text), chunk), { dir, maxBytes: MAX });

/** Without the path-dependent members, for comparing runs in different directories. */
const comparable = (r: IngestResult) => ({ ...r, file: undefined, reused: undefined });

const sha256sum = (file: string) => execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0];

/** Independent oracle: a naive full-string parse of a simple CSV with Number()/Date.parse. */
function naiveParse(text: string): number[][] {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const header = lines[0].split(',').map((h) => h.toLowerCase());
  const idx = ['open', 'high', 'low', 'close', 'volume'].map((n) => header.indexOf(n));
  const tIdx = header[0] === '' ? 0 : header.indexOf('timestamp');
  const cols: number[][] = [[], [], [], [], [], []];
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    const raw = f[tIdx];
    const ts = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw.length === 10 ? raw : `${raw.replace(' ', 'T')}Z`);
    cols[0].push(ts);
    idx.forEach((j, k) => cols[k + 1].push(Number(f[j])));
  }
  return cols;
}

async function assertInvalid(text: string | Buffer, line: number, reason: RegExp, chunk = 65536): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ingest-bad-'));
  try {
    await assert.rejects(ingestText(text, dir, chunk), (err: unknown) => {
      assert.ok(err instanceof HttpProblem, `expected HttpProblem, got ${String(err)}`);
      assert.equal(err.statusCode, 400);
      assert.equal(err.code, 'INVALID_CSV');
      assert.equal(err.extensions?.line, line, `line for ${JSON.stringify(String(text).slice(0, 80))}: ${err.message}`);
      assert.match(String(err.extensions?.reason), reason);
      assert.match(err.message, new RegExp(`line ${line}\\b`));
      return true;
    });
    assert.deepEqual(await readdir(dir), [], 'nothing (not even a temp file) is left behind');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const H = 'timestamp,open,high,low,close,volume\n';
const R1 = '1606780800000,10,12,9,11,5\n';
const R2 = '1606781100000,11,13,10,12,6\n';

describe('bad CSV is refused with 400 INVALID_CSV naming the line', () => {
  test('empty input, header only, blank lines only', async () => {
    await assertInvalid('', 1, /empty file/);
    await assertInvalid('\n\n\r\n', 1, /empty file/);
    await assertInvalid(H, 2, /no data rows/);
    await assertInvalid(`${H}\n\n`, 4, /no data rows/);
  });

  test('missing columns in the header', async () => {
    await assertInvalid('timestamp,open,high,close\n1,2,3,4\n', 1, /missing column: low/);
    await assertInvalid('timestamp,open,close,volume\n1,2,3,4\n', 1, /missing columns: high, low/);
    await assertInvalid('open,high,low,close,volume\n1,2,0.5,1,3\n', 1, /missing time column/);
    await assertInvalid('foo,bar,baz\nx,y,z\n', 1, /missing time column/);
    await assertInvalid('timestamp,open,high,low,close,Close\n', 1, /duplicates/);
    await assertInvalid('Date,Time,Open,High,Low,Close,Volume\n2020.01.02,00:00,1,2,0.5,1,3\n', 1, /separate date and time/);
  });

  test('wrong field count', async () => {
    await assertInvalid(`${H}${R1}1606781100000,11,13,10,12\n`, 3, /expected 6 fields, found 5/);
    await assertInvalid(`${H}${R1}${R2}1606781400000,11,13,10,12,6,7\n`, 4, /expected 6 fields, found 7/);
    await assertInvalid(`${H}${R1}${R2}1606781400000\n`, 4, /found 1/);
  });

  test('non-numeric, NaN, infinite and empty values', async () => {
    await assertInvalid(`${H}${R1}1606781100000,11,abc,10,12,6\n`, 3, /non-numeric high value "abc"/);
    await assertInvalid(`${H}1606780800000,NaN,12,9,11,5\n`, 2, /non-numeric open value "NaN"/);
    await assertInvalid(`${H}${R1}${R2}1606781400000,11,13,10,Infinity,6\n`, 4, /non-numeric close/);
    await assertInvalid(`${H}${R1}1606781100000,11,13,10,12,\n`, 3, /empty volume value/);
    await assertInvalid(`${H}${R1}1606781100000,11,13,1e,12,1\n`, 3, /non-numeric low/);
    await assertInvalid(`${H}${R1}1606781100000,11,13,10,12,1.2.3\n`, 3, /non-numeric volume/);
  });

  test('negative price or volume', async () => {
    await assertInvalid(`${H}${R1}1606781100000,11,13,-10,12,6\n`, 3, /negative low/);
    await assertInvalid(`${H}1606780800000,10,12,9,11,-0.5\n`, 2, /negative volume/);
  });

  test('unparsable timestamps', async () => {
    await assertInvalid(`${H}${R1}yesterday,11,13,10,12,6\n`, 3, /unparsable timestamp "yesterday"/);
    await assertInvalid(',Open,High,Low,Close\n2020-13-01,1,2,0.5,1\n', 2, /unparsable timestamp "2020-13-01"/);
    await assertInvalid(',Open,High,Low,Close\n2020-01-01,1,2,0.5,1\n2021-02-29,1,2,0.5,1\n', 3, /unparsable/);
    await assertInvalid('date,open,high,low,close\n2020-01-01T25:00,1,2,0.5,1\n', 2, /unparsable/);
    await assertInvalid('date,open,high,low,close\n2020-01-01 10:00:00+0x,1,2,0.5,1\n', 2, /unparsable/);
    await assertInvalid(`${H}${R1},11,13,10,12,6\n`, 3, /unparsable timestamp ""/);
    // the epoch unit is fixed by the first row: a seconds value after milliseconds is an error, not a silent mix
    await assertInvalid(`${H}${R1}${R2}1606781400,11,13,10,12,6\n`, 4, /not in epoch milliseconds/);
  });

  test('high below low', async () => {
    await assertInvalid(`${H}${R1}${R2}1606781400000,11,9,10,9.5,6\n`, 4, /high 9 is below low 10/);
  });

  test('quoting errors and over-long lines', async () => {
    await assertInvalid(`${H}${R1}"1606781100000,11,13,10,12,6\n`, 3, /unterminated quoted field/);
    await assertInvalid(`${H}${R1}1606781100000,11,13,10,12,${'1'.repeat(70_000)}\n`, 3, /longer than 64 KiB/, 4096);
    // the same line inside one big chunk, and completing a carried partial line
    await assertInvalid(`${H}${R1}1606781100000,11,13,10,12,${'1'.repeat(70_000)}\n${R2}`, 3, /longer than 64 KiB/, 1 << 20);
    await assertInvalid(`${H}${R1}1606781100000,11,13,10,12,${' '.repeat(70_000)}\n${R2}`, 3, /longer than 64 KiB/, 40_000);
  });

  test('line numbers count CRLF lines and blank lines, and do not depend on chunking', async () => {
    const text = `${H}${R1}\n${R2}1606781400000,1,2,3,4,5\n`.replace(/\n/g, '\r\n');
    for (const chunk of [1, 7, 65536]) await assertInvalid(text, 5, /high 2 is below low 3/, chunk);
  });
});

describe('limits and cancellation', () => {
  test('input over maxBytes -> 413 DATASET_TOO_LARGE, nothing stored', async (t) => {
    const dir = await tempDir(t);
    const buf = await readFile(join(DATA, 'GOOG.csv'));
    await assert.rejects(ingestCsv(chunked(buf, 4096), { dir, maxBytes: 50_000 }), (err: unknown) => {
      assert.ok(err instanceof HttpProblem);
      assert.equal(err.statusCode, 413);
      assert.equal(err.code, 'DATASET_TOO_LARGE');
      assert.equal(err.title, 'Content Too Large');
      return true;
    });
    assert.deepEqual(await readdir(dir), []);
    // exactly at the limit is allowed
    const ok = await ingestCsv(chunked(buf, 4096), { dir, maxBytes: buf.length });
    assert.equal(ok.bytes, buf.length);
  });

  test('abort signal stops the ingest and leaves nothing behind; progress is reported', async (t) => {
    const dir = await tempDir(t);
    const ac = new AbortController();
    const seen: number[] = [];
    const stream = createReadStream(join(DATA, 'binance-BTC_USDT-5m.csv'), { highWaterMark: 65536 });
    await assert.rejects(
      ingestCsv(stream, {
        dir,
        maxBytes: MAX,
        signal: ac.signal,
        onProgress: (b) => {
          seen.push(b);
          if (seen.length === 3) ac.abort();
        },
      }),
      { name: 'AbortError' },
    );
    assert.deepEqual(seen, [65536, 131072, 196608]);
    assert.ok(stream.destroyed, 'the source stream is released');
    assert.deepEqual(await readdir(dir), []);
  });
});

test('abort reaches a stalled Readable (no further chunk arrives)', { timeout: 10_000 }, async (t) => {
  const dir = await tempDir(t);
  const stalled = new Readable({ read() {} });
  stalled.push(H);
  const ac = new AbortController();
  const done = ingestCsv(stalled, { dir, maxBytes: MAX, signal: ac.signal, onProgress: () => setImmediate(() => ac.abort()) });
  await assert.rejects(done, { name: 'AbortError' });
  assert.ok(stalled.destroyed);
  assert.deepEqual(await readdir(dir), []);
});

describe('timestamps', () => {
  const expected = [Date.UTC(2021, 0, 1, 0, 0), Date.UTC(2021, 0, 1, 1, 0), Date.UTC(2021, 0, 1, 2, 0)];
  const body = (ts: string[]) => `time,open,high,low,close,volume\n${ts.map((s, i) => `${s},1,2,0.5,1.5,${i}`).join('\n')}\n`;
  const cases: Record<string, string[]> = {
    'epoch ms': expected.map(String),
    'epoch s': expected.map((x) => String(x / 1000)),
    'epoch µs': expected.map((x) => String(x * 1000)),
    'ISO with Z': ['2021-01-01T00:00:00Z', '2021-01-01T01:00:00.000Z', '2021-01-01T02:00:00Z'],
    'ISO with offsets': ['2021-01-01T01:00:00+01:00', '2020-12-31T20:00:00-05:00', '2021-01-01T07:30+0530'],
    'zone-less is UTC': ['2021-01-01 00:00:00', '2021-01-01 01:00', '2021-01-01T02:00:00.000'],
  };
  for (const [name, ts] of Object.entries(cases)) {
    test(name, async (t) => {
      const dir = await tempDir(t);
      const r = await ingestText(body(ts), dir);
      const { columns } = await readColumns(r.file);
      assert.deepEqual([...new Float64Array(columns.ts)], expected);
      assert.equal(r.timeframe, '1h');
      assert.equal(r.timeframeMs, 3_600_000);
    });
  }

  test('date-only and fractional seconds', async (t) => {
    const dir = await tempDir(t);
    const r = await ingestText('Date,Open,High,Low,Close\n2024-02-28,1,2,1,2\n2024-02-29,1,2,1,2\n2024/03/01,1,2,1,2\n', dir);
    const { columns } = await readColumns(r.file);
    assert.deepEqual([...new Float64Array(columns.ts)], [Date.UTC(2024, 1, 28), Date.UTC(2024, 1, 29), Date.UTC(2024, 2, 1)]);
    assert.equal(r.timeframe, '1d');
    const r2 = await ingestText('timestamp,open,high,low,close\n1700000000.25,1,2,1,2\n2023-11-14T22:13:21.5Z,1,2,1,2\n', dir);
    const c2 = await readColumns(r2.file);
    assert.deepEqual([...new Float64Array(c2.columns.ts)], [1700000000250, 1700000001500]);
  });
});

describe('parsing details', () => {
  test('numbers are parsed exactly like Number() (fast path and fallback)', async (t) => {
    const dir = await tempDir(t);
    const values = ['0.1', '1.005', '123456.789012', '0.000000012345', '9007199254740993', '1e3', '2.5E-4',
      '12345678901234567890.123', '+7.25', '0', '64854.00', '1.0716', '96515.0'];
    const lines = values.map((v, i) => `${1_600_000_000_000 + i * 60_000},${v},${v},${v},${v},${v}`);
    const r = await ingestText(`${H}${lines.join('\n')}\n`, dir);
    const { columns } = await readColumns(r.file);
    for (const name of ['open', 'high', 'low', 'close', 'volume'] as const) {
      assert.deepEqual([...new Float64Array(columns[name])], values.map(Number));
    }
  });

  test('BOM, semicolons, quotes, spaces, extra columns, missing final newline', async (t) => {
    const dir = await tempDir(t);
    const text = '\uFEFF"Date";"Open";"High";"Low";"Close";"Adj Close";"Volume"\n' +
      '"2020-01-02"; 10 ;12;9;11;11.1;100\n2020-01-03;11;13;10;12;12.1;"200"';
    for (const chunk of [1, 2, 5, 65536]) {
      const r = await ingestText(text, dir, chunk);
      assert.equal(r.rows, 2);
      const { columns } = await readColumns(r.file);
      assert.deepEqual([...new Float64Array(columns.open)], [10, 11]);
      assert.deepEqual([...new Float64Array(columns.close)], [11, 12]); // not "Adj Close"
      assert.deepEqual([...new Float64Array(columns.volume)], [100, 200]);
    }
  });

  test('headerless Binance kline dump (12 columns, open time in ms)', async (t) => {
    const dir = await tempDir(t);
    const text = '1606780800000,19695.87,19720.0,19578.96,19607.03,794.5,1606781099999,1.5e7,100,400,7.8e6,0\n' +
      '1606781100000,19607.02,19607.02,19505.9,19537.95,710.9,1606781399999,1.4e7,90,300,6.1e6,0\n';
    const r = await ingestText(text, dir);
    assert.equal(r.rows, 2);
    assert.equal(r.timeframe, '5m');
    const { columns } = await readColumns(r.file);
    assert.deepEqual([...new Float64Array(columns.high)], [19720, 19607.02]);
    assert.deepEqual([...new Float64Array(columns.volume)], [794.5, 710.9]);
  });

  test('no volume column: volume 0, flagged, not counted as zero-volume bars', async (t) => {
    const dir = await tempDir(t);
    const r = await ingestText(',Open,High,Low,Close\n2020-01-01,1,2,0.5,1.5\n2020-01-02,1,2,0.5,1.5\n', dir);
    assert.equal(r.quality.hasVolume, false);
    assert.equal(r.quality.zeroVolume, 0);
    assert.ok(r.warnings.includes('no volume column: volume set to 0'));
    const { columns } = await readColumns(r.file);
    assert.deepEqual([...new Float64Array(columns.volume)], [0, 0]);
  });

  test('warnings: out-of-order rows sorted (stable), duplicates keep the first, range/zero checks', async (t) => {
    const dir = await tempDir(t);
    const m = 60_000;
    const base = 1_700_000_040_000 - (1_700_000_040_000 % m);
    const rows = [
      [base + 2 * m, 3, 4, 2, 3.5, 1], // line 2
      [base, 1, 2, 0.5, 1.5, 1], // line 3: out of order
      [base + m, 2, 3, 1, 2.5, 0], // line 4: zero volume
      [base + m, 9, 9, 9, 9, 9], // line 5: duplicate with other values (dropped)
      [base, 1, 2, 0.5, 1.5, 1], // line 6: out of order + identical duplicate
      [base + 10 * m, 5, 6, 4, 7, 1], // line 7: close above high; 7 bars missing before it
      [base + 11 * m, 0, 6, 0, 5, 1], // line 8: zero price
    ];
    const r = await ingestText(`${H}${rows.map((x) => x.join(',')).join('\n')}\n`, dir);
    assert.equal(r.rows, 5);
    assert.equal(r.quality.sourceRows, 7);
    assert.equal(r.quality.duplicates, 2);
    assert.equal(r.quality.conflictingDuplicates, 1);
    assert.equal(r.quality.outOfOrder, 2);
    assert.equal(r.quality.firstLines.outOfOrder, 3);
    assert.equal(r.quality.priceOutsideRange, 1);
    assert.equal(r.quality.firstLines.priceOutsideRange, 7);
    assert.equal(r.quality.zeroVolume, 1);
    assert.equal(r.quality.firstLines.zeroVolume, 4);
    assert.equal(r.quality.nonPositivePrice, 1);
    assert.equal(r.quality.firstLines.nonPositivePrice, 8);
    assert.equal(r.timeframeMs, m);
    assert.deepEqual(r.quality.gaps, { count: 1, missingBars: 7, largestMs: 8 * m, weekendOnly: 0, first: [{ from: base + m * 2, to: base + 10 * m }] });
    assert.equal(r.warnings.length, 6);
    const { columns } = await readColumns(r.file);
    assert.deepEqual([...new Float64Array(columns.ts)], [base, base + m, base + 2 * m, base + 10 * m, base + 11 * m]);
    assert.deepEqual([...new Float64Array(columns.open)], [1, 2, 3, 5, 0]); // base+m keeps line 4, not line 5
    assert.equal(r.fromMs, base);
    assert.equal(r.toMs, base + 11 * m);
  });
});

interface Expect {
  rows: number;
  sha: string;
  timeframe: string;
  gaps?: { count: number; missingBars: number; largestMs: number; weekendOnly: number };
  zeroVolume?: number;
}
const FILES: Record<string, Expect> = {
  'GOOG.csv': { rows: 2148, sha: '60e961a567490b157f71888df9e6afb36190a34a40a6286aa38988e2343f1b1a', timeframe: '1d' },
  'EURUSD.csv': { rows: 5000, sha: '81e977905a006cc8fbc034ebdb83c999a8ed6ba00191dc7ea5ef5b386fb74a82', timeframe: '1h' },
  'BTCUSD.csv': {
    rows: 156, sha: 'ff253d97891080e5226f99d8a8f334621cecf33c5e1d8e5278cb5728024552d9', timeframe: '1M',
    gaps: { count: 0, missingBars: 0, largestMs: 0, weekendOnly: 0 },
  },
  'binance-BTC_USDT-5m.csv': {
    rows: 65741, sha: '33f34b6a240b274c4ea3c9a44a4955498ea661685fb3178d14a03af5ec4c5348', timeframe: '5m',
    gaps: { count: 6, missingBars: 177, largestMs: 285 * 60_000, weekendOnly: 0 }, zeroVolume: 28,
  },
  'binance-ETH_USDT-5m.csv': {
    rows: 65742, sha: 'a7d8d34db164977224edca4d8b1613c46c125fe916edb8e577b6b927b4c85315', timeframe: '5m',
    gaps: { count: 6, missingBars: 177, largestMs: 285 * 60_000, weekendOnly: 0 }, zeroVolume: 28,
  },
  'binance-BTC_USDT-1h.csv': {
    rows: 5482, sha: '08f8306f0d4b04d4c9ad798838a6decd3a7d9787ccbcb34488ac7fc1626efd56', timeframe: '1h',
    gaps: { count: 6, missingBars: 11, largestMs: 240 * 60_000, weekendOnly: 0 }, zeroVolume: 2,
  },
  'binance-BTC_USDT-1m.csv': {
    rows: 43080, sha: 'a544cc3b3cba1ae5a97e760de0fd75771386dab40dd043756ef2626ea64cb2d6', timeframe: '1m',
    gaps: { count: 1, missingBars: 120, largestMs: 121 * 60_000, weekendOnly: 0 }, zeroVolume: 0,
  },
};

describe('real data from /work/shared/data (SOURCES.md figures)', () => {
  for (const [name, exp] of Object.entries(FILES)) {
    test(name, async (t) => {
      const dir = await tempDir(t);
      const path = join(DATA, name);
      const r = await ingestCsv(createReadStream(path), { dir, maxBytes: MAX });
      assert.equal(r.rows, exp.rows);
      assert.equal(r.sha256, exp.sha);
      assert.equal(r.sha256, sha256sum(path));
      assert.equal(r.file, join(dir, `${exp.sha}.bin`));
      assert.equal(r.timeframe, exp.timeframe);
      assert.equal(r.quality.duplicates, 0);
      assert.equal(r.quality.outOfOrder, 0);
      assert.equal(r.quality.priceOutsideRange, 0);
      if (exp.gaps) {
        const { first, ...g } = r.quality.gaps;
        assert.deepEqual(g, exp.gaps);
        assert.equal(first.length, exp.gaps.count);
      }
      if (exp.zeroVolume !== undefined) assert.equal(r.quality.zeroVolume, exp.zeroVolume);
      // every value equals a naive Number()/Date.parse parse of the whole text
      const oracle = naiveParse(await readFile(path, 'utf8'));
      const { rows, columns } = await readColumns(r.file);
      assert.equal(rows, exp.rows);
      COLUMN_NAMES.forEach((col, k) => assert.deepEqual([...new Float64Array(columns[col])], oracle[k], col));
      assert.equal(r.fromMs, oracle[0][0]);
      assert.equal(r.toMs, oracle[0][exp.rows - 1]);
    });
  }

  test('5m gaps are the Binance maintenance windows listed in SOURCES.md', async (t) => {
    const dir = await tempDir(t);
    const r = await ingestCsv(createReadStream(join(DATA, 'binance-BTC_USDT-5m.csv')), { dir, maxBytes: MAX });
    const u = (mo: number, d: number, h: number, mi: number, y = 2021) => Date.UTC(y, mo - 1, d, h, mi);
    assert.deepEqual(r.quality.gaps.first, [
      { from: u(12, 21, 14, 5, 2020), to: u(12, 21, 18, 0, 2020) },
      { from: u(12, 25, 1, 55, 2020), to: u(12, 25, 3, 0, 2020) },
      { from: u(2, 11, 3, 40), to: u(2, 11, 5, 0) },
      { from: u(3, 6, 1, 55), to: u(3, 6, 3, 30) },
      { from: u(4, 20, 1, 55), to: u(4, 20, 4, 30) },
      { from: u(4, 25, 4, 0), to: u(4, 25, 8, 45) },
    ]);
  });

  test('GOOG: unnamed first column, daily, no weekend bars', async (t) => {
    const dir = await tempDir(t);
    const r = await ingestCsv(createReadStream(join(DATA, 'GOOG.csv')), { dir, maxBytes: MAX });
    assert.equal(r.fromMs, Date.UTC(2004, 7, 19));
    assert.equal(r.toMs, Date.UTC(2013, 2, 1));
    assert.equal(r.timeframeMs, 86_400_000);
    const ts = new Float64Array((await readColumns(r.file)).columns.ts);
    assert.ok(ts.every((x) => new Date(x).getUTCDay() % 6 !== 0));
    // independent count: steps of exactly Fri -> Mon are the weekend-only gaps; every other step > 1 day is a holiday
    let weekend = 0;
    let other = 0;
    for (let i = 1; i < ts.length; i++) {
      const d = ts[i] - ts[i - 1];
      if (d === 3 * 86_400_000 && new Date(ts[i - 1]).getUTCDay() === 5) weekend++;
      else if (d > 86_400_000) other++;
    }
    assert.ok(weekend > 300);
    assert.equal(r.quality.gaps.weekendOnly, weekend);
    assert.equal(r.quality.gaps.count, weekend + other);
    assert.ok(r.quality.gaps.largestMs <= 5 * 86_400_000);
  });
});

describe('chunk boundaries, CRLF, reuse', () => {
  for (const name of ['GOOG.csv', 'EURUSD.csv', 'BTCUSD.csv']) {
    test(`${name}: 1-byte, 7-byte, 64 KiB and random chunks give identical results`, async (t) => {
      const buf = await readFile(join(DATA, name));
      const results: IngestResult[] = [];
      const bins: Buffer[] = [];
      for (const source of [chunked(buf, 65536), chunked(buf, 1), chunked(buf, 7), randomChunks(buf, 42, 300)]) {
        const dir = await tempDir(t);
        const r = await ingestCsv(source, { dir, maxBytes: MAX });
        results.push(r);
        bins.push(await readFile(r.file));
      }
      for (let i = 1; i < results.length; i++) {
        assert.deepEqual(comparable(results[i]), comparable(results[0]));
        assert.ok(bins[i].equals(bins[0]));
      }
    });
  }

  test('5m file in 7-byte and random chunks equals the 64 KiB result', async (t) => {
    const buf = await readFile(join(DATA, 'binance-ETH_USDT-5m.csv'));
    const dirs = [await tempDir(t), await tempDir(t), await tempDir(t)];
    const a = await ingestCsv(chunked(buf, 65536), { dir: dirs[0], maxBytes: MAX });
    const b = await ingestCsv(chunked(buf, 7), { dir: dirs[1], maxBytes: MAX });
    const c = await ingestCsv(randomChunks(buf, 7, 5000), { dir: dirs[2], maxBytes: MAX });
    assert.deepEqual(comparable(b), comparable(a));
    assert.deepEqual(comparable(c), comparable(a));
    assert.ok((await readFile(b.file)).equals(await readFile(a.file)));
  });

  test('CRLF line endings give the same data as LF (only the hash differs)', async (t) => {
    const lf = await readFile(join(DATA, 'EURUSD.csv'), 'latin1');
    const crlf = Buffer.from(lf.replace(/\n/g, '\r\n'), 'latin1');
    const dir = await tempDir(t);
    const a = await ingestText(lf, dir);
    for (const chunk of [1, 7, 65536]) {
      const b = await ingestCsv(chunked(crlf, chunk), { dir, maxBytes: MAX });
      assert.deepEqual({ ...comparable(b), sha256: '', bytes: 0 }, { ...comparable(a), sha256: '', bytes: 0 });
      assert.equal(b.bytes, crlf.length);
      assert.notEqual(b.sha256, a.sha256);
      assert.ok((await readFile(b.file)).equals(await readFile(a.file)));
    }
  });

  test('string chunks and Readable.from are accepted', async (t) => {
    const dir = await tempDir(t);
    const r = await ingestCsv(Readable.from([H, R1.slice(0, 9), R1.slice(9), R2]), { dir, maxBytes: MAX });
    assert.equal(r.rows, 2);
  });

  test('the same content twice reuses the stored file', async (t) => {
    const dir = await tempDir(t);
    const a = await ingestText(`${H}${R1}${R2}`, dir);
    const b = await ingestText(`${H}${R1}${R2}`, dir, 3);
    assert.equal(a.reused, false);
    assert.equal(b.reused, true);
    assert.equal(a.file, b.file);
    assert.deepEqual(await readdir(dir), [`${a.sha256}.bin`]);
  });

  test('a truncated stored file is rewritten, not reused', async (t) => {
    const dir = await tempDir(t);
    const a = await ingestText(`${H}${R1}${R2}`, dir);
    await truncate(a.file, 70);
    const b = await ingestText(`${H}${R1}${R2}`, dir);
    assert.equal(b.reused, false);
    assert.equal((await readColumnarHeader(b.file)).rows, 2);
  });

  test('a failing write removes its temp file', async (t) => {
    const dir = await tempDir(t);
    const text = `${H}${R1}${R2}`;
    const sha = (await ingestText(text, await tempDir(t))).sha256;
    // a non-empty directory where the file should go makes the final rename fail
    await mkdir(join(dir, `${sha}.bin`, 'occupied'), { recursive: true });
    await assert.rejects(ingestText(text, dir));
    assert.deepEqual(await readdir(dir), [`${sha}.bin`]);
  });
});

describe('columnar format', () => {
  function sample(n: number) {
    const cols = Object.fromEntries(COLUMN_NAMES.map((c) => [c, new Float64Array(n)])) as Record<
      (typeof COLUMN_NAMES)[number],
      Float64Array
    >;
    for (let i = 0; i < n; i++) {
      cols.ts[i] = 1_000_000 + i * 1000;
      cols.open[i] = i + 0.1;
      cols.high[i] = i + 0.2;
      cols.low[i] = i + 0.05;
      cols.close[i] = i + 0.15;
      cols.volume[i] = i * 3;
    }
    return cols;
  }

  test('writeColumns/readColumns round trip, full and by range (inclusive bounds)', async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'x.bin');
    const cols = sample(1000);
    await writeColumns(file, cols);
    const bytes = await readFile(file);
    assert.equal(bytes.toString('latin1', 0, 7), 'OHLCV1\0');
    assert.equal(bytes.length, 64 + 1000 * 6 * 8);
    assert.deepEqual(await readColumnarHeader(file), { version: 1, rows: 1000, fromMs: 1_000_000, toMs: 1_999_000 });

    const all = await readColumns(file);
    assert.equal(all.rows, 1000);
    for (const c of COLUMN_NAMES) {
      assert.ok(all.columns[c] instanceof SharedArrayBuffer);
      assert.deepEqual(new Float64Array(all.columns[c]), cols[c]);
    }
    const check = async (range: { fromMs?: number; toMs?: number }, from: number, to: number) => {
      const r = await readColumns(file, range);
      assert.equal(r.rows, to - from, JSON.stringify(range));
      for (const c of COLUMN_NAMES) assert.deepEqual(new Float64Array(r.columns[c]), cols[c].slice(from, to));
      assert.equal(r.fromMs, to > from ? cols.ts[from] : null);
      assert.equal(r.toMs, to > from ? cols.ts[to - 1] : null);
    };
    await check({ fromMs: 1_010_000, toMs: 1_020_000 }, 10, 21); // exact bar times, both inclusive
    await check({ fromMs: 1_010_001, toMs: 1_020_999 }, 11, 21); // between bars
    await check({ fromMs: 1_500_000 }, 500, 1000);
    await check({ toMs: 1_000_500 }, 0, 1);
    await check({ fromMs: 0, toMs: 9e15 }, 0, 1000);
    await check({ fromMs: 2_000_000 }, 1000, 1000); // after the end
    await check({ toMs: 999_999 }, 0, 0); // before the start
    await check({ fromMs: 1_020_000, toMs: 1_010_000 }, 10, 10); // inverted
  });

  test('empty file, duplicate timestamps and invalid input', async (t) => {
    const dir = await tempDir(t);
    const empty = join(dir, 'empty.bin');
    await writeColumns(empty, sample(0));
    assert.deepEqual(await readColumns(empty, { fromMs: 0 }), {
      rows: 0, fromMs: null, toMs: null,
      columns: Object.fromEntries(COLUMN_NAMES.map((c) => [c, new SharedArrayBuffer(0)])),
    });
    const dup = sample(5);
    dup.ts.set([1, 2, 2, 2, 3]);
    const f = join(dir, 'dup.bin');
    await writeColumns(f, dup);
    assert.equal((await readColumns(f, { fromMs: 2, toMs: 2 })).rows, 3);

    const bad = sample(3);
    bad.ts.set([3, 2, 1]);
    await assert.rejects(writeColumns(join(dir, 'bad.bin'), bad), RangeError);
    await assert.rejects(writeColumns(join(dir, 'bad.bin'), { ...sample(3), volume: new Float64Array(2) }), RangeError);
    assert.ok(!(await readdir(dir)).some((n) => n.startsWith('bad')));

    await truncate(f, 100);
    await assert.rejects(readColumns(f), ColumnarFormatError);
    await writeFile(f, Buffer.alloc(200));
    await assert.rejects(readColumns(f), /bad magic/);
  });
});
