/**
 * Broker simulation for backtests: turns per-bar decisions into fills, trades and an equity curve.
 * Pure: typed arrays in, numbers out. The full rule set is written out in docs/backtesting.md; in short:
 *
 * For every bar j of [from, to), in this order:
 *  1. `fill: "next_open"`: the action decided on the close of bar j-1 fills at open[j].
 *  2. Last bar with `closeAtEnd`: an open position is closed at open[j] (reason "end"); nothing else happens.
 *  3. Stops/targets of the open position are checked against bar j (a gap through a level fills at the open;
 *     stop before target when both are inside the bar; the trailing stop uses the best price up to bar j-1).
 *  4. The decision on the close of bar j is resolved against the position (`resolveAction`) and fills at close[j]
 *     (`fill: "close"`) or is queued for open[j+1].
 *  5. equity[j] = cash + position marked at close[j].
 *
 * Every fill price is moved against the trader by `slippageBps`; every fill pays `feeBps` of its notional.
 */
import type { Level, ParamValues, Sizing, StrategyDoc } from './dsl.js';
import { numberOf } from './dsl.js';
import {
  CLOSE,
  NONE,
  OPEN_LONG,
  OPEN_SHORT,
  REVERSE_TO_LONG,
  REVERSE_TO_SHORT,
  resolveAction,
  type Action,
  type Columns,
  type DecisionArrays,
} from './evaluator.js';

export interface SimSettings {
  initialCash: number;
  /** Fee in basis points of each fill's notional. */
  feeBps: number;
  /** Each fill price moves this many basis points against the trader. */
  slippageBps: number;
  /** "next_open" (default): a decision on bar i's close fills at bar i+1's open. "close": at bar i's close. */
  fill: 'next_open' | 'close';
  /** Sizes round down to a multiple of this (1 = whole units); 0 = fractional. */
  lotStep: number;
  /** Close an open position at the last bar's open (default true). */
  closeAtEnd: boolean;
}

export const DEFAULT_SETTINGS: SimSettings = {
  initialCash: 10_000,
  feeBps: 0,
  slippageBps: 0,
  fill: 'next_open',
  lotStep: 0,
  closeAtEnd: true,
};

export type ExitReason = 'signal' | 'reverse' | 'stopLoss' | 'takeProfit' | 'trailingStop' | 'end';

export interface Trade {
  side: 'long' | 'short';
  /** Bar indexes (into the full columns) and open times (epoch ms) of the bars in which the fills happened. */
  entryBar: number;
  exitBar: number;
  entryTime: number;
  exitTime: number;
  /** Fill prices, slippage included. */
  entryPrice: number;
  exitPrice: number;
  size: number;
  /** Net of both fees. */
  pnl: number;
  /** 100 * pnl / (size * entryPrice). */
  pnlPct: number;
  /** Entry fee + exit fee. */
  fees: number;
  exitReason: ExitReason;
}

/** A stop/target distance rule with resolved numbers. */
export type ResolvedLevel = { kind: 'percent'; percent: number } | { kind: 'atr'; multiple: number };
export type ResolvedSizing = { kind: 'fraction'; fraction: number } | { kind: 'quote'; amount: number };
export interface ResolvedRisk {
  stopLoss?: ResolvedLevel;
  takeProfit?: ResolvedLevel;
  trailingStop?: ResolvedLevel;
}

export interface SimInput {
  cols: Columns;
  /** Bars [from, to) of `cols` are simulated; decision arrays are indexed from 0 = bar `from`. */
  from: number;
  to: number;
  decisions: DecisionArrays;
  sizing: ResolvedSizing;
  risk: ResolvedRisk;
  settings: SimSettings;
}

export interface OpenPosition {
  side: 'long' | 'short';
  size: number;
  entryBar: number;
  entryPrice: number;
}

export interface SimResult {
  trades: Trade[];
  /** equity[k] = equity at the close of bar from + k. */
  equity: Float64Array;
  feesPaid: number;
  /** Orders actually executed from decisions (entries, exits, reversals; stop exits not counted). */
  orders: number;
  finalCash: number;
  /** Position still open at the end (only when closeAtEnd is false); not in `trades`. */
  openPosition: OpenPosition | null;
}

