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
import * as T from './trades.js';
import type { Trade } from './trades.js';
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

export type { ExitReason, Trade, TradeRecords } from './trades.js';

const SIGNAL = 0;
const REVERSE = 1;
const STOP_LOSS = 2;
const TAKE_PROFIT = 3;
const TRAILING_STOP = 4;
const END = 5;

/**
 * Indexes of the broker's numeric state in `Broker.s`. The state lives in one Float64Array rather than in object
 * fields or closure variables: a typed-array store never allocates, whereas a double held in an object field or a
 * captured variable can end up boxed (one HeapNumber per store: ~20 bytes per bar or per trade of garbage, which
 * made the simulation GC-bound).
 */
const CASH = 0;
const FEES_PAID = 1;
const ORDERS = 2;
/** Raw (pre-slippage) price of the fill being executed (passed here rather than as an argument: no boxing). */
const PX = 3;
/** 1 long, -1 short, 0 flat. */
const DIR = 4;
const SIZE = 5;
const ENTRY_PRICE = 6;
const ENTRY_BAR = 7;
const ENTRY_FEE = 8;
/** Of the last closed trade. */
const EXIT_PRICE = 9;
const PNL = 10;
const FEES = 11;
/** Fixed stop-loss and take-profit prices (NaN = none). */
const STOP_LEVEL = 12;
const TARGET_LEVEL = 13;
/** Trailing distance: absolute (ATR based) or a fraction of the best price (NaN = none). */
const TRAIL_DIST = 14;
const TRAIL_PCT = 15;
/** Best price since entry (high for a long, low for a short) up to the previous bar. */
const BEST = 16;
/** Fee and slippage rates. */
const FEE = 17;
const SLIP = 18;
const STATE_SIZE = 19;

/**
 * Closed trades as packed records (./trades.ts) in one Float64Array that doubles when full: no per-trade object or
 * boxed number while the simulation runs. A caller that runs many simulations (a worker thread) passes the buffer
 * of the previous log as `reuse`, so after the first runs a simulation allocates nothing for its trades.
 */
export class TradeLog {
  length = 0;
  private buf: Float64Array;

  /**
   * `capacity`: trades the first buffer holds. Large buffers cost only the pages written (the allocator maps them
   * lazily), so a generous estimate saves the copies of doubling.
   */
  constructor(
    private readonly ts?: Float64Array,
    reuse?: Float64Array,
    capacity = 256,
  ) {
    this.buf = reuse ?? new Float64Array(Math.max(16, capacity) * T.TRADE_FIELDS);
  }

  /**
   * Append the trade just closed, read from the broker state `s` (see CASH...; no double arguments, which V8
   * would box if it did not inline this call).
   */
  push(s: Float64Array, exitBar: number, reason: number): void {
    const o = this.length * T.TRADE_FIELDS;
    if (o === this.buf.length) this.grow();
    const n = this.buf;
    const entryBar = s[ENTRY_BAR];
    n[o + T.SIDE] = s[DIR];
    n[o + T.ENTRY_BAR] = entryBar;
    n[o + T.EXIT_BAR] = exitBar;
    n[o + T.ENTRY_TIME] = this.ts ? this.ts[entryBar] : entryBar;
    n[o + T.EXIT_TIME] = this.ts ? this.ts[exitBar] : exitBar;
    n[o + T.ENTRY_PRICE] = s[ENTRY_PRICE];
    n[o + T.EXIT_PRICE] = s[EXIT_PRICE];
    n[o + T.SIZE] = s[SIZE];
    n[o + T.PNL] = s[PNL];
    n[o + T.PNL_PCT] = (100 * s[PNL]) / (s[SIZE] * s[ENTRY_PRICE]);
    n[o + T.FEES] = s[FEES];
    n[o + T.EXIT_REASON] = reason;
    this.length++;
  }

  private grow(): void {
    const next = new Float64Array(Math.max(256 * T.TRADE_FIELDS, this.buf.length * 2));
    next.set(this.buf);
    this.buf = next;
  }

  /** The whole buffer (for reuse by the next log of the same owner once this one's records are no longer used). */
  get buffer(): Float64Array {
    return this.buf;
  }

