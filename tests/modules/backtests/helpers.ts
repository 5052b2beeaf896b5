import type { TestContext } from 'node:test';
import { Writable } from 'node:stream';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/app.js';
import { testConfig } from '../../../src/config.js';
import { testDatabase, truncateAll } from '../../db.js';
import { build, injectAs } from '../../helper.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const TEST_WORKER = pathToFileURL(path.join(here, 'fixtures', 'test.worker.ts')).href;
export const SMA_CROSS = JSON.parse(await readFile(path.join(here, '../../../examples/strategies/sma-cross.json'), 'utf8')) as Record<string, unknown>;
export const BTC_1H = '/work/shared/data/binance-BTC_USDT-1h.csv';

/** The SMA-cross document under another name (the test worker reacts to "hold", "crash-throw", "crash-exit"). */
export const named = (name: string) => ({ ...SMA_CROSS, name });

/** One temp COLUMNAR_DIR per test file. */
const columnar = await mkdtemp(path.join(tmpdir(), 'backtests-columnar-'));
after(() => rm(columnar, { recursive: true, force: true }));

export interface Opts {
  env?: Record<string, string | undefined>;
  keepData?: boolean;
  /** Use the test worker (crash/hold strategies). */
  testWorker?: boolean;
}

/** The app on this file's database; with `testWorker` the pool runs tests/.../fixtures/test.worker.ts. */
export async function buildBt(t: TestContext, opts: Opts = {}): Promise<FastifyInstance> {
  // Polling a result counts against the per-user rate limit; a slow (loaded) machine must not turn that into 429s.
  const env = { COLUMNAR_DIR: columnar, RATE_LIMIT_MAX: '1000000', ...opts.env };
  if (!opts.testWorker) return build(t, { env, keepData: opts.keepData });
  const { database } = await testDatabase();
  if (!opts.keepData) await truncateAll(database);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const app = await buildApp(testConfig({ LOG_LEVEL: 'silent', DB_MIGRATE_ON_START: 'false', ...env }), { database, logStream: sink, workerFile: TEST_WORKER });
  t.after(() => app.close());
  await app.ready();
  return app;
}

export async function uploadCsv(app: FastifyInstance, token: string, file = BTC_1H): Promise<string> {
  const res = await injectAs(app, token, { method: 'POST', url: '/datasets?name=btc-1h', headers: { 'content-type': 'text/csv' }, payload: await readFile(file) });
  if (res.statusCode !== 201) throw new Error(`upload failed: ${res.statusCode} ${res.body}`);
  return res.json().id as string;
}

export async function startBt(app: FastifyInstance, token: string, payload: Record<string, unknown>) {
  return injectAs(app, token, { method: 'POST', url: '/backtest/start', payload });
}

export async function getResult(app: FastifyInstance, token: string, id: string, query = '') {
  const res = await injectAs(app, token, { method: 'GET', url: `/backtest/result/${id}${query}` });
  if (res.statusCode !== 200) throw new Error(`result: ${res.statusCode} ${res.body}`);
  return res.json();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `done(result)`; gives up (throws) after `limitMs` so a stuck job fails the test instead of hanging. */
export async function pollUntil(app: FastifyInstance, token: string, id: string, done: (r: { status: string }) => boolean, limitMs = 60_000, query = '') {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const r = await getResult(app, token, id, query);
    if (done(r)) return r;
    if (Date.now() > deadline) throw new Error(`backtest ${id} still ${r.status} (progress ${r.progress}) after ${limitMs} ms`);
    await sleep(50);
  }
}

export const finished = (r: { status: string }) => r.status !== 'queued' && r.status !== 'running';
export const waitFinished = (app: FastifyInstance, token: string, id: string, query = '') => pollUntil(app, token, id, finished, 60_000, query);
export const waitRunning = (app: FastifyInstance, token: string, id: string) => pollUntil(app, token, id, (r) => r.status === 'running');