/** Resolve a strategy's sizing and risk with its parameter values. */
export function resolveSizingAndRisk(doc: StrategyDoc, params: ParamValues): { sizing: ResolvedSizing; risk: ResolvedRisk } {
  const s: Sizing = doc.sizing ?? { type: 'fraction', fraction: 1 };
  const sizing: ResolvedSizing =
    s.type === 'fraction' ? { kind: 'fraction', fraction: numberOf(s.fraction, params) } : { kind: 'quote', amount: numberOf(s.amount, params) };
  const level = (l: Level | undefined): ResolvedLevel | undefined =>
    l === undefined ? undefined
    : l.type === 'percent' ? { kind: 'percent', percent: numberOf(l.percent, params) }
    : { kind: 'atr', multiple: numberOf(l.multiple, params) };
  return {
    sizing,
    risk: { stopLoss: level(doc.risk?.stopLoss), takeProfit: level(doc.risk?.takeProfit), trailingStop: level(doc.risk?.trailingStop) },
  };
}

/** Round a size down to a multiple of `step` (0 = no rounding), tolerant of binary fractions like 0.1. */
export function roundLot(size: number, step: number): number {
  if (!(size > 0)) return 0;
  if (step <= 0) return size;
  const k = Math.floor(size / step + 1e-9);
  return k > 0 ? k * step : 0;
}

