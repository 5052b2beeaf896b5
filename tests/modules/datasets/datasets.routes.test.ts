import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request as httpRequest } from 'node:http';
import { eq } from 'drizzle-orm';
import type { TestContext } from 'node:test';
import { build, createUser, injectAs, type TestApp } from '../../helper.js';
import { usingPostgres } from '../../db.js';
import { datasets } from '../../../src/db/schema/datasets.js';
import { auditLog } from '../../../src/db/schema/users.js';
import type { BusEvent } from '../../../src/plugins/event-bus.js';
import { decimalString } from '../../../src/modules/datasets/datasets.service.js';

const DATA = '/work/shared/data';

/** SOURCES.md: rows, first and last bar (epoch ms), sha256 where listed. */
const SOURCES: Record<string, { rows: number; from: number; to: number; sha256?: string; timeframe: string }> = {
  'GOOG.csv': { rows: 2148, from: Date.UTC(2004, 7, 19), to: Date.UTC(2013, 2, 1), timeframe: '1d', sha256: '60e961a567490b157f71888df9e6afb36190a34a40a6286aa38988e2343f1b1a' },
  'EURUSD.csv': { rows: 5000, from: Date.UTC(2017, 3, 19, 9), to: Date.UTC(2018, 1, 7, 15), timeframe: '1h', sha256: '81e977905a006cc8fbc034ebdb83c999a8ed6ba00191dc7ea5ef5b386fb74a82' },
  'BTCUSD.csv': { rows: 156, from: Date.UTC(2012, 0, 31), to: Date.UTC(2024, 11, 31), timeframe: '1M', sha256: 'ff253d97891080e5226f99d8a8f334621cecf33c5e1d8e5278cb5728024552d9' },
  'binance-BTC_USDT-5m.csv': { rows: 65_741, from: 1606780800000, to: 1626555900000, timeframe: '5m', sha256: '33f34b6a240b274c4ea3c9a44a4955498ea661685fb3178d14a03af5ec4c5348' },
  'binance-ETH_USDT-5m.csv': { rows: 65_742, from: 1606780800000, to: 1626556200000, timeframe: '5m', sha256: 'a7d8d34db164977224edca4d8b1613c46c125fe916edb8e577b6b927b4c85315' },
  'binance-BTC_USDT-1h.csv': { rows: 5482, from: 1606780800000, to: 1626552000000, timeframe: '1h', sha256: '08f8306f0d4b04d4c9ad798838a6decd3a7d9787ccbcb34488ac7fc1626efd56' },
  'binance-BTC_USDT-1m.csv': { rows: 43_080, from: 1573820460000, to: 1576412400000, timeframe: '1m', sha256: 'a544cc3b3cba1ae5a97e760de0fd75771386dab40dd043756ef2626ea64cb2d6' },
};

interface Dirs {
  root: string;
  files: string;
  columnar: string;
  outside: string;
}

/** A temp DATASETS_DIR (GOOG.csv, BTCUSD.csv, a bad CSV, a symlink leaving it) and COLUMNAR_DIR. */
async function dirs(t: TestContext): Promise<Dirs> {
  const root = await realpath(await mkdtemp(join(tmpdir(), 'datasets-routes-')));
  t.after(() => rm(root, { recursive: true, force: true }));
  const d = { root, files: join(root, 'datasets'), columnar: join(root, 'columnar'), outside: join(root, 'outside') };
  await mkdir(d.files);
  await mkdir(d.outside);
  await copyFile(join(DATA, 'GOOG.csv'), join(d.files, 'GOOG.csv'));
  await copyFile(join(DATA, 'BTCUSD.csv'), join(d.files, 'BTCUSD.csv'));
  await writeFile(join(d.files, 'broken.csv'), 'timestamp,open,high,low,close\n1,1,1,1,1\n2,1,0.5,1,1\n');
  await writeFile(join(d.files, 'notes.txt'), 'not a dataset');
  await writeFile(join(d.outside, 'secret.csv'), 'timestamp,open,high,low,close\n1,1,1,1,1\n');
  await symlink(join(d.outside, 'secret.csv'), join(d.files, 'escape.csv'));
  await symlink('/etc/passwd', join(d.files, 'passwd.csv'));
  return d;
}

async function setup(t: TestContext, env: Record<string, string> = {}) {
  const d = await dirs(t);
  const app = await build(t, { env: { DATASETS_DIR: d.files, COLUMNAR_DIR: d.columnar, ...env } });
  return { app, d };
}

const csvUpload = (app: TestApp, token: string, payload: string | Buffer | Readable, query = '') =>
  injectAs(app, token, { method: 'POST', url: `/datasets${query}`, headers: { 'content-type': 'text/csv' }, payload });

function multipart(fileName: string, content: Buffer | string, fields: Record<string, string> = {}, fieldName = 'file') {
  const boundary = `----datasets${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${fieldName}"; filename="${fileName}"\r\ncontent-type: text/csv\r\n\r\n`));
  parts.push(Buffer.from(content));
  parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

const rowsOf = (app: TestApp) => app.database.db.select().from(datasets);
const columnarFiles = async (d: Dirs) => (await readdir(d.columnar).catch(() => [] as string[])).sort();

