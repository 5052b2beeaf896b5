/**
 * Piscina worker: one backtest per call. Pure CPU: wraps the shared columns without copying, compiles the
 * strategy, runs the evaluator in array mode, the broker simulation and the metrics.
 *
 * Pool usage (from src/): `pool.run(task, { signal, transferList: task.progressPort ? [task.progressPort] : [] })`.
 * Cancellation is Piscina's: aborting the signal terminates the worker thread running the task.
 */
import type { BacktestResult, BacktestTask, BarRange, SharedColumns } from './types.js';
import { createEvaluator, type Columns, type DecisionArrays } from './engine/evaluator.js';
import { computeMetrics } from './engine/metrics.js';
import { DEFAULT_SETTINGS, resolveSizingAndRisk, simulate, type SimSettings } from './engine/simulate.js';
import { ENGINE_VERSION } from './engine/version.js';

export { ENGINE_VERSION };

/** Share of the run reported while evaluating decisions; the broker simulation and metrics take the rest. */
const EVAL_SHARE = 0.85;
/** About this many progress messages per run. */
const PROGRESS_STEPS = 32;

export default async function runBacktest(task: BacktestTask): Promise<BacktestResult> {
  const result = await runBacktestScratch(task);
  return { ...result, trades: result.trades.slice() };
}

/**
 * `runBacktest`, except that `trades` is a view of this thread's scratch buffer, valid until the thread's next run:
 * for a caller in the same thread that consumes the trades at once (src/modules/backtests/backtest.job.ts encodes
 * them), which saves a copy of every trade.
 */
export async function runBacktestScratch(task: BacktestTask): Promise<BacktestResult> {
  const started = performance.now();
  const port = task.progressPort;
  const report = (progress: number) => port?.postMessage({ type: 'progress', progress });
  try {
    const cols = wrapColumns(task.columns);
    const { from, to } = resolveRange(cols.ts!, task.range ?? {});
    const settings = normalizeSettings(task.settings);
    const ev = createEvaluator(task.strategy, task.params ?? {});
    const n = to - from;

    const decisions: DecisionArrays = {
      signals: scratchSignals(n),
      stopAtr: ev.usesAtr.stopLoss ? new Float64Array(n) : undefined,
      targetAtr: ev.usesAtr.takeProfit ? new Float64Array(n) : undefined,
      trailAtr: ev.usesAtr.trailingStop ? new Float64Array(n) : undefined,
    };
    const chunk = Math.max(1024, Math.ceil(n / PROGRESS_STEPS));
    for (let start = from; start < to; start += chunk) {
      const end = Math.min(to, start + chunk);
      ev.runInto(cols, start, end, decisions, start - from);
      report(((end - from) / n) * EVAL_SHARE);
    }
    let signalBars = 0;
    for (let k = 0; k < n; k++) if (decisions.signals[k] !== 0) signalBars++;

    const { sizing, risk } = resolveSizingAndRisk(ev.doc, ev.params);
    const sim = simulate({ cols, from, to, decisions, sizing, risk, settings, equityOut: scratchEquity(n), tradesBuffer: tradesScratch });
    tradesScratch = sim.tradeLog.buffer;
    report(0.95);

    const ts = cols.ts!.subarray(from, to);
    const trades = sim.tradeLog.records();
    const metrics = computeMetrics({
      ts,
      close: cols.close.subarray(from, to),
      equity: sim.equity,
      initialCash: settings.initialCash,
      trades,
      firstBar: from,
      feesPaid: sim.feesPaid,
    });
    const equity = downsample(ts, sim.equity, task.equityPoints ?? 1000);
    report(1);
    return {
      engineVersion: ENGINE_VERSION,
      metrics,
      trades,
      equity,
      bars: n,
      fromIndex: from,
      toIndex: to,
      signalBars,
      decisions: sim.orders,
      params: ev.params,
      settings,
      openPosition: sim.openPosition,
      elapsedMs: performance.now() - started,
    };
  } finally {
    port?.close();
  }
}

/**
 * Per-thread scratch columns, reused by the runs of this thread (one run at a time): the decisions and the equity
 * curve are as long as the run (9 bytes a bar) and never leave the worker, and allocating them anew for every run
 * kept tens of MB of garbage per thread waiting for the collector.
 */
