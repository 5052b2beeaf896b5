import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import runBacktest, { ENGINE_VERSION } from '../../workers/backtest.worker.js';
import { unpackTrades } from '../../workers/engine/trades.js';
import type { BacktestResult, BacktestTask, ProgressMessage, SharedColumns } from '../../workers/types.js';

const example = (name: string) => JSON.parse(readFileSync(new URL(`../../examples/strategies/${name}.json`, import.meta.url), 'utf8'));
const WORKER = new URL('../../workers/backtest.worker.ts', import.meta.url).href;

/** The BTC 5m CSV in SharedArrayBuffer columns. */
function sharedCsv(path: string, limit = Infinity): SharedColumns {
  const lines = readFileSync(path, 'utf8').trim().split('\n').slice(1, 1 + limit);
  const names = ['ts', 'open', 'high', 'low', 'close', 'volume'] as const;
  const bufs = names.map(() => new SharedArrayBuffer(lines.length * 8));
  const views = bufs.map((b) => new Float64Array(b));
  lines.forEach((line, i) => line.split(',').forEach((v, j) => (views[j][i] = Number(v))));
  return Object.fromEntries(names.map((n, j) => [n, bufs[j]])) as unknown as SharedColumns;
}

/** A seeded random walk of n candles in shared columns (1-minute bars). */
function sharedWalk(n: number): SharedColumns {
  const names = ['ts', 'open', 'high', 'low', 'close', 'volume'] as const;
  const bufs = names.map(() => new SharedArrayBuffer(n * 8));
  const [ts, o, h, l, c, v] = bufs.map((b) => new Float64Array(b));
  let seed = 1;
  const rnd = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  let p = 100;
  for (let i = 0; i < n; i++) {
    ts[i] = 1_600_000_000_000 + i * 60_000;
    o[i] = p;
    p *= 1 + (rnd() - 0.5) * 0.004;
    c[i] = p;
    h[i] = Math.max(o[i], c[i]) * 1.001;
    l[i] = Math.min(o[i], c[i]) * 0.999;
    v[i] = 1;
  }
  return Object.fromEntries(names.map((name, j) => [name, bufs[j]])) as unknown as SharedColumns;
}

const btc = sharedCsv('/work/shared/data/binance-BTC_USDT-5m.csv');
const settings = { initialCash: 10_000, feeBps: 10, slippageBps: 2, fill: 'next_open' as const, lotStep: 0, closeAtEnd: true };

/** Collect progress messages until the worker closes its end of the channel. */
function progressChannel(): { port: MessagePort; messages: ProgressMessage[]; closed: Promise<void>; first: Promise<void> } {
  const { port1, port2 } = new MessageChannel();
  const messages: ProgressMessage[] = [];
  port1.on('message', (m: ProgressMessage) => messages.push(m));
  const closed = new Promise<void>((resolve) => port1.once('close', () => resolve()));
  const first = new Promise<void>((resolve) => port1.once('message', () => resolve()));
  return { port: port2, messages, closed, first };
}

describe('backtest worker function', () => {
  test('runs a strategy over a range of shared columns', async () => {
    const r = await runBacktest({ columns: btc, range: { fromIndex: 1000, toIndex: 21_000 }, strategy: example('sma-cross'), params: { fast: 12, slow: 40 }, settings, equityPoints: 50 });
    assert.equal(r.engineVersion, ENGINE_VERSION);
    assert.equal(r.bars, 20_000);
    assert.deepEqual([r.fromIndex, r.toIndex], [1000, 21_000]);
    assert.deepEqual(r.params, { fast: 12, slow: 40 });
    assert.equal(r.equity.t.length, 50);
    assert.equal(r.equity.equity.length, 50);
    const ts = new Float64Array(btc.ts);
    assert.equal(r.equity.t[0], ts[1000]);
    assert.equal(r.equity.t[49], ts[20_999]);
    const trades = unpackTrades(r.trades);
    assert.equal(r.metrics.trades, trades.length);
    assert.ok(trades.length > 10);
    assert.ok(trades.every((t) => t.entryBar >= 1000 && t.exitBar < 21_000 && t.exitBar >= t.entryBar));
    assert.ok(trades.every((t) => t.entryTime === ts[t.entryBar] && t.exitTime === ts[t.exitBar]));
    // the equity curve ends at initial cash + the sum of trade pnls (closeAtEnd)
    const pnl = trades.reduce((s, t) => s + t.pnl, 0);
    assert.ok(Math.abs(r.equity.equity[49] - (10_000 + pnl)) < 1e-6);
    assert.ok(Math.abs(r.metrics.finalEquity - (10_000 + pnl)) < 1e-6);
    assert.ok(r.decisions >= trades.length);
  });

  test('a timestamp range selects the same bars as the equivalent indexes', async () => {
    const ts = new Float64Array(btc.ts);
    const a = await runBacktest({ columns: btc, range: { fromTs: ts[500], toTs: ts[5499] }, strategy: example('rsi-mean-reversion'), settings });
    const b = await runBacktest({ columns: btc, range: { fromIndex: 500, toIndex: 5500 }, strategy: example('rsi-mean-reversion'), settings });
    assert.deepEqual([a.fromIndex, a.toIndex], [500, 5500]);
    assert.deepEqual(a.metrics, b.metrics);
  });

  test('invalid strategy, params or settings are rejected with their paths', async () => {
    await assert.rejects(runBacktest({ columns: btc, strategy: { version: 1, name: 'x', rules: { long: { entry: { op: 'gt', left: { indicator: 'x' }, right: 1 } } } } }), /\/rules\/long\/entry\/left: unknown indicator/);
    await assert.rejects(runBacktest({ columns: btc, strategy: example('sma-cross'), params: { fast: 0 } }), /\/params\/fast/);
    await assert.rejects(runBacktest({ columns: btc, strategy: example('sma-cross'), settings: { feeBps: -1 } }), /feeBps/);
  });
});