  /** All trades as packed records: a view of the log's buffer (no copy). */
  records(): T.TradeRecords {
    return this.buf.subarray(0, this.length * T.TRADE_FIELDS);
  }

  get(i: number): Trade {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`trade ${i} of ${this.length}`);
    return T.tradeAt(this.buf, i);
  }

  toArray(): Trade[] {
    return T.unpackTrades(this.records());
  }
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
  /** Where to write the equity curve (at least to - from long; a view of its start is returned); default: new. */
  equityOut?: Float64Array;
  /** Buffer for the trade log to start in (a previous log's `buffer`: it is overwritten); default: new. */
  tradesBuffer?: Float64Array;
}

export interface OpenPosition {
  side: 'long' | 'short';
  size: number;
  entryBar: number;
  entryPrice: number;
}

export interface SimResult {
  /** Closed trades (materialised from `tradeLog` on first access). */
  readonly trades: Trade[];
  tradeLog: TradeLog;
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

/**
 * resolveAction as a table, indexed by ((position + 1) << 4) | signals: a load instead of a chain of
 * data-dependent branches (the position alternates and signals arrive at random bars, so those mispredict).
 */
const ACTION_OF = Uint8Array.from({ length: 48 }, (_, i) => resolveAction((i >> 4) - 1, i & 15));
/** Per action: reason of the exit it makes (NO_CLOSE: none), and direction of the position it opens (0: none). */
const NO_CLOSE = 255;
const CLOSE_REASON = new Uint8Array(6).fill(NO_CLOSE);
CLOSE_REASON[CLOSE] = SIGNAL;
CLOSE_REASON[REVERSE_TO_LONG] = CLOSE_REASON[REVERSE_TO_SHORT] = REVERSE;
const OPEN_DIR = new Int8Array(6);
OPEN_DIR[OPEN_LONG] = OPEN_DIR[REVERSE_TO_LONG] = 1;
OPEN_DIR[OPEN_SHORT] = OPEN_DIR[REVERSE_TO_SHORT] = -1;

/** Cash and the single open position; numeric state in `s` (see above). */
class Broker {
  readonly s = new Float64Array(STATE_SIZE);
  readonly trades: TradeLog;

  constructor(
    private readonly input: SimInput,
    readonly hasLevels: boolean,
  ) {
    const s = this.s;
    s[CASH] = input.settings.initialCash;
    s[FEE] = input.settings.feeBps / 10_000;
    s[SLIP] = input.settings.slippageBps / 10_000;
    s[STOP_LEVEL] = s[TARGET_LEVEL] = s[TRAIL_DIST] = s[TRAIL_PCT] = s[BEST] = NaN;
    // Room for a trade every 16 bars (up to 64k trades, 6 MB) before the log has to grow.
    this.trades = new TradeLog(input.cols.ts, input.tradesBuffer, Math.min(1 << 16, Math.ceil((input.to - input.from) / 16)));
  }

  /** Open a position of direction d at raw price `px` in bar `bar`, sized from cash; decision index k. */
  open(d: number, bar: number, k: number): void {
    const s = this.s;
    const { sizing, settings } = this.input;
    const fee = s[FEE];
    // Branch-free forms of "d > 0 ? a : b" (d is exactly 1 or -1, so the products and sign flips are exact and
    // give the same bits): the direction alternates on every reversal, which a branch predicts badly.
    const price = s[PX] * (1 + d * s[SLIP]);
    if (!(s[CASH] > 0) || !(price > 0)) return;
    const maxNotional = s[CASH] / (1 + fee);
    const notional = sizing.kind === 'fraction' ? sizing.fraction * maxNotional : Math.min(sizing.amount, maxNotional);
    const q = roundLot(notional / price, settings.lotStep);
    if (!(q > 0)) return;
    const f = q * price * fee;
    s[CASH] += -d * (q * price) - f;
    s[FEES_PAID] += f;
    s[DIR] = d;
    s[SIZE] = q;
    s[ENTRY_PRICE] = price;
    s[ENTRY_BAR] = bar;
    s[ENTRY_FEE] = f;
    s[BEST] = price;
    if (this.hasLevels) this.setLevels(d, k);
  }