async function assertNothingStored(app: TestApp, d: Dirs, what: string): Promise<void> {
  assert.deepEqual(await rowsOf(app), [], `${what}: no dataset row left`);
  assert.deepEqual(await columnarFiles(d), [], `${what}: no columnar file (or temp file) left`);
}

describe('POST /datasets', () => {
  test('raw text/csv body: 201 with the dataset, a ready row and its columnar file', async (t) => {
    const { app, d } = await setup(t);
    const u = await createUser(app);
    const res = await csvUpload(app, u.token, await readFile(join(DATA, 'GOOG.csv')), '?name=Google%20daily');
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    const src = SOURCES['GOOG.csv'];
    assert.match(body.id, /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.location, `/datasets/${body.id}`);
    assert.equal(body.name, 'Google daily');
    assert.equal(body.source, 'upload');
    assert.equal(body.status, 'ready');
    assert.equal(body.rows, src.rows);
    assert.equal(body.bytes, 97_833);
    assert.equal(body.sha256, src.sha256);
    assert.equal(body.from, new Date(src.from).toISOString());
    assert.equal(body.to, new Date(src.to).toISOString());
    assert.equal(body.timeframe, '1d');
    assert.equal(body.timeframeMs, 86_400_000);
    assert.equal(body.quality.rows, src.rows);
    assert.equal(body.quality.hasVolume, true);
    assert.ok(body.quality.gaps.weekendOnly > 0, 'weekend gaps of stock data are counted');
    assert.ok(body.warnings.some((w: string) => /gap/.test(w)), 'gaps are reported as warnings, not refused');
    assert.equal(body.file, null);

    const [row] = await rowsOf(app);
    assert.equal(row.id, body.id);
    assert.equal(row.userId, u.id);
    assert.equal(row.status, 'ready');
    assert.equal(row.storageFile, `${src.sha256}.bin`);
    assert.deepEqual(await columnarFiles(d), [`${src.sha256}.bin`]);
    const [entry] = await app.database.db.select().from(auditLog).where(eq(auditLog.action, 'dataset.imported'));
    assert.equal(entry.targetId, body.id);
    assert.equal(entry.actorId, u.id);

    const got = await injectAs(app, u.token, { method: 'GET', url: `/datasets/${body.id}` });
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), body);

    // a charset parameter is fine; the default name is upload.csv
    const withCharset = await injectAs(app, u.token, {
      method: 'POST',
      url: '/datasets',
      headers: { 'content-type': 'text/csv; charset=utf-8' },
      payload: 'timestamp,open,high,low,close\n1700000000000,1,2,0.5,1\n',
    });
    assert.equal(withCharset.statusCode, 201, withCharset.body);
    assert.equal(withCharset.json().name, 'upload.csv');
  });

  test('multipart field "file": name from the file name (or ?name / a name field); 5m Binance data with its gaps', async (t) => {
    const { app } = await setup(t);
    const u = await createUser(app);
    const csv = await readFile(join(DATA, 'binance-BTC_USDT-5m.csv'));
    const mp = multipart('binance-BTC_USDT-5m.csv', csv);
    const res = await injectAs(app, u.token, { method: 'POST', url: '/datasets', ...mp });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    const src = SOURCES['binance-BTC_USDT-5m.csv'];
    assert.equal(body.name, 'binance-BTC_USDT-5m.csv');
    assert.equal(body.rows, src.rows);
    assert.equal(body.sha256, src.sha256);
    assert.equal(body.timeframe, '5m');
    assert.equal(body.quality.gaps.count, 6);
    assert.equal(body.quality.gaps.missingBars, 177);
    assert.equal(body.quality.zeroVolume, 28);

    const named = multipart('x.csv', 'timestamp,open,high,low,close,volume\n1700000000000,1,2,0.5,1.5,10\n', { name: 'from a field' });
    const res2 = await injectAs(app, u.token, { method: 'POST', url: '/datasets', ...named });
    assert.equal(res2.statusCode, 201, res2.body);
    assert.equal(res2.json().name, 'from a field');
    assert.equal(res2.json().rows, 1);

    const res3 = await injectAs(app, u.token, { method: 'POST', url: '/datasets?name=query%20wins', ...named });
    assert.equal(res3.json().name, 'query wins');
    assert.equal(res3.json().sha256, res2.json().sha256, 'identical content, identical hash');
  });

  test('every CSV in /work/shared/data loads through the route with the SOURCES.md row counts and ranges', async (t) => {
    const { app, d } = await setup(t);
    const u = await createUser(app);
    for (const [file, src] of Object.entries(SOURCES)) {
      const res = await csvUpload(app, u.token, await readFile(join(DATA, file)), `?name=${file}`);
      assert.equal(res.statusCode, 201, `${file}: ${res.body}`);
      const body = res.json();
      assert.equal(body.rows, src.rows, file);
      assert.equal(body.from, new Date(src.from).toISOString(), file);
      assert.equal(body.to, new Date(src.to).toISOString(), file);
      assert.equal(body.timeframe, src.timeframe, file);
      assert.equal(body.sha256, src.sha256, file);
    }
    assert.equal((await columnarFiles(d)).length, Object.keys(SOURCES).length);
  });

  const badCsv: Array<[string, string, number, RegExp]> = [
    ['empty body', '', 1, /empty file/],
    ['header only', 'timestamp,open,high,low,close,volume\n', 2, /no data rows/],
    ['missing close column', 'timestamp,open,high,low,volume\n1,1,1,1,1\n', 1, /missing column: close/],
    ['no time column', 'open,high,low,close\n1,1,1,1\n', 1, /missing time column/],
    ['duplicate column', 'timestamp,open,high,low,close,close\n1,1,1,1,1,1\n', 1, /twice|more than once|duplicate/i],
    ['separate date and time columns', 'date,time,open,high,low,close\n2024-01-01,10:00,1,1,1,1\n', 1, /separate date and time/],
    ['wrong field count', 'timestamp,open,high,low,close\n1,1,1,1,1\n2,1,1,1\n', 3, /expected 5 fields, found 4/],
    ['non-numeric value', 'timestamp,open,high,low,close\n1,1,1,1,1\n2,1,abc,1,1\n', 3, /non-numeric high value "abc"/],
    ['NaN', 'timestamp,open,high,low,close\n1,1,1,1,1\n2,1,1,1,NaN\n', 3, /non-numeric close value/],
    ['empty value', 'timestamp,open,high,low,close\n1,1,1,1,1\n2,1,1,,1\n', 3, /empty low value/],
    ['negative price', 'timestamp,open,high,low,close\n1,1,1,1,1\n2,-1,1,1,1\n', 3, /negative open/],
    ['negative volume', 'timestamp,open,high,low,close,volume\n1,1,1,1,1,1\n2,1,1,1,1,-5\n', 3, /negative volume/],
    ['unparsable timestamp', 'timestamp,open,high,low,close\n2024-01-01,1,1,1,1\n2024-13-01,1,1,1,1\n', 3, /unparsable timestamp "2024-13-01"/],
    ['epoch unit change', 'timestamp,open,high,low,close\n1700000000,1,1,1,1\n1700000000000,1,1,1,1\n', 3, /not in epoch seconds/],
    ['high below low', 'timestamp,open,high,low,close\n1,1,1,1,1\n2,1,1,2,1\n\n3,1,1,1,1\n', 3, /high 1 is below low 2/],
    ['unterminated quote', 'timestamp,open,high,low,close\n1,"1,1,1,1\n', 2, /unterminated quoted field/],
    ['line over 64 KiB', `timestamp,open,high,low,close\n1,1,1,1,1${' '.repeat(70_000)}\n`, 2, /longer than 64 KiB/],
  ];

  test('each class of bad CSV: 400 INVALID_CSV naming the line and why; no row, no file', async (t) => {
    const { app, d } = await setup(t);
    const u = await createUser(app);
    for (const [what, csv, line, reason] of badCsv) {
      const res = await csvUpload(app, u.token, csv);
      assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
      assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
      const p = res.json();
      assert.equal(p.code, 'INVALID_CSV', what);
      assert.equal(p.line, line, `${what}: line`);
      assert.match(p.reason, reason, what);
      assert.match(p.detail, new RegExp(`^Invalid CSV at line ${line}: `), what);
      await assertNothingStored(app, d, what);
    }
    // the same through multipart
    const mp = multipart('bad.csv', 'timestamp,open,high,low,close\n1,1,1,1,1\n2,1,1,x,1\n');
    const res = await injectAs(app, u.token, { method: 'POST', url: '/datasets', ...mp });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().line, 3);
    await assertNothingStored(app, d, 'multipart');
  });

  test('an error near the end of a large upload (line 60,000 of the 5m file) still stores nothing', async (t) => {
    const { app, d } = await setup(t);
    const u = await createUser(app);
    const lines = (await readFile(join(DATA, 'binance-BTC_USDT-5m.csv'), 'utf8')).split('\n');
    lines[59_999] = lines[59_999].replace(/,[^,]+$/, ',oops');
    const res = await csvUpload(app, u.token, Readable.from([lines.join('\n')]));
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().line, 60_000);
    assert.equal(res.json().reason, 'non-numeric volume value "oops"');
    await assertNothingStored(app, d, 'late error');
  });

  test('over DATASET_MAX_BYTES: 413 DATASET_TOO_LARGE, declared or streamed, raw or multipart; nothing stored', async (t) => {
    const { app, d } = await setup(t, { DATASET_MAX_BYTES: '4096' });
    const u = await createUser(app);
    const csv = await readFile(join(DATA, 'GOOG.csv'));
    const declared = await csvUpload(app, u.token, csv);
    assert.equal(declared.statusCode, 413, declared.body);
    assert.equal(declared.json().code, 'DATASET_TOO_LARGE');
    assert.equal(declared.json().maxBytes, 4096);
    await assertNothingStored(app, d, 'declared');

    // no content-length: the ingest stops at the limit
    const streamed = await csvUpload(app, u.token, Readable.from([csv.subarray(0, 3000), csv.subarray(3000, 6000), csv.subarray(6000)]));
    assert.equal(streamed.statusCode, 413, streamed.body);
    assert.equal(streamed.json().code, 'DATASET_TOO_LARGE');
    await assertNothingStored(app, d, 'streamed');

    const mp = multipart('GOOG.csv', csv);
    const viaForm = await injectAs(app, u.token, { method: 'POST', url: '/datasets', ...mp });
    assert.equal(viaForm.statusCode, 413, viaForm.body);
    await assertNothingStored(app, d, 'multipart');

    // a small one still fits
    const ok = await csvUpload(app, u.token, csv.subarray(0, csv.indexOf('\n', 2000) + 1));
    assert.equal(ok.statusCode, 201, ok.body);
  });

  test('other content types: 415; multipart without a "file" field: 400; no token: 401', async (t) => {
    const { app, d } = await setup(t);
    const u = await createUser(app);
    const json = await injectAs(app, u.token, { method: 'POST', url: '/datasets', payload: { csv: 'a,b' } });
    assert.equal(json.statusCode, 415);
    assert.equal(json.json().code, 'UNSUPPORTED_MEDIA_TYPE');
    const wrongField = multipart('GOOG.csv', 'timestamp,open,high,low,close\n1,1,1,1,1\n', {}, 'data');
    const res = await injectAs(app, u.token, { method: 'POST', url: '/datasets', ...wrongField });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().code, 'UPLOAD_FILE_MISSING');
    const anon = await app.inject({ method: 'POST', url: '/datasets', headers: { 'content-type': 'text/csv' }, payload: 'x' });
    assert.equal(anon.statusCode, 401);
    await assertNothingStored(app, d, 'refused requests');
  });

  test('progress is published on user:<id> as dataset.progress, ending with ready', async (t) => {
    const { app } = await setup(t);
    const u = await createUser(app);
    const events: BusEvent[] = [];
    const off = app.eventBus.subscribe(`user:${u.id}`, (e) => events.push(e));
    t.after(off);
    const csv = await readFile(join(DATA, 'binance-BTC_USDT-5m.csv'));
    const chunks = [];
    for (let i = 0; i < csv.length; i += 65_536) chunks.push(csv.subarray(i, i + 65_536)); // as a network would deliver it
    const res = await csvUpload(app, u.token, Readable.from(chunks));
    assert.equal(res.statusCode, 201);
    const id = res.json().id;
    assert.ok(events.every((e) => e.type === 'dataset.progress' && e.datasetId === id));
    const phases = events.map((e) => e.phase);
    assert.equal(phases[0], 'importing');
    assert.equal(phases.at(-1), 'ready');
    const bytes = events.map((e) => e.bytes as number);
    assert.ok(events.length >= 5, '0, 1, 2, 3 MiB and ready');
    for (let i = 1; i < bytes.length; i++) assert.ok(bytes[i] > bytes[i - 1], 'bytes grow');
    assert.equal(events.at(-1)!.rows, SOURCES['binance-BTC_USDT-5m.csv'].rows);
    assert.equal(events.at(-1)!.bytes, 3_947_300);

    events.length = 0;
    await csvUpload(app, u.token, 'timestamp,open,high,low,close\n1,1,1,1,x\n');
    assert.equal(events.at(-1)!.phase, 'failed');
    assert.equal(events.at(-1)!.line, 2);
  });
});