describe('backtest worker through a real Piscina pool', () => {
  test('runs with SharedArrayBuffer columns and reports progress on a transferred port', async (t) => {
    // tsx's loader reaches the worker thread because Node workers inherit process.execArgv (--import tsx...).
    const pool = new Piscina({ filename: WORKER, maxThreads: 1, minThreads: 0 });
    t.after(() => pool.destroy());
    const { port, messages, closed } = progressChannel();
    const task: BacktestTask = { columns: btc, strategy: example('breakout-atr'), settings, equityPoints: 200, progressPort: port };
    const r: BacktestResult = await pool.run(task, { transferList: [port] });
    await closed;
    assert.equal(r.engineVersion, ENGINE_VERSION);
    assert.equal(r.bars, new Float64Array(btc.ts).length);
    assert.equal(r.equity.t.length, 200);
    assert.ok(messages.length >= 20 && messages.length <= 60, `${messages.length} progress messages`);
    assert.ok(messages.every((m) => m.type === 'progress' && m.progress > 0 && m.progress <= 1));
    for (let i = 1; i < messages.length; i++) assert.ok(messages[i].progress >= messages[i - 1].progress);
    assert.equal(messages[messages.length - 1].progress, 1);
    // same numbers as calling the function in this thread
    const direct = await runBacktest({ columns: btc, strategy: example('breakout-atr'), settings, equityPoints: 200 });
    assert.deepEqual(r.metrics, direct.metrics);
    assert.deepEqual(r.trades, direct.trades);
  });

  test('an AbortSignal cancels a running backtest', async (t) => {
    const pool = new Piscina({ filename: WORKER, maxThreads: 1, minThreads: 0 });
    t.after(() => pool.destroy());
    const big = sharedWalk(3_000_000);
    const { port, messages, first } = progressChannel();
    const controller = new AbortController();
    const run = pool.run({ columns: big, strategy: example('breakout-atr'), settings, progressPort: port } satisfies BacktestTask, { transferList: [port], signal: controller.signal });
    await first; // the worker is computing
    controller.abort();
    await assert.rejects(run, (e: Error) => e.name === 'AbortError');
    assert.ok(messages.length < 32, 'cancelled before the end');
    assert.ok(messages.every((m) => m.progress < 1));
    // the pool still works afterwards
    const small = await pool.run({ columns: btc, range: { toIndex: 3000 }, strategy: example('sma-cross'), settings } satisfies BacktestTask);
    assert.equal(small.bars, 3000);
  });

  test('the compiled JavaScript worker (the dist build) runs in a pool without tsx', async (t) => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    mkdirSync(`${root}dist`, { recursive: true });
    const out = mkdtempSync(`${root}dist/worker-test-`); // inside the repo, so that `zod` resolves from node_modules
    t.after(() => rmSync(out, { recursive: true, force: true }));
    const program = ts.createProgram([fileURLToPath(WORKER)], {
      outDir: out,
      rootDir: root,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      skipLibCheck: true,
      verbatimModuleSyntax: true,
      types: ['node'],
    });
    const emitted = program.emit();
    assert.equal(emitted.emitSkipped, false);
    // execArgv [] : no tsx loader in the worker thread, plain Node runs the emitted .js files
    const pool = new Piscina({ filename: pathToFileURL(`${out}/workers/backtest.worker.js`).href, execArgv: [], maxThreads: 1, minThreads: 0 });
    t.after(() => pool.destroy());
    const task: BacktestTask = { columns: btc, range: { toIndex: 10_000 }, strategy: example('sma-cross'), settings };
    const r: BacktestResult = await pool.run(task);
    const direct = await runBacktest(task);
    assert.equal(r.engineVersion, ENGINE_VERSION);
    assert.deepEqual(r.metrics, direct.metrics);
  });
});