  /** Stop, target and trailing distance of the position just opened (decision index k for ATR values). */
  private setLevels(d: number, k: number): void {
    const s = this.s;
    const { risk, decisions } = this.input;
    s[STOP_LEVEL] = this.levelPrice(risk.stopLoss, -d, decisions.stopAtr, k);
    s[TARGET_LEVEL] = this.levelPrice(risk.takeProfit, d, decisions.targetAtr, k);
    const tr = risk.trailingStop;
    s[TRAIL_PCT] = tr?.kind === 'percent' ? tr.percent / 100 : NaN;
    s[TRAIL_DIST] = tr?.kind === 'atr' && decisions.trailAtr ? tr.multiple * decisions.trailAtr[k] : NaN;
  }

  /** Price of a stop (towards = -dir) or target (towards = dir) level away from the entry price. */
  private levelPrice(l: ResolvedLevel | undefined, towards: number, atr: Float64Array | undefined, k: number): number {
    const s = this.s;
    if (!l) return NaN;
    const dist = l.kind === 'percent' ? (s[ENTRY_PRICE] * l.percent) / 100 : atr ? l.multiple * atr[k] : NaN;
    return s[ENTRY_PRICE] + towards * dist; // NaN while the ATR is warming up: no level
  }

  /** Close the open position at raw price `px` in bar `bar`. */
  close(bar: number, reason: number): void {
    const s = this.s;
    const dir = s[DIR];
    const size = s[SIZE];
    const price = s[PX] * (1 - dir * s[SLIP]); // branch-free, exact: see open()
    const f = size * price * s[FEE];
    s[CASH] += dir * (size * price) - f;
    s[FEES_PAID] += f;
    s[EXIT_PRICE] = price;
    s[PNL] = dir * (price - s[ENTRY_PRICE]) * size - s[ENTRY_FEE] - f;
    s[FEES] = s[ENTRY_FEE] + f;
    this.trades.push(s, bar, reason);
    s[DIR] = 0;
    s[SIZE] = 0;
  }

  /** Execute a resolved action at raw price `px` in bar `bar` (decision index `k`); entries skipped if exitsOnly. */
  execute(action: Action, bar: number, k: number, exitsOnly: boolean): void {
    const s = this.s;
    if (action === NONE) return;
    s[ORDERS]++;
    // Table lookups rather than tests of the action: fewer mispredicted branches when reversals alternate.
    if (CLOSE_REASON[action] !== NO_CLOSE && s[DIR] !== 0) this.close(bar, CLOSE_REASON[action]);
    if (exitsOnly) return;
    const d = OPEN_DIR[action];
    if (d !== 0) this.open(d, bar, k);
  }

  /** Current trailing stop price (NaN if none). */
  private trailLevel(): number {
    const s = this.s;
    if (s[TRAIL_PCT] === s[TRAIL_PCT]) return s[DIR] > 0 ? s[BEST] * (1 - s[TRAIL_PCT]) : s[BEST] * (1 + s[TRAIL_PCT]);
    if (s[TRAIL_DIST] === s[TRAIL_DIST]) return s[BEST] - s[DIR] * s[TRAIL_DIST];
    return NaN;
  }

  /** Exit at raw price `price`. */
  private exitAt(price: number, bar: number, reason: number): void {
    this.s[PX] = price;
    this.close(bar, reason);
  }

