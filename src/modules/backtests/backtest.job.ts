/**
 * Pool task that wraps the backtest worker (workers/backtest.worker.ts, or the pool's configured worker file): runs
 * it in the worker thread, then encodes the trades and the equity curve there (base64 chunks of binary records), so
 * the API thread neither deserialises tens of thousands of trade objects nor encodes them.
 * Run with `pool.run(task, { filename: JOB_FILE })`; `workerModule` names the wrapped worker (a file URL).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
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
 * Loads the wrapped worker the way Piscina loads a task file: `require` first (from source, tsx's require hook is
 * what worker threads have for .ts files), `import()` otherwise (the ESM build).
 */
async function load(url: string): Promise<Handler> {
  let h = handlers.get(url);
  if (h) return h;
  const file = fileURLToPath(url);
  try {
    const m = createRequire(file)(file) as { default?: unknown } | Handler;
    h = (typeof m === 'function' ? m : m.default) as Handler | undefined;
  } catch {
    h = undefined;
  }
  if (typeof h !== 'function') h = ((await import(url)) as { default: Handler }).default;
  handlers.set(url, h);
  return h;
}

export default async function runJobTask(task: JobTask): Promise<JobResult> {
  const { workerModule, ...inner } = task;
  const run = await load(workerModule);
  const { trades, equity, ...rest } = await run(inner);
  return { ...rest, tradesCount: tradeCount(trades), tradeChunks: encodeTradeChunks(trades), equityData: encodeEquity(equity).toString('base64'), equityPoints: equity.t.length };
}
