/**
 * Backtest benchmark: `npx tsx bench/backtest.ts [rows=1000000] [reps=3]` (BENCH_DATABASE_URL=postgres://... for
 * PostgreSQL; PGlite in a temp DATA_DIR otherwise).
 *
 * On a seeded CSV (bench/gen.ts, seed 42) it measures, each phase in its own child process (so peak RSS is per phase):
 *  (1) parse:    ingestCsv of the file (scanner -> columns, sha256, quality, columnar file) — the baseline throughput
 *  (2) e2e:      over HTTP on a listening app: POST /datasets (`curl --data-binary`, its own process), POST
 *                /backtest/start, the completion event on the `backtests` WebSocket channel, GET /backtest/result
 *                (target >= 0.9x parse-only rows/s); peak RSS growth of the process over its baseline, taken after a
 *                warm-up backtest of 5,000 rows (target <= 150 MB)
 *  (3) stored:   a backtest of the stored columnar dataset through the API (start -> succeeded), and its parts
 *                (open() of the columnar file; the worker on a pool thread), vs the limit: a plain typed-array
 *                SMA(10)/SMA(30) cross loop over Float64Arrays, same trading rules, timed in a process of its own
 *                (target >= 0.5x)
 *  (4) threads:  two backtests at once on a 2-thread pool vs one at a time (throughput ratio, target >= 1.8x)
 *  (5) live:     /health/live p99 with autocannon while the pool is saturated with queued backtests (target <= 10 ms),
 *                next to the idle p99; the server runs in a child process (bench/lib.ts), like production
 * Medians over `reps` are reported, side by side with their ratios.
 */
import { execFile, fork } from 'node:child_process';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCsv, smaCrossLoop } from './gen.js';
import { benchDatabase, load, median, postJson, startServer, type StartedServer } from './lib.js';

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const SMA_CROSS = JSON.parse(await readFile(path.join(root, 'examples/strategies/sma-cross.json'), 'utf8')) as Record<string, unknown>;
const FAST = 10;
const SLOW = 30;
const SECRET_ENV = {
  JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123456789',
  ENCRYPTION_KEY: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
  RATE_LIMIT_MAX: '1000000000',
  AUTH_RATE_LIMIT_MAX: '1000000',
  MAX_EVENT_LOOP_DELAY_MS: '0',
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
  REDIS_URL: undefined,
};

type Phase = 'parse' | 'loop' | 'e2e' | 'stored' | 'threads';
interface PhaseReport {
  phase: Phase;
  [k: string]: unknown;
}

// ---------------------------------------------------------------------------------------------------------------
// The limit: plain typed-array SMA cross (always in the market, reversal on each cross, next-open fills, no fees).
// ---------------------------------------------------------------------------------------------------------------
// Child side.

async function appEnv(dbUrl: string | undefined, extra: Record<string, string> = {}) {
  const env: Record<string, string | undefined> = { ...process.env, ...SECRET_ENV, DATABASE_URL: dbUrl, ...extra };
  if (!dbUrl) env.DATA_DIR = await mkdtemp(path.join(tmpdir(), 'bench-backtest-'));
  else env.COLUMNAR_DIR = await mkdtemp(path.join(tmpdir(), 'bench-backtest-col-'));
  return env;
}

/** Opens and migrates the database up front (a cold PGlite can take longer than Fastify's plugin timeout). */
async function premigrate(dbUrl: string | undefined, dataDir: string | undefined) {
  const { createDatabase } = await import('../src/db/client.js');
  const { migrateDatabase } = await import('../src/db/migrate.js');
  const database = await createDatabase({ url: dbUrl, dataDir });
  await migrateDatabase(database);
  return database;
}