  /**
   * Check the stop-loss, trailing stop and take-profit of the open position against bar j: a gap through a level
   * fills at the open; the stop is assumed hit first when both are inside the bar; then the best price moves.
   */
  checkLevels(j: number): void {
    const s = this.s;
    const { open, high, low } = this.input.cols;
    const o = open[j];
    const t = this.trailLevel();
    const dir = s[DIR];
    // Effective stop: the tighter of the fixed and trailing stops.
    let stop = s[STOP_LEVEL];
    let stopReason = STOP_LOSS;
    if (t === t && (stop !== stop || (dir > 0 ? t > stop : t < stop))) {
      stop = t;
      stopReason = TRAILING_STOP;
    }
    const target = s[TARGET_LEVEL];
    if (dir > 0) {
      if (stop === stop && o <= stop) return this.exitAt(o, j, stopReason);
      if (target === target && o >= target) return this.exitAt(o, j, TAKE_PROFIT);
      if (stop === stop && low[j] <= stop) return this.exitAt(stop, j, stopReason);
      if (target === target && high[j] >= target) return this.exitAt(target, j, TAKE_PROFIT);
      if (high[j] > s[BEST]) s[BEST] = high[j];
    } else {
      if (stop === stop && o >= stop) return this.exitAt(o, j, stopReason);
      if (target === target && o <= target) return this.exitAt(o, j, TAKE_PROFIT);
      if (stop === stop && high[j] >= stop) return this.exitAt(stop, j, stopReason);
      if (target === target && low[j] <= target) return this.exitAt(target, j, TAKE_PROFIT);
      if (low[j] < s[BEST]) s[BEST] = low[j];
    }
  }
}

export function simulate(input: SimInput): SimResult {
  const { cols, from, to, decisions, risk, settings } = input;
  const { open, close } = cols;
  const nextOpen = settings.fill !== 'close';
  const closeAtEnd = settings.closeAtEnd;
  const signals = decisions.signals;
  const bars = Math.max(0, to - from);
  const equity = input.equityOut && input.equityOut.length >= bars ? input.equityOut.subarray(0, bars) : new Float64Array(bars);
  const hasLevels = risk.stopLoss !== undefined || risk.takeProfit !== undefined || risk.trailingStop !== undefined;
  const b = new Broker(input, hasLevels);
  const st = b.s;

  let pending: Action = NONE;
  let pendingK = 0;
  const last = to - 1;
  for (let j = from; j < to; j++) {
    // Fast path: with no order pending and no stop/target to watch, the bars up to the next signal only mark
    // the position to market (same arithmetic as step 5 below).
    if (pending === NONE && (st[DIR] === 0 || !hasLevels)) {
      const base = st[CASH];
      const exposure = st[DIR] * st[SIZE];
      let jj = j;
      // Two loops rather than a test per bar: flat, the equity is the cash; in a position, cash + exposure * close.
      if (exposure === 0) for (; jj < last && signals[jj - from] === 0; jj++) equity[jj - from] = base;
      else for (; jj < last && signals[jj - from] === 0; jj++) equity[jj - from] = base + exposure * close[jj];
      if (jj !== j) {
        j = jj - 1;
        continue;
      }
    }
    const k = j - from;
    const isLast = j === last;
    // 1. Fill the order decided on the previous close.
    if (pending !== NONE) {
      st[PX] = open[j];
      b.execute(pending, j, pendingK, isLast && closeAtEnd);
      pending = NONE;
    }
    // 2. End of data.
    if (isLast && closeAtEnd) {
      if (st[DIR] !== 0) {
        st[PX] = open[j];
        b.close(j, END);
      }
      equity[k] = st[CASH];
      break;
    }
    // 3. Protective levels.
    if (st[DIR] !== 0 && hasLevels) b.checkLevels(j);
    // 4. Decision on this bar's close.
    const s = signals[k];
    if (s !== 0) {
      const action = ACTION_OF[(((st[DIR] + 1) << 4) | (s & 15))] as Action;
      if (action !== NONE) {
        if (!nextOpen) {
          st[PX] = close[j];
          b.execute(action, j, k, false);
        }
        else if (!isLast) {
          pending = action;
          pendingK = k;
        }
      }
    }
    // 5. Mark to market.
    equity[k] = st[DIR] === 0 ? st[CASH] : st[CASH] + st[DIR] * st[SIZE] * close[j];
  }

  let trades: Trade[] | undefined;
  return {
    get trades() {
      return (trades ??= b.trades.toArray());
    },
    tradeLog: b.trades,
    equity,
    feesPaid: st[FEES_PAID],
    orders: st[ORDERS],
    finalCash: st[CASH],
    openPosition: st[DIR] !== 0 ? { side: st[DIR] > 0 ? 'long' : 'short', size: st[SIZE], entryBar: st[ENTRY_BAR], entryPrice: st[ENTRY_PRICE] } : null,
  };
}
