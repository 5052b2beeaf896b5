/**
 * Task and result types of the backtest worker. `src/` imports these with `import type` only; the values are
 * structured-cloneable (SharedArrayBuffers are shared, not copied; the progress port is transferred).
 */
import type { MessagePort } from 'node:worker_threads';
import type { StrategyDoc } from './engine/dsl.js';
import type { Metrics } from './engine/metrics.js';
import type { OpenPosition, SimSettings } from './engine/simulate.js';
import type { TradeRecords } from './engine/trades.js';

export type { Metrics } from './engine/metrics.js';
export type { SimSettings, OpenPosition } from './engine/simulate.js';
export type { Trade, ExitReason, TradeRecords } from './engine/trades.js';
export type { StrategyDoc, Issue } from './engine/dsl.js';

/** OHLCV columns: each a SharedArrayBuffer of Float64 values, all of the same length; ts = bar open time, epoch ms. */
export interface SharedColumns {
  ts: SharedArrayBuffer;
  open: SharedArrayBuffer;
  high: SharedArrayBuffer;
  low: SharedArrayBuffer;
  close: SharedArrayBuffer;
  volume: SharedArrayBuffer;
}

/**
 * Range of bars to run. Indexes: [fromIndex, toIndex) (toIndex exclusive). Timestamps: fromTs <= ts <= toTs.
 * Omitted bounds mean the start / end of the columns. Indexes win over timestamps when both are given.
 */
export interface BarRange {
  fromIndex?: number;
  toIndex?: number;
  fromTs?: number;
  toTs?: number;
}

/** Progress message posted to `progressPort`, a few dozen times per run; the last one has progress 1. */
export interface ProgressMessage {
  type: 'progress';
  progress: number;
}

export interface BacktestTask {
  columns: SharedColumns;
  range?: BarRange;
  /** The strategy document (validated again in the worker). */
  strategy: StrategyDoc | unknown;
  /** Overrides of the strategy's declared param defaults. */
  params?: Record<string, number>;
  settings?: Partial<SimSettings>;
  /** Max number of points of the returned equity curve (evenly downsampled, first and last bar kept). Default 1000. */
  equityPoints?: number;
  /** Receives ProgressMessage; pass it in the transfer list of `pool.run`. */
  progressPort?: MessagePort;
}

export interface BacktestResult {
  engineVersion: string;
  metrics: Metrics;
  /** Closed trades as packed records (workers/engine/trades.ts: `unpackTrades` makes objects of them). */
  trades: TradeRecords;
  /** Downsampled equity curve: bar open times and equity at those bars' closes. */
  equity: { t: number[]; equity: number[] };
  /** Number of bars simulated, and their absolute [from, to) indexes in the columns. */
  bars: number;
  fromIndex: number;
  toIndex: number;
  /** Bars on whose close at least one rule fired. */
  signalBars: number;
  /** Orders executed from decisions (entries, exits, reversals). */
  decisions: number;
  /** Resolved parameter values used. */
  params: Record<string, number>;
  settings: SimSettings;
  /** Position left open when closeAtEnd is false (not counted in trades/metrics). */
  openPosition: OpenPosition | null;
  /** Wall time spent in the worker, ms. */
  elapsedMs: number;
}