async function startApp(dbUrl: string | undefined, extra: Record<string, string> = {}) {
  const { loadConfig } = await import('../src/config.js');
  const { buildApp } = await import('../src/app.js');
  const env = await appEnv(dbUrl, extra);
  const { config } = loadConfig(env);
  const database = await premigrate(dbUrl, env.DATA_DIR);
  const app = await buildApp(config, { database });
  app.addHook('onClose', async () => database.close());
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base: address, dir: env.DATA_DIR ?? env.COLUMNAR_DIR! };
}

async function userToken(base: string): Promise<string> {
  const creds = { email: `bench-${Math.random().toString(36).slice(2)}@example.com`, password: 'bench password 1234' };
  const reg = await postJson(`${base}/auth/register`, creds);
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.json)}`);
  const login = await postJson(`${base}/auth/login`, creds);
  if (login.status !== 200) throw new Error(`login: ${login.status}`);
  return login.json.accessToken as string;
}

async function api(base: string, token: string, method: string, url: string, body?: unknown) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, headers: res.headers };
}

/** POST /datasets the way the README shows it: `curl --data-binary @file` (a separate process, like a real client). */
async function upload(base: string, token: string, file: string): Promise<string> {
  const { stdout } = await execFileAsync('curl', [
    '-sS', '-X', 'POST', '--data-binary', `@${file}`,
    '-H', 'content-type: text/csv', '-H', `authorization: Bearer ${token}`,
    '-w', '\n%{http_code}', `${base}/datasets?name=bench`,
  ], { maxBuffer: 1 << 24 });
  const cut = stdout.lastIndexOf('\n');
  const status = Number(stdout.slice(cut + 1));
  const json = JSON.parse(stdout.slice(0, cut)) as { id: string };
  if (status !== 201) throw new Error(`upload: ${status} ${JSON.stringify(json)}`);
  return json.id;
}

/**
 * Waits for backtest events like a client should (not by polling): a WebSocket on GET /ws subscribed to the user's
 * `backtests` channel. One per token.
 */
const watchers = new Map<string, Promise<(id: string) => Promise<{ type: string; error?: string }>>>();
function watcher(base: string, token: string) {
  let w = watchers.get(token);
  if (w) return w;
  w = new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, { headers: { authorization: `Bearer ${token}` } });
    const done = new Map<string, { type: string; error?: string }>();
    const waiting = new Map<string, (e: { type: string; error?: string }) => void>();
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ op: 'subscribe', channel: 'backtests' })));
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { type: string; channel?: string; event?: { type: string; id: string; error?: string } };
      if (m.type === 'subscribed') {
        (ws as unknown as { _socket?: { unref(): void } })._socket?.unref(); // the child exits when its work is done
        resolve((id) => {
          const seen = done.get(id);
          return seen ? Promise.resolve(seen) : new Promise((res) => waiting.set(id, res));
        });
      }
      const e = m.event;
      if (m.type !== 'event' || !e || e.type === 'backtest.progress') return;
      const wake = waiting.get(e.id);
      if (wake) {
        waiting.delete(e.id);
        wake(e);
      } else done.set(e.id, e);
    });
  });
  watchers.set(token, w);
  return w;
}

async function backtest(base: string, token: string, datasetId: string): Promise<{ id: string; result: any }> {
  const finished = await watcher(base, token);
  const start = await api(base, token, 'POST', '/backtest/start', { datasetId, strategy: SMA_CROSS, params: { fast: FAST, slow: SLOW } });
  if (start.status !== 202) throw new Error(`start: ${start.status} ${JSON.stringify(start.json)}`);
  const id = start.json.id as string;
  const event = await finished(id);
  if (event.type !== 'backtest.completed') throw new Error(`backtest ${event.type}: ${event.error}`);
  const r = await api(base, token, 'GET', `/backtest/result/${id}?tradesLimit=0`);
  if (r.json.status !== 'succeeded') throw new Error(`backtest ${r.json.status}: ${r.json.error}`);
  return { id, result: r.json };
}

async function child(phase: Phase, file: string, rows: number, reps: number, dbUrl: string | undefined): Promise<PhaseReport> {
  if (phase === 'parse') {
    const { ingestCsv } = await import('../src/modules/datasets/ingest.js');
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const dir = await mkdtemp(path.join(tmpdir(), 'bench-backtest-parse-'));
      const t0 = performance.now();
      const res = await ingestCsv(createReadStream(file, { highWaterMark: 65536 }), { dir, maxBytes: Number.MAX_SAFE_INTEGER });
      times.push(performance.now() - t0);
      if (res.rows !== rows) throw new Error(`parsed ${res.rows} rows`);
      await rm(dir, { recursive: true, force: true });
    }
    return { phase, times };
  }

  if (phase === 'loop') {
    // The limit in a process of its own, like the engine benchmark: in the app's process every 8 MB array it
    // allocates can trigger a collection of the app's whole heap, which would time the collector, not the loop.
    const { ingestCsv } = await import('../src/modules/datasets/ingest.js');
    const dir = await mkdtemp(path.join(tmpdir(), 'bench-backtest-loop-'));
    try {
      const { columns } = await ingestCsv(createReadStream(file, { highWaterMark: 65536 }), { dir, maxBytes: Number.MAX_SAFE_INTEGER });
      const rowsRead = columns.open.byteLength / 8;
      const o = new Float64Array(columns.open, 0, rowsRead);
      const c = new Float64Array(columns.close, 0, rowsRead);
      const loopTimes: number[] = [];
      let finalEquity = 0;
      for (let r = 0; r < Math.max(reps, 5); r++) {
        const t0 = performance.now();
        finalEquity = smaCrossLoop(o, c, { fast: FAST, slow: SLOW, initialCash: 10_000, feeBps: 0 });
        loopTimes.push(performance.now() - t0);
      }
      return { phase, loopTimes, finalEquity };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  if (phase === 'e2e') {
    const { app, base, dir } = await startApp(dbUrl);
    try {
      const token = await userToken(base);
      // Warm-up on a small dataset, so the baseline has the pool thread started and the code loaded: what grows
      // after it is the cost of the 1M-row work itself.
      const small = path.join(path.dirname(file), 'warmup.csv');
      const head = Buffer.alloc(400_000);
      const fh = await open(file, 'r');
      const { bytesRead } = await fh.read(head, 0, head.length, 0).finally(() => fh.close());
      await writeFile(small, head.toString('latin1', 0, bytesRead).split('\n', 5001).join('\n') + '\n');
      const warm = await upload(base, token, small);
      await backtest(base, token, warm);
      await api(base, token, 'DELETE', `/datasets/${warm}`);
      const baselineRss = process.memoryUsage().rss;
      // Peak: the process high-water mark when it rose during the run, else the highest sampled RSS.
      const maxRssBefore = process.resourceUsage().maxRSS * 1024;
      let sampled = baselineRss;
      const sampler = setInterval(() => (sampled = Math.max(sampled, process.memoryUsage().rss)), 10);
      const times: number[] = [];
      const uploads: number[] = [];
      let trades = 0;
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        const datasetId = await upload(base, token, file);
        const t1 = performance.now();
        if (process.env.BENCH_RSS_TRACE) console.error(`rss after upload ${Math.round(process.memoryUsage().rss / 1e6)} MB (baseline ${Math.round(baselineRss / 1e6)})`);
        const { result } = await backtest(base, token, datasetId);
        if (process.env.BENCH_RSS_TRACE) console.error(`rss after backtest ${Math.round(process.memoryUsage().rss / 1e6)} MB, sampled peak ${Math.round(sampled / 1e6)}`);
        times.push(performance.now() - t0);
        uploads.push(t1 - t0);
        trades = result.trades.total;
        // Next rep stores the file again (like the parse-only baseline, which writes a fresh file every time).
        const del = await api(base, token, 'DELETE', `/datasets/${datasetId}`);
        if (del.status !== 204) throw new Error(`delete: ${del.status} ${JSON.stringify(del.json)}`);
      }
      clearInterval(sampler);
      const maxRssAfter = process.resourceUsage().maxRSS * 1024;
      const peakRss = maxRssAfter > maxRssBefore ? maxRssAfter : sampled;
      return { phase, times, uploads, trades, baselineRss, peakRss };
    } finally {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

  if (phase === 'stored') {
    const { app, base, dir } = await startApp(dbUrl, { WORKER_THREADS: '1' });
    try {
      const token = await userToken(base);
      const datasetId = await upload(base, token, file);
      const me = await api(base, token, 'GET', '/auth/me');
      const userId = (me.json.id ?? me.json.user?.id) as string;
      await backtest(base, token, datasetId); // warm-up (thread start, JIT)
      const apiTimes: number[] = [];
      const openTimes: number[] = [];
      const poolTimes: number[] = [];
      const settle = () => new Promise((res) => setTimeout(res, 500)); // the database finishes writing the last result
      let finalEquity = 0;
      for (let r = 0; r < reps; r++) {
        await settle();
        const t0 = performance.now();
        const { result } = await backtest(base, token, datasetId);
        apiTimes.push(performance.now() - t0);

        const t1 = performance.now();
        const opened = await app.datasetsService.open(userId, datasetId);
        openTimes.push(performance.now() - t1);
        const t2 = performance.now();
        await app.workerPool.run({ columns: opened.columns, strategy: SMA_CROSS, params: { fast: FAST, slow: SLOW }, equityPoints: 5000 });
        poolTimes.push(performance.now() - t2);
        finalEquity = Number(result.metrics.finalEquity);
      }
      return { phase, apiTimes, openTimes, poolTimes, finalEquity };
    } finally {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

  // threads: the app's pool with 2 threads, one task at a time vs two at once, on the stored columns.
  const { app, base, dir } = await startApp(dbUrl, { WORKER_THREADS: '2' });
  try {
    const token = await userToken(base);
    const datasetId = await upload(base, token, file);
    const me = await api(base, token, 'GET', '/auth/me');
    const opened = await app.datasetsService.open((me.json.id ?? me.json.user?.id) as string, datasetId);
    const task = () => app.workerPool.run({ columns: opened.columns, strategy: SMA_CROSS, params: { fast: FAST, slow: SLOW }, equityPoints: 5000 });
    await Promise.all([task(), task()]); // warm both threads
    const one: number[] = [];
    const two: number[] = [];
    for (let r = 0; r < Math.max(reps, 5); r++) {
      let t0 = performance.now();
      await task();
      one.push(performance.now() - t0);
      t0 = performance.now();
      await Promise.all([task(), task()]);
      two.push(performance.now() - t0);
    }
    return { phase, one, two };
  } finally {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function runChild(phase: Phase, file: string, rows: number, reps: number, dbUrl: string | undefined): Promise<PhaseReport> {
  return new Promise((resolve, reject) => {
    const cp = fork(fileURLToPath(import.meta.url), ['child', phase, file, String(rows), String(reps), dbUrl ?? ''], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let report: PhaseReport | undefined;
    cp.on('message', (m) => (report = m as PhaseReport));
    cp.on('exit', (code) => (report ? resolve(report) : reject(new Error(`phase ${phase} exited with ${code}`))));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Parent side.

async function liveUnderLoad(file: string, dbUrl: string | undefined): Promise<{ idle: number; busy: number; busyRps: number; queued: number; threads: string }> {
  const env = await appEnv(dbUrl, { BACKTEST_QUEUE_MAX: '64' });
  let server: StartedServer | undefined;
  try {
    await (await premigrate(dbUrl, env.DATA_DIR)).close();
    server = await startServer('app', env);
    const base = server.url;
    const token = await userToken(base);
    const datasetId = await upload(base, token, file);
    const idle = await load({ url: `${base}/health/live`, seconds: 5, connections: 10 });
    // Saturate: more queued jobs than the run lasts (each takes the only thread for a while), from several users.
    const tokens = [token, await userToken(base), await userToken(base), await userToken(base)];
    const others = await Promise.all(tokens.slice(1).map((t) => upload(base, t, file)));
    const datasets = [datasetId, ...others];
    let queued = 0;
    for (let i = 0; i < 40; i++) {
      const k = i % tokens.length;
      const r = await api(base, tokens[k], 'POST', '/backtest/start', { datasetId: datasets[k], strategy: SMA_CROSS, params: { fast: FAST + (i % 7), slow: SLOW } });
      if (r.status === 202) queued++;
    }
    const ready = (await fetch(`${base}/health/ready`).then((r) => r.json()).catch(() => null)) as { checks?: Record<string, unknown> } | null;
    const threads = JSON.stringify(ready?.checks?.['worker-pool'] ?? ready);
    const busy = await load({ url: `${base}/health/live`, seconds: 10, connections: 10 });
    return { idle: idle.p99, busy: busy.p99, busyRps: busy.rps, queued, threads };
  } finally {
    await server?.stop();
    if (env.DATA_DIR) await rm(env.DATA_DIR, { recursive: true, force: true });
    if (env.COLUMNAR_DIR) await rm(env.COLUMNAR_DIR, { recursive: true, force: true });
  }
}

const fmt = (x: number, d = 0) => x.toFixed(d);
const mrows = (rows: number, ms: number) => rows / (ms / 1000) / 1e6;

async function main() {
  const rows = Number(process.argv[2] ?? 1_000_000);
  const reps = Number(process.argv[3] ?? 3);
  const db = await benchDatabase(process.env.BENCH_DATABASE_URL);
  const work = await mkdtemp(path.join(tmpdir(), 'bench-backtest-csv-'));
  try {
    const file = path.join(work, 'ohlcv.csv');
    const bytes = await generateCsv(file, rows, 42);
    console.log(`# ${rows} candles, ${(bytes / 1e6).toFixed(1)} MB CSV (seed 42); ${reps} reps; database ${db.url ? 'PostgreSQL' : 'PGlite'}; medians`);

    const parse = await runChild('parse', file, rows, reps, db.url);
    const loop = await runChild('loop', file, rows, reps, db.url);
    const e2e = await runChild('e2e', file, rows, reps, db.url);
    const stored = await runChild('stored', file, rows, reps, db.url);
    const threads = await runChild('threads', file, rows, reps, db.url);
    const live = await liveUnderLoad(file, db.url);

    const pMs = median(parse.times as number[]);
    const eMs = median(e2e.times as number[]);
    const uMs = median(e2e.uploads as number[]);
    const apiMs = median(stored.apiTimes as number[]);
    const openMs = median(stored.openTimes as number[]);
    const poolMs = median(stored.poolTimes as number[]);
    const loopMs = median(loop.loopTimes as number[]);
    const oneMs = median(threads.one as number[]);
    const twoMs = median(threads.two as number[]);
    const rssGrowth = ((e2e.peakRss as number) - (e2e.baselineRss as number)) / 1e6;

    const lines: string[][] = [['measure', 'median', 'throughput', 'ratio', 'target']];
    const ok = (good: boolean) => (good ? 'ok' : 'MISSED');
    lines.push(['(1) parse only (ingestCsv)', `${fmt(pMs)} ms`, `${fmt(mrows(rows, pMs), 2)} M rows/s`, '1.00x', 'baseline']);
    lines.push(['(2) e2e: upload + backtest via HTTP', `${fmt(eMs)} ms`, `${fmt(mrows(rows, eMs), 2)} M rows/s`, `${fmt(pMs / eMs, 2)}x`, `>= 0.9x ${ok(pMs / eMs >= 0.9)}`]);
    lines.push(['    of which upload (POST /datasets)', `${fmt(uMs)} ms`, `${fmt(mrows(rows, uMs), 2)} M rows/s`, `${fmt(pMs / uMs, 2)}x`, '']);
    lines.push(['(3) limit: typed-array SMA-cross loop', `${fmt(loopMs, 1)} ms`, `${fmt(mrows(rows, loopMs), 1)} M bars/s`, '1.00x', 'baseline']);
    lines.push(['    stored dataset via API (start->done)', `${fmt(apiMs, 1)} ms`, `${fmt(mrows(rows, apiMs), 1)} M bars/s`, `${fmt(loopMs / apiMs, 2)}x`, `>= 0.5x ${ok(loopMs / apiMs >= 0.5)}`]);
    lines.push(['    worker on a pool thread (run only)', `${fmt(poolMs, 1)} ms`, `${fmt(mrows(rows, poolMs), 1)} M bars/s`, `${fmt(loopMs / poolMs, 2)}x`, '']);
    lines.push(['    open() of the columnar file', `${fmt(openMs, 1)} ms`, '', '', '']);
    lines.push(['(4) 1 backtest on a 2-thread pool', `${fmt(oneMs, 1)} ms`, `${fmt(1000 / oneMs, 2)} runs/s`, '1.00x', 'baseline']);
    lines.push(['    2 at once on 2 threads', `${fmt(twoMs, 1)} ms`, `${fmt(2000 / twoMs, 2)} runs/s`, `${fmt((2 * oneMs) / twoMs, 2)}x`, `>= 1.8x ${ok((2 * oneMs) / twoMs >= 1.8)}`]);
    lines.push(['(5) peak RSS growth in (2)', `${fmt(rssGrowth)} MB`, '', '', `<= 150 MB ${ok(rssGrowth <= 150)}`]);
    lines.push(['(6) /health/live p99, idle', `${fmt(live.idle, 1)} ms`, '', '', '']);
    lines.push([`    /health/live p99, pool saturated (${live.queued} jobs)`, `${fmt(live.busy, 1)} ms`, `${fmt(live.busyRps)} req/s`, '', `<= 10 ms ${ok(live.busy <= 10)}`]);
    const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
    for (const [i, l] of lines.entries()) {
      console.log(l.map((c, j) => c.padEnd(widths[j])).join('  '));
      if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    }
    const chk = { engine: stored.finalEquity as number, loop: loop.finalEquity as number };
    console.log(`\nruns (ms): parse ${(parse.times as number[]).map((x) => fmt(x)).join('/')}; e2e ${(e2e.times as number[]).map((x) => fmt(x)).join('/')}; ` +
      `api ${(stored.apiTimes as number[]).map((x) => fmt(x)).join('/')}; pool ${(stored.poolTimes as number[]).map((x) => fmt(x)).join('/')}; ` +
      `loop ${(loop.loopTimes as number[]).map((x) => fmt(x, 1)).join('/')}; one ${(threads.one as number[]).map((x) => fmt(x)).join('/')}; two ${(threads.two as number[]).map((x) => fmt(x)).join('/')}`);
    console.log(`trades per run: ${e2e.trades}; final equity engine ${chk.engine.toFixed(2)} vs loop ${chk.loop.toFixed(2)} (same rules, no fees); saturated pool: ${live.threads}`);
    console.log(`CSV ${(await stat(file)).size} bytes`);
  } finally {
    await rm(work, { recursive: true, force: true });
    await db.drop();
  }
}

if (process.argv[2] === 'child') {
  const [, , , phase, file, rows, reps, dbUrl] = process.argv;
  child(phase as Phase, file, Number(rows), Number(reps), dbUrl || undefined)
    .then((report) => {
      if (process.send) process.send(report, () => process.exit(0));
      else console.log(JSON.stringify(report)); // run by hand: `tsx bench/backtest.ts child <phase> <csv> <rows> <reps> [dbUrl]`
    })
    .catch((err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    });
} else {
  await main();
}