export function simulate(input: SimInput): SimResult {
  const { cols, from, to, decisions, sizing, risk, settings } = input;
  const { open, high, low, close } = cols;
  const ts = cols.ts;
  const fee = settings.feeBps / 10_000;
  const slip = settings.slippageBps / 10_000;
  const nextOpen = settings.fill !== 'close';
  const signals = decisions.signals;
  const n = Math.max(0, to - from);
  const equity = new Float64Array(n);
  const trades: Trade[] = [];

  let cash = settings.initialCash;
  let feesPaid = 0;
  let orders = 0;
  // Position state
  let dir = 0; // 1 long, -1 short, 0 flat
  let size = 0;
  let entryPrice = 0;
  let entryBar = 0;
  let entryFee = 0;
  let stopLevel = NaN; // fixed stop-loss price
  let targetLevel = NaN; // take-profit price
  let trailDist = NaN; // absolute trailing distance (ATR) ...
  let trailPct = NaN; // ... or fraction of the best price
  let best = NaN; // best price since entry (high for long, low for short), up to the previous bar

  const timeOf = (bar: number) => (ts ? ts[bar] : bar);

  function openPos(d: number, raw: number, bar: number, k: number): void {
    const price = d > 0 ? raw * (1 + slip) : raw * (1 - slip);
    if (!(cash > 0) || !(price > 0)) return;
    const maxNotional = cash / (1 + fee);
    const notional = sizing.kind === 'fraction' ? sizing.fraction * maxNotional : Math.min(sizing.amount, maxNotional);
    const q = roundLot(notional / price, settings.lotStep);
    if (!(q > 0)) return;
    const f = q * price * fee;
    cash += d > 0 ? -(q * price) - f : q * price - f;
    feesPaid += f;
    dir = d;
    size = q;
    entryPrice = price;
    entryBar = bar;
    entryFee = f;
    best = price;
    stopLevel = levelPrice(risk.stopLoss, -d, decisions.stopAtr, k);
    targetLevel = levelPrice(risk.takeProfit, d, decisions.targetAtr, k);
    const tr = risk.trailingStop;
    trailPct = tr?.kind === 'percent' ? tr.percent / 100 : NaN;
    trailDist = tr?.kind === 'atr' && decisions.trailAtr ? tr.multiple * decisions.trailAtr[k] : NaN;
  }

  /** Price of a stop (towards = -dir) or target (towards = dir) level away from the entry price. */
  function levelPrice(l: ResolvedLevel | undefined, towards: number, atr: Float64Array | undefined, k: number): number {
    if (!l) return NaN;
    const dist = l.kind === 'percent' ? (entryPrice * l.percent) / 100 : atr ? l.multiple * atr[k] : NaN;
    return entryPrice + towards * dist; // NaN when the ATR is still warming up: no level
  }

  function closePos(raw: number, bar: number, reason: ExitReason): void {
    const price = dir > 0 ? raw * (1 - slip) : raw * (1 + slip);
    const f = size * price * fee;
    cash += dir > 0 ? size * price - f : -(size * price) - f;
    feesPaid += f;
    const pnl = dir * (price - entryPrice) * size - entryFee - f;
    trades.push({
      side: dir > 0 ? 'long' : 'short',
      entryBar,
      exitBar: bar,
      entryTime: timeOf(entryBar),
      exitTime: timeOf(bar),
      entryPrice,
      exitPrice: price,
      size,
      pnl,
      pnlPct: (100 * pnl) / (size * entryPrice),
      fees: entryFee + f,
      exitReason: reason,
    });
    dir = 0;
    size = 0;
  }

  /** Execute a resolved action at raw price `raw` in bar `bar` (decision index `k`). */
  function execute(action: Action, raw: number, bar: number, k: number, exitsOnly: boolean): void {
    if (action === NONE) return;
    if (action === CLOSE || action === REVERSE_TO_LONG || action === REVERSE_TO_SHORT) {
      if (dir !== 0) closePos(raw, bar, action === CLOSE ? 'signal' : 'reverse');
    }
    orders++;
    if (exitsOnly) return;
    if (action === OPEN_LONG || action === REVERSE_TO_LONG) openPos(1, raw, bar, k);
    else if (action === OPEN_SHORT || action === REVERSE_TO_SHORT) openPos(-1, raw, bar, k);
  }

  /** Current trailing stop price (NaN if none). */
  function trailLevel(): number {
    if (trailPct === trailPct) return dir > 0 ? best * (1 - trailPct) : best * (1 + trailPct);
    if (trailDist === trailDist) return best - dir * trailDist;
    return NaN;
  }

  /** Check stop-loss / trailing stop / take-profit of the open position against bar j. */
  function checkLevels(j: number): void {
    const o = open[j];
    const t = trailLevel();
    // Effective stop: the tighter of the fixed and trailing stops.
    let stop = stopLevel;
    let stopReason: ExitReason = 'stopLoss';
    if (t === t && (stop !== stop || (dir > 0 ? t > stop : t < stop))) {
      stop = t;
      stopReason = 'trailingStop';
    }
    const target = targetLevel;
    if (dir > 0) {
      if (stop === stop && o <= stop) return closePos(o, j, stopReason);
      if (target === target && o >= target) return closePos(o, j, 'takeProfit');
      if (stop === stop && low[j] <= stop) return closePos(stop, j, stopReason);
      if (target === target && high[j] >= target) return closePos(target, j, 'takeProfit');
      if (high[j] > best) best = high[j];
    } else {
      if (stop === stop && o >= stop) return closePos(o, j, stopReason);
      if (target === target && o <= target) return closePos(o, j, 'takeProfit');
      if (stop === stop && high[j] >= stop) return closePos(stop, j, stopReason);
      if (target === target && low[j] <= target) return closePos(target, j, 'takeProfit');
      if (low[j] < best) best = low[j];
    }
  }

  let pending: Action = NONE;
  let pendingK = 0;
  const last = to - 1;
  for (let j = from; j < to; j++) {
    const k = j - from;
    const isLast = j === last;
    if (pending !== NONE) {
      execute(pending, open[j], j, pendingK, isLast && settings.closeAtEnd);
      pending = NONE;
    }
    if (isLast && settings.closeAtEnd) {
      if (dir !== 0) closePos(open[j], j, 'end');
      equity[k] = cash;
      break;
    }
    if (dir !== 0) checkLevels(j);
    const s = signals[k];
    if (s !== 0) {
      const action = resolveAction(dir, s);
      if (action !== NONE) {
        if (!nextOpen) execute(action, close[j], j, k, false);
        else if (!isLast) {
          pending = action;
          pendingK = k;
        }
      }
    }
    equity[k] = dir === 0 ? cash : cash + dir * size * close[j];
  }

  return {
    trades,
    equity,
    feesPaid,
    orders,
    finalCash: cash,
    openPosition: dir !== 0 ? { side: dir > 0 ? 'long' : 'short', size, entryBar, entryPrice } : null,
  };
}
