/**
 * Pool task that wraps the backtest worker (workers/backtest.worker.ts, or the pool's configured worker file): runs
 * it in the worker thread, then encodes the trades and the equity curve there (base64 chunks of binary records), so
 * the API thread neither deserialises tens of thousands of trade objects nor encodes them.
 * Run with `pool.run(task, { filename: JOB_FILE })`; `workerModule` names the wrapped worker (a file URL).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { BacktestResult, BacktestTask } from '../../../workers/types.js';
import { tradeCount } from '../../../workers/engine/trades.js';
import { encodeEquity, encodeTradeChunks } from './backtests.codec.js';

export interface JobTask extends BacktestTask {
  workerModule: string;
}

export interface JobResult extends Omit<BacktestResult, 'trades' | 'equity'> {
  tradesCount: number;
  tradeChunks: string[];
  /** base64 (t, equity) float64 pairs. */
  equityData: string;
  /** Last point of the equity curve (the final equity at the last bar's close). */
  equityPoints: number;
}

type Handler = (t: BacktestTask) => Promise<BacktestResult>;
const handlers = new Map<string, Handler>();

/**
 * Loads the wrapped worker as an ES module. Running from TypeScript sources (tsx), a worker thread has tsx's
 * require hook but not its ESM loader (Node 20 does not pass loaders on to threads), so it is registered here first:
 * the CommonJS form tsx would otherwise compile reads every imported constant through a getter, which made the
 * engine's hot loops markedly slower. `require` remains the fallback.
 */
let tsxRegistered: Promise<unknown> | undefined;
/** The module's `runBacktestScratch` (its trades are encoded here at once, so they need no copy), else its default export. */
const pick = (m: unknown): Handler => {
  const mod = m as { runBacktestScratch?: Handler; default?: Handler } | Handler;
  return (typeof mod === 'function' ? mod : (mod.runBacktestScratch ?? mod.default)) as Handler;
};
async function load(url: string): Promise<Handler> {
  let h = handlers.get(url);
  if (h) return h;
  try {
    if (url.endsWith('.ts')) await (tsxRegistered ??= import('tsx/esm/api').then((m) => m.register()));
    h = pick(await import(url));
  } catch {
    const file = fileURLToPath(url);
    h = pick(createRequire(file)(file));
  }
  if (typeof h !== 'function') throw new TypeError(`${url} has no default export function`);
  handlers.set(url, h);
  return h;
}

/**
 * Full collection in this thread once it has been idle for IDLE_COLLECT_MS after a large run. A finished run's views
 * keep the dataset's SharedArrayBuffers alive until this thread's next garbage collection, and a thread that sits
 * idle does not get to one: each finished backtest on a new dataset pinned its whole columns (48 MB per million
 * bars). Not after every run: a full collection shrinks the heap, and the next run paid to grow it again.
 */
const collectGarbage = (() => {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
})();
/** Runs whose columns take at least this many bytes arm the idle collection. */
const COLLECT_AFTER_BYTES = 16 * 1024 * 1024;
const IDLE_COLLECT_MS = 1000;
let idleCollect: NodeJS.Timeout | undefined;

export default async function runJobTask(task: JobTask): Promise<JobResult> {
  const { workerModule, ...inner } = task;
  const run = await load(workerModule);
  clearTimeout(idleCollect);
  const columnBytes = Object.values(inner.columns ?? {}).reduce((s, b) => s + ((b as ArrayBufferLike | undefined)?.byteLength ?? 0), 0);
  // Timers run in an idle thread because the pool has atomics disabled (its threads wait in their event loop).
  if (collectGarbage && columnBytes >= COLLECT_AFTER_BYTES) idleCollect = setTimeout(collectGarbage, IDLE_COLLECT_MS).unref();
  const { trades, equity, ...rest } = await run(inner);
  return { ...rest, tradesCount: tradeCount(trades), tradeChunks: encodeTradeChunks(trades), equityData: encodeEquity(equity).toString('base64'), equityPoints: equity.t.length };
}