describe('over a real socket', () => {
  test('a bad line early in a large upload gets its 400 answer (the request is not reset)', async (t) => {
    const { app, d } = await setup(t);
    const u = await createUser(app);
    const { port } = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
    const csv = await readFile(join(DATA, 'binance-BTC_USDT-5m.csv'));
    const bad = Buffer.concat([Buffer.from('timestamp,open,high,low,close,volume\n1,2,3,x,4,5\n'), csv, csv]);
    const res = await rawRequest(port, { method: 'POST', path: '/datasets', headers: { authorization: `Bearer ${u.token}`, 'content-type': 'text/csv', 'content-length': String(bad.length) } }, bad);
    assert.equal(res.status, 400, res.body);
    assert.equal(JSON.parse(res.body).line, 2);
    await assertNothingStored(app, d, 'socket upload');
  });

  test('a client that goes away mid-upload leaves no row and no file', async (t) => {
    const { app, d } = await setup(t);
    const u = await createUser(app);
    const { port } = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
    const csv = await readFile(join(DATA, 'binance-BTC_USDT-5m.csv'));
    const req = httpRequest({
      host: '127.0.0.1',
      port: Number(port),
      method: 'POST',
      path: '/datasets?name=interrupted',
      headers: { authorization: `Bearer ${u.token}`, 'content-type': 'text/csv', 'content-length': String(csv.length) },
    });
    req.on('error', () => {});
    req.write(csv.subarray(0, 200_000));
    // the import has started once its row exists
    for (let i = 0; i < 500 && (await rowsOf(app)).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const [row] = await rowsOf(app);
    assert.equal(row.status, 'importing');
    assert.equal(row.name, 'interrupted');
    req.destroy();
    for (let i = 0; i < 500 && (await rowsOf(app)).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    await assertNothingStored(app, d, 'client gone');
  });
});

describe('file datasets (DATASETS_DIR)', () => {
  test('listed read-only as file:<name>, ingested on first use, cached, shared by sha256', async (t) => {
    const { app, d } = await setup(t);
    const u = await createUser(app);
    const list = await injectAs(app, u.token, { method: 'GET', url: '/datasets' });
    assert.equal(list.statusCode, 200);
    const names = list.json().items.map((i: { id: string }) => i.id);
    // safe *.csv only: no notes.txt, no symlinks leaving the directory
    assert.deepEqual(names, ['file:BTCUSD.csv', 'file:GOOG.csv', 'file:broken.csv']);
    const goog = list.json().items[1];
    assert.equal(goog.source, 'file');
    assert.equal(goog.status, 'available');
    assert.equal(goog.file.bytes, 97_833);
    assert.equal(goog.rows, null);

    const first = await injectAs(app, u.token, { method: 'GET', url: '/datasets/file:GOOG.csv' });
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(first.json().id, 'file:GOOG.csv');
    assert.equal(first.json().status, 'ready');
    assert.equal(first.json().rows, 2148);
    assert.equal(first.json().sha256, SOURCES['GOOG.csv'].sha256);
    const rows1 = await rowsOf(app);
    assert.equal(rows1.length, 1);
    assert.equal(rows1[0].source, 'file');

    // second use: the cached row, no new import
    const again = await injectAs(app, u.token, { method: 'GET', url: '/datasets/GOOG.csv' });
    assert.equal(again.statusCode, 200);
    assert.deepEqual(again.json(), first.json());
    assert.equal((await rowsOf(app)).length, 1);
    const listed = (await injectAs(app, u.token, { method: 'GET', url: '/datasets' })).json().items[1];
    assert.equal(listed.status, 'ready');
    assert.equal(listed.rows, 2148);

    // another user reuses the stored columns (one file for both), an identical upload too
    const v = await createUser(app);
    const other = await injectAs(app, v.token, { method: 'GET', url: '/datasets/file:GOOG.csv' });
    assert.equal(other.json().sha256, SOURCES['GOOG.csv'].sha256);
    await csvUpload(app, v.token, await readFile(join(DATA, 'GOOG.csv')));
    assert.deepEqual(await columnarFiles(d), [`${SOURCES['GOOG.csv'].sha256}.bin`]);

    // a changed file is ingested again
    await writeFile(join(d.files, 'GOOG.csv'), 'timestamp,open,high,low,close\n1700000000000,1,2,0.5,1\n1700000060000,1,2,0.5,1\n');
    const changed = await injectAs(app, u.token, { method: 'GET', url: '/datasets/file:GOOG.csv' });
    assert.equal(changed.json().rows, 2);
    assert.equal(changed.json().timeframe, '1m');
    const mine = (await rowsOf(app)).filter((r) => r.userId === u.id);
    assert.equal(mine.length, 1, 'the stale cache row was replaced');

    // bad file: 400 naming the line, nothing cached
    const broken = await injectAs(app, u.token, { method: 'GET', url: '/datasets/file:broken.csv' });
    assert.equal(broken.statusCode, 400);
    assert.equal(broken.json().code, 'INVALID_CSV');
    assert.equal(broken.json().line, 3);
    assert.equal((await rowsOf(app)).filter((r) => r.fileName === 'broken.csv').length, 0);

    // read-only
    const del = await injectAs(app, u.token, { method: 'DELETE', url: '/datasets/file:GOOG.csv' });
    assert.equal(del.statusCode, 409);
    assert.equal(del.json().code, 'DATASET_READ_ONLY');
    const missing = await injectAs(app, u.token, { method: 'GET', url: '/datasets/file:nope.csv' });
    assert.equal(missing.statusCode, 404);
  });

  test('every path-traversal form through the API is 400 and discloses no path', async (t) => {
    const { app, d } = await setup(t);
    const u = await createUser(app);
    const forms = [
      '..%2F..%2Fetc%2Fpasswd',
      'file:..%2F..%2Fetc%2Fpasswd',
      '..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd.csv',
      'file:..%2Foutside%2Fsecret.csv',
      'file:..',
      'file:.',
      '%2Fetc%2Fpasswd',
      'file:%2Fetc%2Fpasswd',
      `file:${encodeURIComponent(join(d.outside, 'secret.csv'))}`,
      'file:..%5C..%5Cwindows%5Cwin.ini',
      'file:C%3A%5Cwindows%5Cwin.ini',
      'file:%252e%252e%252fetc%252fpasswd.csv',
      'file:escape.csv',
      'file:passwd.csv',
      'escape.csv',
      'file:GOOG.csv%00.txt',
      'file:GOOG%00.csv',
      'file:.hidden.csv',
    ];
    for (const form of forms) {
      for (const [method, url] of [
        ['GET', `/datasets/${form}`],
        ['GET', `/datasets/${form}/candles`],
        ['DELETE', `/datasets/${form}`],
      ] as const) {
        const res = await injectAs(app, u.token, { method, url });
        assert.equal(res.statusCode, 400, `${method} ${url}: ${res.body}`);
        assert.ok(!res.body.includes(d.root), `${url}: no server path in the answer`);
        assert.ok(!res.body.includes('root:'), `${url}: nothing of /etc/passwd`);
      }
    }
    assert.deepEqual(await rowsOf(app), []);

    // Raw paths as a client sends them without normalising (curl --path-as-is): `..` segments reach the route as ids.
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(address);
    for (const path of ['/datasets/..', '/datasets/../candles', '/datasets/file:..', '/datasets/%2e%2e', '/datasets/..%2f..%2fetc%2fpasswd', '/datasets/file:%2fetc%2fpasswd']) {
      const { status, body } = await rawGet(port, path, u.token);
      assert.equal(status, 400, `${path}: ${body}`);
      assert.match(body, /INVALID_DATASET_NAME/);
    }
  });
});

function rawGet(port: string, path: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: Number(port), path, method: 'GET', headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('ownership, delete, open()', () => {
  test("user A cannot see, read, delete or open user B's dataset", async (t) => {
    const { app } = await setup(t);
    const a = await createUser(app);
    const b = await createUser(app);
    const up = await csvUpload(app, b.token, await readFile(join(DATA, 'BTCUSD.csv')), '?name=mine');
    const id = up.json().id;
    for (const [method, url] of [
      ['GET', `/datasets/${id}`],
      ['GET', `/datasets/${id}/candles`],
      ['DELETE', `/datasets/${id}`],
    ] as const) {
      const res = await injectAs(app, a.token, { method, url });
      assert.equal(res.statusCode, 404, `${method} ${url}`);
      assert.equal(res.json().code, 'DATASET_NOT_FOUND');
      assert.ok(!res.body.includes('mine'));
    }
    const listA = (await injectAs(app, a.token, { method: 'GET', url: '/datasets' })).json();
    assert.ok(!listA.items.some((i: { id: string }) => i.id === id));
    await assert.rejects(app.datasetsService.open(a.id, id), (err: { statusCode?: number }) => err.statusCode === 404);
    // unknown id: the same answer
    const unknown = await injectAs(app, a.token, { method: 'GET', url: '/datasets/00000000-0000-4000-8000-000000000000' });
    assert.equal(unknown.statusCode, 404);
    // B still has it
    assert.equal((await injectAs(app, b.token, { method: 'GET', url: `/datasets/${id}` })).statusCode, 200);
    assert.equal((await app.datasetsService.open(b.id, id)).rows, 156);
  });

  test('list: own imports newest first, then files; paginated as one list', async (t) => {
    const { app } = await setup(t);
    const u = await createUser(app);
    const ids: string[] = [];
    for (const n of ['one', 'two', 'three']) {
      ids.push((await csvUpload(app, u.token, `timestamp,open,high,low,close\n1700000000000,1,2,0.5,1\n`, `?name=${n}`)).json().id);
    }
    const all = (await injectAs(app, u.token, { method: 'GET', url: '/datasets' })).json();
    assert.equal(all.total, 6);
    assert.deepEqual(
      all.items.map((i: { name: string }) => i.name),
      ['three', 'two', 'one', 'BTCUSD.csv', 'GOOG.csv', 'broken.csv'],
    );
    const page = (await injectAs(app, u.token, { method: 'GET', url: '/datasets?limit=2&offset=2' })).json();
    assert.deepEqual(page.items.map((i: { name: string }) => i.name), ['one', 'BTCUSD.csv']);
    assert.equal(page.total, 6);
    const tail = (await injectAs(app, u.token, { method: 'GET', url: '/datasets?limit=10&offset=5' })).json();
    assert.deepEqual(tail.items.map((i: { name: string }) => i.name), ['broken.csv']);
    const bad = await injectAs(app, u.token, { method: 'GET', url: '/datasets?limit=0' });
    assert.equal(bad.statusCode, 400);

    // another module's download goes through the same import and is listed with its source
    const dl = await app.datasetsService.importUpload(u.id, {
      name: 'BTC/USDT 1h from binance',
      source: 'download',
      stream: Readable.from(['timestamp,open,high,low,close,volume\n', '1700000000000,1,2,0.5,1,3\n1700003600000,1,2,0.5,1,3\n']),
    });
    assert.equal(dl.source, 'download');
    assert.equal(dl.timeframe, '1h');
    const first = (await injectAs(app, u.token, { method: 'GET', url: '/datasets?limit=1' })).json();
    assert.deepEqual([first.items[0].id, first.items[0].source, first.total], [dl.id, 'download', 7]);
  });

  test('delete: 204, owner only; the columnar file stays while another dataset references it', async (t) => {
    const { app, d } = await setup(t);
    const a = await createUser(app);
    const b = await createUser(app);
    const csv = await readFile(join(DATA, 'GOOG.csv'));
    const sha = SOURCES['GOOG.csv'].sha256!;
    const idA = (await csvUpload(app, a.token, csv)).json().id;
    const idA2 = (await csvUpload(app, a.token, csv)).json().id;
    const idB = (await csvUpload(app, b.token, csv)).json().id;
    assert.deepEqual(await columnarFiles(d), [`${sha}.bin`]);

    assert.equal((await injectAs(app, b.token, { method: 'DELETE', url: `/datasets/${idA}` })).statusCode, 404);
    const del = await injectAs(app, a.token, { method: 'DELETE', url: `/datasets/${idA}` });
    assert.equal(del.statusCode, 204);
    assert.equal(del.body, '');
    assert.equal((await injectAs(app, a.token, { method: 'GET', url: `/datasets/${idA}` })).statusCode, 404);
    assert.equal((await injectAs(app, a.token, { method: 'DELETE', url: `/datasets/${idA}` })).statusCode, 404);
    assert.deepEqual(await columnarFiles(d), [`${sha}.bin`], 'still referenced by A2 and B');
    assert.equal((await app.datasetsService.open(b.id, idB)).rows, 2148);

    assert.equal((await injectAs(app, a.token, { method: 'DELETE', url: `/datasets/${idA2}` })).statusCode, 204);
    assert.deepEqual(await columnarFiles(d), [`${sha}.bin`], 'still referenced by B');
    // a file dataset with the same content is a reference too
    assert.equal((await injectAs(app, a.token, { method: 'GET', url: '/datasets/file:GOOG.csv' })).statusCode, 200);
    assert.equal((await injectAs(app, b.token, { method: 'DELETE', url: `/datasets/${idB}` })).statusCode, 204);
    assert.deepEqual(await columnarFiles(d), [`${sha}.bin`], 'still referenced by the file dataset');
    assert.equal((await app.datasetsService.open(a.id, 'file:GOOG.csv')).rows, 2148);

    const other = (await csvUpload(app, a.token, 'timestamp,open,high,low,close\n1700000000000,1,2,0.5,1\n')).json();
    assert.equal((await columnarFiles(d)).length, 2);
    assert.equal((await injectAs(app, a.token, { method: 'DELETE', url: `/datasets/${other.id}` })).statusCode, 204);
    assert.deepEqual(await columnarFiles(d), [`${sha}.bin`], 'the last reference takes its file along');
    const audits = await app.database.db.select().from(auditLog).where(eq(auditLog.action, 'dataset.deleted'));
    assert.equal(audits.length, 4);
    assert.deepEqual(
      audits.map((x) => (x.details as { fileRemoved: boolean }).fileRemoved).sort(),
      [false, false, false, true],
    );
  });

  test('open(): SharedArrayBuffer columns with the right rows, inclusive range slicing, file refs, 409 when not ready', async (t) => {
    const { app } = await setup(t);
    const u = await createUser(app);
    const text = await readFile(join(DATA, 'binance-BTC_USDT-5m.csv'), 'utf8');
    const id = (await csvUpload(app, u.token, text)).json().id;
    const full = await app.datasetsService.open(u.id, id);
    const src = SOURCES['binance-BTC_USDT-5m.csv'];
    assert.equal(full.id, id);
    assert.equal(full.sha256, src.sha256);
    assert.equal(full.rows, src.rows);
    assert.equal(full.fromMs, src.from);
    assert.equal(full.toMs, src.to);
    assert.equal(full.timeframeMs, 300_000);
    for (const c of ['ts', 'open', 'high', 'low', 'close', 'volume'] as const) {
      assert.ok(full.columns[c] instanceof SharedArrayBuffer, c);
      assert.equal(full.columns[c].byteLength, src.rows * 8, c);
    }
    // values equal the CSV text (independent parse of line 1001)
    const line = text.split('\n')[1000].split(',').map(Number);
    const at = (c: keyof typeof full.columns, i: number) => new Float64Array(full.columns[c])[i];
    assert.deepEqual([at('ts', 999), at('open', 999), at('high', 999), at('low', 999), at('close', 999), at('volume', 999)], line);

    // inclusive bounds; bounds between bars
    const from = src.from + 10 * 300_000;
    const slice = await app.datasetsService.open(u.id, id, { fromMs: from, toMs: from + 11 * 300_000 });
    assert.equal(slice.rows, 12);
    assert.equal(slice.fromMs, from);
    assert.equal(slice.toMs, from + 11 * 300_000);
    assert.equal(new Float64Array(slice.columns.close)[0], at('close', 10));
    const between = await app.datasetsService.open(u.id, id, { fromMs: from + 1, toMs: from + 300_000 - 1 });
    assert.equal(between.rows, 0);
    assert.equal(between.fromMs, null);
    // the maintenance gap 2020-12-21 14:05 → 18:00 holds no bars
    const gap = await app.datasetsService.open(u.id, id, { fromMs: Date.UTC(2020, 11, 21, 14, 6), toMs: Date.UTC(2020, 11, 21, 17, 59) });
    assert.equal(gap.rows, 0);

    const file = await app.datasetsService.open(u.id, 'file:BTCUSD.csv', { fromMs: Date.UTC(2024, 0, 1) });
    assert.equal(file.id, 'file:BTCUSD.csv');
    assert.equal(file.rows, 12);
    assert.equal(file.timeframe, '1M');
    await assert.rejects(app.datasetsService.open(u.id, 'file:../x.csv'), (err: { statusCode?: number }) => err.statusCode === 400);
    await assert.rejects(app.datasetsService.open(u.id, 'file:nope.csv'), (err: { statusCode?: number }) => err.statusCode === 404);

    const [importing] = await app.database.db
      .insert(datasets)
      .values({ userId: u.id, name: 'in progress', source: 'upload', status: 'importing' })
      .returning();
    await assert.rejects(app.datasetsService.open(u.id, importing.id), (err: { statusCode?: number; code?: string }) => {
      assert.equal(err.statusCode, 409);
      assert.equal(err.code, 'DATASET_NOT_READY');
      return true;
    });
    const candles = await injectAs(app, u.token, { method: 'GET', url: `/datasets/${importing.id}/candles` });
    assert.equal(candles.statusCode, 409);
  });

  test('candles: decimal strings from the stored columns, range, limit and next', async (t) => {
    const { app } = await setup(t);
    const u = await createUser(app);
    const id = (await csvUpload(app, u.token, await readFile(join(DATA, 'binance-BTC_USDT-1h.csv')))).json().id;
    const res = await injectAs(app, u.token, { method: 'GET', url: `/datasets/${id}/candles?from=2020-12-01T01:00:00Z&limit=3` });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    const lines = (await readFile(join(DATA, 'binance-BTC_USDT-1h.csv'), 'utf8')).split('\n');
    assert.equal(body.items.length, 3);
    const [ts, o, h, l, c, v] = lines[2].split(',');
    assert.deepEqual(body.items[0], { time: new Date(Number(ts)).toISOString(), open: o, high: h, low: l, close: c, volume: v });
    assert.equal(body.next, '2020-12-01T04:00:00.000Z');
    const byMs = (await injectAs(app, u.token, { method: 'GET', url: `/datasets/${id}/candles?from=1606784400000&to=1606791600000` })).json();
    assert.equal(byMs.items.length, 3);
    assert.equal(byMs.next, null);
    const bad = await injectAs(app, u.token, { method: 'GET', url: `/datasets/${id}/candles?from=yesterday` });
    assert.equal(bad.statusCode, 400);
  });

  test('decimalString never uses exponents and round-trips', () => {
    const cases: Array<[number, string]> = [
      [1e-7, '0.0000001'],
      [-2.5e-8, '-0.000000025'],
      [1.5e21, '1500000000000000000000'],
      [123.456, '123.456'],
      [0, '0'],
      [-0, '0'],
      [1.2345678901234566e-7, '0.00000012345678901234566'],
      [5e-324, `0.${'0'.repeat(323)}5`],
    ];
    for (const [v, s] of cases) {
      assert.equal(decimalString(v), s);
      assert.equal(Number(decimalString(v)), v === 0 ? 0 : v);
    }
  });
});

describe('restart recovery', () => {
  test("rows left 'importing' by a stopped process are marked failed at start", async (t) => {
    const d = await dirs(t);
    const env = { DATASETS_DIR: d.files, COLUMNAR_DIR: d.columnar };
    const first = await build(t, { env });
    const u = await createUser(first);
    const db = first.database.db;
    const [stale] = await db
      .insert(datasets)
      .values({ userId: u.id, name: 'crashed', source: 'upload', status: 'importing', heartbeatAt: new Date(Date.now() - 10 * 60_000) })
      .returning();
    const [fresh] = await db.insert(datasets).values({ userId: u.id, name: 'another instance', source: 'upload', status: 'importing' }).returning();
    await first.close();

    const app = await build(t, { env, keepData: true });
    const got = await injectAs(app, u.token, { method: 'GET', url: `/datasets/${stale.id}` });
    assert.equal(got.statusCode, 200);
    assert.equal(got.json().status, 'failed');
    assert.match(got.json().error, /interrupted/);
    await assert.rejects(app.datasetsService.open(u.id, stale.id), (err: { code?: string }) => err.code === 'DATASET_NOT_READY');
    const [freshNow] = await app.database.db.select().from(datasets).where(eq(datasets.id, fresh.id));
    // The embedded database belongs to one process: everything importing is dead. On PostgreSQL another running
    // instance may own a row with a fresh heartbeat: it is left to the periodic sweep.
    assert.equal(freshNow.status, usingPostgres ? 'importing' : 'failed');
    // a failed dataset can be deleted
    assert.equal((await injectAs(app, u.token, { method: 'DELETE', url: `/datasets/${stale.id}` })).statusCode, 204);
  });

  test('the periodic sweep fails only imports whose heartbeat stopped', async (t) => {
    const { app } = await setup(t);
    const u = await createUser(app);
    const db = app.database.db;
    const [old] = await db
      .insert(datasets)
      .values({ userId: u.id, name: 'dead', source: 'upload', status: 'importing', heartbeatAt: new Date(Date.now() - 5 * 60_000) })
      .returning();
    const [alive] = await db.insert(datasets).values({ userId: u.id, name: 'alive', source: 'upload', status: 'importing' }).returning();
    assert.equal(await app.datasetsService.recoverInterrupted(60_000), 1);
    const byId = new Map((await rowsOf(app)).map((r) => [r.id, r]));
    assert.equal(byId.get(old.id)!.status, 'failed');
    assert.equal(byId.get(alive.id)!.status, 'importing');
    assert.equal(await app.datasetsService.recoverInterrupted(60_000), 0, 'failed rows stay as they are');
  });

  test('parallel first uses of one file by one user ingest it once', async (t) => {
    const { app } = await setup(t);
    const u = await createUser(app);
    const results = await Promise.all(
      [1, 2, 3].map(() => injectAs(app, u.token, { method: 'GET', url: '/datasets/file:GOOG.csv' })),
    );
    for (const r of results) assert.equal(r.json().rows, 2148);
    assert.equal((await rowsOf(app)).length, 1);
  });
});

function rawRequest(
  port: string,
  opts: { method: string; path: string; headers: Record<string, string> },
  body: Buffer,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: Number(port), ...opts }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
