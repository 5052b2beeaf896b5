/** POST /datasets/download: exchange history paged into a dataset; rate limits waited out; interrupted jobs resume. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build, createUser, injectAs } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { datasetDownloads } from '../../../src/db/schema/orders.js';
import { envFor } from '../orders/helpers.js';

const HOUR = 3_600_000;
const START = Date.UTC(2024, 0, 1);
const COUNT = 1200;

let fake: FakeExchange;
let dataDir: string;
before(async () => {
  fake = await startFakeExchange({ exchange: 'binance' });
  const rows: Array<[number, string, string, string, string, string]> = [];
  for (let i = 0; i < COUNT; i++) {
    const close = String(40000 + (i % 50) * 10);
    rows.push([START + i * HOUR, String(40000 + (i % 7)), String(41000 + i), String(39000 - (i % 11)), close, String(1 + i)]);
  }
  fake.engine.candles.set('BTC/USDT', rows);
  dataDir = await mkdtemp(path.join(tmpdir(), 'downloads-'));
});
after(async () => {
  await fake.close();
  await rm(dataDir, { recursive: true, force: true });
});

const env = () => envFor([fake], { DATA_DIR: dataDir });
const body = { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '1h', since: new Date(START).toISOString(), until: new Date(START + COUNT * HOUR).toISOString() };

async function waitDone(app: Parameters<typeof injectAs>[0], token: string, id: string) {
  await app.downloadService.wait(id);
  const res = await injectAs(app, token, { url: `/datasets/download/${id}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

describe('dataset download from an exchange', () => {
  test('pages fetchOHLCV into a dataset (job row first, progress, rate limit waited out)', async (t) => {
    const app = await build(t, { env: env() });
    const user = await createUser(app);
    fake.failNext({ kind: 'rateLimit', path: 'klines', retryAfterSeconds: 1 });
    const before = fake.requests.filter((r) => r.path.includes('klines')).length;
    const res = await injectAs(app, user.token, { method: 'POST', url: '/datasets/download', payload: body });
    assert.equal(res.statusCode, 202, res.body);
    assert.ok(['pending', 'running'].includes(res.json().status));
    const job = await waitDone(app, user.token, res.json().id);
    assert.equal(job.status, 'done', JSON.stringify(job));
    assert.equal(job.candles, COUNT);
    // 3 pages of 500 plus the rate-limited attempt
    assert.equal(fake.requests.filter((r) => r.path.includes('klines')).length - before, 4);
    const dataset = (await injectAs(app, user.token, { url: `/datasets/${job.datasetId}` })).json();
    assert.equal(dataset.rows, COUNT);
    assert.equal(dataset.timeframe, '1h');
    const other = await createUser(app);
    assert.equal((await injectAs(app, other.token, { url: `/datasets/download/${job.id}` })).statusCode, 404);
  });

  test('an interrupted job resumes from its last page at startup', async (t) => {
    const first = await build(t, { env: env() });
    const user = await createUser(first);
    const resumeAt = START + 700 * HOUR;
    const [row] = await first.database.db
      .insert(datasetDownloads)
      .values({ userId: user.id, exchange: 'binance', symbol: 'BTC/USDT', timeframe: '1h', name: 'resumed', sinceMs: START, untilMs: START + COUNT * HOUR, nextSinceMs: resumeAt, candles: 700, status: 'running' })
      .returning();
    // the file holds the 700 candles the row accounts for, plus 3 written just before the "crash"
    const lines = ['timestamp,open,high,low,close,volume'];
    for (let i = 0; i < 703; i++) lines.push(`${new Date(START + i * HOUR).toISOString()},1,2,0.5,1.5,10`);
    await mkdir(path.join(dataDir, 'downloads'), { recursive: true });
    await writeFile(path.join(dataDir, 'downloads', `${row.id}.csv`), `${lines.join('\n')}\n`);
    await first.close();

    const marker = fake.requests.length;
    const second = await build(t, { env: env(), keepData: true });
    const job = await waitDone(second, user.token, row.id);
    assert.equal(job.status, 'done', JSON.stringify(job));
    assert.equal(job.candles, COUNT);
    const dataset = (await injectAs(second, user.token, { url: `/datasets/${job.datasetId}` })).json();
    assert.equal(dataset.rows, COUNT);
    assert.equal(dataset.quality.duplicates, 0, 'the 3 rows past the resume point were dropped before resuming');
    assert.equal(dataset.quality.sourceRows, COUNT);
    assert.equal(fake.requests.slice(marker).filter((r) => r.path.includes('klines')).length, 1, 'only the missing 500 candles were fetched');
  });

  test('validation: unknown symbol or timeframe, empty range: 400 and no job', async (t) => {
    const app = await build(t, { env: env() });
    const user = await createUser(app);
    for (const bad of [{ ...body, symbol: 'NOPE/USDT' }, { ...body, timeframe: '7m' }, { ...body, until: body.since }, { ...body, exchange: 'kraken' }]) {
      const res = await injectAs(app, user.token, { method: 'POST', url: '/datasets/download', payload: bad });
      assert.equal(res.statusCode, 400, res.body);
    }
  });
});