let signalsScratch = new Uint8Array(0);
let equityScratch = new Float64Array(0);
let tradesScratch: Float64Array | undefined;
function scratchSignals(n: number): Uint8Array {
  if (signalsScratch.length < n) signalsScratch = new Uint8Array(n);
  return signalsScratch.subarray(0, n).fill(0);
}
function scratchEquity(n: number): Float64Array {
  if (equityScratch.length < n) equityScratch = new Float64Array(n);
  return equityScratch;
}

/** Float64Array views over the shared buffers (no copy). */
export function wrapColumns(c: SharedColumns): Columns & { ts: Float64Array } {
  const view = (name: keyof SharedColumns) => {
    const buf: unknown = c?.[name];
    if (!(buf instanceof SharedArrayBuffer) && !(buf instanceof ArrayBuffer)) throw new TypeError(`columns.${name} must be a SharedArrayBuffer`);
    // A fixed-length view: over a growable buffer (the import's columns) a length-tracking one is ~1.8x slower to read.
    return new Float64Array(buf as ArrayBufferLike, 0, Math.floor((buf as ArrayBufferLike).byteLength / 8));
  };
  const cols = { ts: view('ts'), open: view('open'), high: view('high'), low: view('low'), close: view('close'), volume: view('volume') };
  const n = cols.ts.length;
  for (const [name, arr] of Object.entries(cols)) {
    if (arr.length !== n) throw new RangeError(`columns.${name} has ${arr.length} values, ts has ${n}`);
  }
  return cols;
}

/** Absolute [from, to) bar indexes of a range; timestamps are inclusive bounds found by binary search. */
export function resolveRange(ts: Float64Array, r: BarRange): { from: number; to: number } {
  const n = ts.length;
  let from = r.fromIndex ?? (r.fromTs !== undefined ? bound(ts, r.fromTs, false) : 0);
  let to = r.toIndex ?? (r.toTs !== undefined ? bound(ts, r.toTs, true) : n);
  from = Math.max(0, Math.min(n, Math.floor(from)));
  to = Math.max(from, Math.min(n, Math.floor(to)));
  if (to - from < 2) throw new RangeError(`the range holds ${to - from} bars; at least 2 are needed`);
  return { from, to };
}

/** First index with ts[i] >= x (or ts[i] > x when `after`). */
function bound(ts: Float64Array, x: number, after: boolean): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid] < x || (after && ts[mid] === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function normalizeSettings(s: Partial<SimSettings> | undefined): SimSettings {
  const out: SimSettings = { ...DEFAULT_SETTINGS, ...Object.fromEntries(Object.entries(s ?? {}).filter(([, v]) => v !== undefined)) };
  const bad = (what: string) => {
    throw new RangeError(`settings.${what}`);
  };
  if (!(out.initialCash > 0) || !Number.isFinite(out.initialCash)) bad('initialCash must be a finite number > 0');
  if (!(out.feeBps >= 0 && out.feeBps < 10_000)) bad('feeBps must be in [0, 10000)');
  if (!(out.slippageBps >= 0 && out.slippageBps < 10_000)) bad('slippageBps must be in [0, 10000)');
  if (!(out.lotStep >= 0) || !Number.isFinite(out.lotStep)) bad('lotStep must be a finite number >= 0');
  if (out.fill !== 'next_open' && out.fill !== 'close') bad('fill must be "next_open" or "close"');
  if (typeof out.closeAtEnd !== 'boolean') bad('closeAtEnd must be a boolean');
  return out;
}

/** At most `points` evenly spaced samples of the curve, first and last bar included. */
export function downsample(ts: Float64Array, equity: Float64Array, points: number): { t: number[]; equity: number[] } {
  const n = equity.length;
  const m = Math.max(2, Math.floor(points));
  if (n <= m) return { t: Array.from(ts), equity: Array.from(equity) };
  const t: number[] = [];
  const e: number[] = [];
  for (let k = 0; k < m; k++) {
    const i = Math.round((k * (n - 1)) / (m - 1));
    t.push(ts[i]);
    e.push(equity[i]);
  }
  return { t, equity: e };
}
