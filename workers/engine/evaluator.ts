/**
 * Strategy evaluator: compiles a validated strategy once into closures over a small Float64Array of "slots"
 * (candle fields, constants, indicator outputs), then turns each CLOSED candle into a decision.
 *
 * Two ways to drive it, which share the same compiled step function and therefore give identical decisions:
 * - `onCandle(candle)`: one closed candle at a time (live bots, the paper exchange);
 * - `runInto(columns, from, to, out)`: array mode over typed columns (backtests).
 *
 * A decision is a set of signals (entry/exit per side) evaluated on the bar's close; it does not know the
 * position. `resolveAction(position, signals)` turns it into an order for whoever holds the position.
 */
import {
  DEFAULT_OUTPUT,
  numberOf,
  parseStrategy,
  resolveParams,
  sourceIndicator,
  type CompareOp,
  type Condition,
  type IndicatorDef,
  type Level,
  type NumberOrParam,
  type Operand,
  type ParamValues,
  type Source,
  type StrategyDoc,
} from './dsl.js';
import { Atr, Bbands, Ema, Highest, Lag, Lowest, Macd, Roc, Rsi, Sma } from './indicators.js';

/** Signal bits of a decision. */
export const LONG_ENTRY = 1;
export const LONG_EXIT = 2;
export const SHORT_ENTRY = 4;
export const SHORT_EXIT = 8;

export interface Candle {
  /** Bar open time, epoch ms (informational). */
  time?: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export interface Decision {
  /** 0-based count of candles seen before this one. */
  bar: number;
  /** Bit set of LONG_ENTRY | LONG_EXIT | SHORT_ENTRY | SHORT_EXIT. */
  signals: number;
  longEntry: boolean;
  longExit: boolean;
  shortEntry: boolean;
  shortExit: boolean;
  /** ATR value of the indicator named by risk.stopLoss / takeProfit / trailingStop when it is ATR-based, else NaN. */
  stopAtr: number;
  targetAtr: number;
  trailAtr: number;
}

/** Typed OHLCV columns (same length). */
export interface Columns {
  ts?: Float64Array;
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
}

/** Array-mode output buffers, indexed from `offset` (ATR buffers only needed when the strategy uses ATR levels). */
export interface DecisionArrays {
  signals: Uint8Array;
  stopAtr?: Float64Array;
  targetAtr?: Float64Array;
  trailAtr?: Float64Array;
}

export interface Evaluator {
  readonly doc: StrategyDoc;
  readonly params: ParamValues;
  /** Which risk levels are ATR-based (their distances come from the decision's *Atr values). */
  readonly usesAtr: { stopLoss: boolean; takeProfit: boolean; trailingStop: boolean };
  /** Feed one closed candle; returns the decision taken on its close. */
  onCandle(candle: Candle): Decision;
  /**
   * Feed candles [from, to) of `cols` in order, writing decision k (candle from + k) at out[offset + k].
   * Successive calls continue the same stream; mixing with onCandle is allowed.
   */
  runInto(cols: Columns, from: number, to: number, out: DecisionArrays, offset?: number): void;
  /** Number of candles seen so far. */
  readonly bars: number;
}

export type Action = 0 | 1 | 2 | 3 | 4 | 5;
export const NONE = 0;
export const OPEN_LONG = 1;
export const OPEN_SHORT = 2;
export const CLOSE = 3;
export const REVERSE_TO_LONG = 4;
export const REVERSE_TO_SHORT = 5;

/**
 * What to do with `position` (1 long, -1 short, 0 flat) given a decision's signals:
 * - flat: enter long if only the long entry fires, short if only the short entry fires (both: nothing);
 * - long: reverse to short if the short entry fires and the long entry does not, else close on the long exit;
 * - short: the mirror image. No pyramiding: an entry on the side already held does nothing.
 */
export function resolveAction(position: number, signals: number): Action {
  const le = (signals & LONG_ENTRY) !== 0;
  const se = (signals & SHORT_ENTRY) !== 0;
  if (position === 0) return le && !se ? OPEN_LONG : se && !le ? OPEN_SHORT : NONE;
  if (position > 0) return se && !le ? REVERSE_TO_SHORT : (signals & LONG_EXIT) !== 0 ? CLOSE : NONE;
  return le && !se ? REVERSE_TO_LONG : (signals & SHORT_EXIT) !== 0 ? CLOSE : NONE;
}

type Node = () => void;
type Cond = () => boolean;
/** Closures are built once every slot is known, over the final `cur` (this bar) and `prev` (previous bar) arrays. */
type NodeFactory = (cur: Float64Array) => Node;
type CondFactory = (cur: Float64Array, prev: Float64Array) => Cond;

const PRICE_SLOT = { open: 0, high: 1, low: 2, close: 3, volume: 4 } as const;

/**
 * Compile a strategy. `doc` may be unvalidated (it is validated here); `params` are overrides of the declared
 * defaults. Throws a `StrategyError` carrying JSON-pointer issues if either is invalid.
 */
export function createEvaluator(doc: unknown, params: Record<string, number> = {}): Evaluator {
  const parsed = parseStrategy(doc);
  if (!parsed.ok) throw new StrategyError(parsed.issues);
  const resolved = resolveParams(parsed.value, params);
  if (!resolved.ok) throw new StrategyError(resolved.issues);
  return compile(parsed.value, resolved.value);
}

export class StrategyError extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid strategy: ${issues.map((i) => `${i.path || '/'}: ${i.message}`).join('; ')}`);
    this.name = 'StrategyError';
  }
}

function compile(doc: StrategyDoc, params: ParamValues): Evaluator {
  const slotInit: number[] = [NaN, NaN, NaN, NaN, NaN];
  const newSlot = (init = NaN) => slotInit.push(init) - 1;
  const nodes: NodeFactory[] = [];
  const num = (n: NumberOrParam) => numberOf(n, params);

  const defs = doc.indicators ?? {};
  const outSlots = new Map<string, Record<string, number>>();
  const constSlots = new Map<number, number>();
  const lagSlots = new Map<string, number>();

  const constant = (v: number) => {
    let s = constSlots.get(v);
    if (s === undefined) constSlots.set(v, (s = newSlot(v)));
    return s;
  };
  const lagged = (slot: number, bars: number): number => {
    if (!bars) return slot;
    const key = `${slot}@${bars}`;
    let s = lagSlots.get(key);
    if (s === undefined) {
      const out = (s = newSlot());
      const lag = new Lag(bars);
      nodes.push((cur) => () => {
        cur[out] = lag.update(cur[slot]);
      });
      lagSlots.set(key, s);
    }
    return s;
  };
  const indicatorSlot = (name: string, output?: string): number => {
    const def = defs[name];
    const outs = ensureIndicator(name);
    return outs[output ?? DEFAULT_OUTPUT[def.type]];
  };
  const sourceSlot = (src: Source | undefined, fallback: keyof typeof PRICE_SLOT): number => {
    if (src === undefined) return PRICE_SLOT[fallback];
    if (typeof src === 'string') return PRICE_SLOT[src];
    if ('price' in src) return lagged(PRICE_SLOT[src.price], src.barsAgo ?? 0);
    return lagged(indicatorSlot(src.indicator, src.output), src.barsAgo ?? 0);
  };

  /** Create the nodes of an indicator (after those of its source) and return its output slots. */
  function ensureIndicator(name: string): Record<string, number> {
    const existing = outSlots.get(name);
    if (existing) return existing;
    const def: IndicatorDef = defs[name];
    if (sourceIndicator(def) !== undefined) ensureIndicator(sourceIndicator(def)!);
    const outs = buildIndicator(def);
    outSlots.set(name, outs);
    return outs;
  }

  function buildIndicator(def: IndicatorDef): Record<string, number> {
    switch (def.type) {
      case 'sma':
      case 'ema':
      case 'rsi':
      case 'roc':
      case 'highest':
      case 'lowest': {
        const p = num(def.period);
        const src = sourceSlot(def.source, def.type === 'highest' ? 'high' : def.type === 'lowest' ? 'low' : 'close');
        const out = newSlot();
        const ind =
          def.type === 'sma' ? new Sma(p)
          : def.type === 'ema' ? new Ema(p)
          : def.type === 'rsi' ? new Rsi(p)
          : def.type === 'roc' ? new Roc(p)
          : def.type === 'highest' ? new Highest(p)
          : new Lowest(p);
        nodes.push((cur) => () => {
          cur[out] = ind.update(cur[src]);
        });
        return { value: out };
      }
      case 'atr': {
        const ind = new Atr(num(def.period));
        const out = newSlot();
        nodes.push((cur) => () => {
          cur[out] = ind.update(cur[1], cur[2], cur[3]);
        });
        return { value: out };
      }
      case 'macd': {
        const ind = new Macd(num(def.fast ?? 12), num(def.slow ?? 26), num(def.signal ?? 9));
        const src = sourceSlot(def.source, 'close');
        const line = newSlot();
        const signal = newSlot();
        const hist = newSlot();
        nodes.push((cur) => () => {
          cur[line] = ind.update(cur[src]);
          cur[signal] = ind.signal;
          cur[hist] = ind.hist;
        });
        return { line, signal, hist };
      }
      case 'bbands': {
        const ind = new Bbands(num(def.period ?? 20), num(def.stdDev ?? 2));
        const src = sourceSlot(def.source, 'close');
        const upper = newSlot();
        const middle = newSlot();
        const lower = newSlot();
        nodes.push((cur) => () => {
          const m = ind.update(cur[src]);
          cur[middle] = m;
          cur[upper] = m === m ? ind.upper : NaN;
          cur[lower] = m === m ? ind.lower : NaN;
        });
        return { upper, middle, lower };
      }
    }
  }

  const operandSlot = (o: Operand): number => {
    if (typeof o === 'number') return constant(o);
    if ('param' in o) return constant(params[o.param]);
    if ('price' in o) return lagged(PRICE_SLOT[o.price], o.barsAgo ?? 0);
    return lagged(indicatorSlot(o.indicator, o.output), o.barsAgo ?? 0);
  };

  function compileCondition(cond: Condition): CondFactory {
    switch (cond.op) {
      case 'and':
      case 'or': {
        const parts = cond.conditions.map(compileCondition);
        const isAnd = cond.op === 'and';
        return (cur, prev) => {
          const fs = parts.map((f) => f(cur, prev));
          if (fs.length === 1) return fs[0];
          if (fs.length === 2) {
            const [a, b] = fs;
            return isAnd ? () => a() && b() : () => a() || b();
          }
          return isAnd ? () => fs.every((f) => f()) : () => fs.some((f) => f());
        };
      }
      case 'not': {
        const inner = compileCondition(cond.condition);
        return (cur, prev) => {
          const f = inner(cur, prev);
          return () => !f();
        };
      }
      default: {
        const op = cond.op;
        const a = operandSlot(cond.left);
        const b = operandSlot(cond.right);
        return (cur, prev) => compareCond(op, a, b, cur, prev);
      }
    }
  }

  const rules = doc.rules;
  const longEntryF = rules.long ? compileCondition(rules.long.entry) : undefined;
  const longExitF = rules.long?.exit ? compileCondition(rules.long.exit) : undefined;
  const shortEntryF = rules.short ? compileCondition(rules.short.entry) : undefined;
  const shortExitF = rules.short?.exit ? compileCondition(rules.short.exit) : undefined;

  const atrSlot = (lvl: Level | undefined) => (lvl?.type === 'atr' ? indicatorSlot(lvl.indicator) : -1);
  const stopSlot = atrSlot(doc.risk?.stopLoss);
  const targetSlot = atrSlot(doc.risk?.takeProfit);
  const trailSlot = atrSlot(doc.risk?.trailingStop);

  const cur = Float64Array.from(slotInit);
  const prev = Float64Array.from(slotInit);
  const steps: Node[] = nodes.map((f) => f(cur));
  const nNodes = steps.length;
  const longEntry = longEntryF?.(cur, prev);
  const longExit = longExitF?.(cur, prev);
  const shortEntry = shortEntryF?.(cur, prev);
  const shortExit = shortExitF?.(cur, prev);
  let bars = 0;

  /** The compiled per-candle step: update every node in dependency order, evaluate the rules. */
  function step(o: number, h: number, l: number, c: number, v: number): number {
    cur[0] = o;
    cur[1] = h;
    cur[2] = l;
    cur[3] = c;
    cur[4] = v;
    for (let k = 0; k < nNodes; k++) steps[k]();
    let s = 0;
    if (longEntry !== undefined && longEntry()) s |= LONG_ENTRY;
    if (longExit !== undefined && longExit()) s |= LONG_EXIT;
    if (shortEntry !== undefined && shortEntry()) s |= SHORT_ENTRY;
    if (shortExit !== undefined && shortExit()) s |= SHORT_EXIT;
    prev.set(cur);
    bars++;
    return s;
  }

  const slotValue = (slot: number) => (slot < 0 ? NaN : cur[slot]);

  return {
    doc,
    params,
    usesAtr: { stopLoss: stopSlot >= 0, takeProfit: targetSlot >= 0, trailingStop: trailSlot >= 0 },
    get bars() {
      return bars;
    },
    onCandle(candle: Candle): Decision {
      const bar = bars;
      const s = step(candle.open, candle.high, candle.low, candle.close, candle.volume);
      return {
        bar,
        signals: s,
        longEntry: (s & LONG_ENTRY) !== 0,
        longExit: (s & LONG_EXIT) !== 0,
        shortEntry: (s & SHORT_ENTRY) !== 0,
        shortExit: (s & SHORT_EXIT) !== 0,
        stopAtr: slotValue(stopSlot),
        targetAtr: slotValue(targetSlot),
        trailAtr: slotValue(trailSlot),
      };
    },
    runInto(cols: Columns, from: number, to: number, out: DecisionArrays, offset = 0): void {
      const { open, high, low, close, volume } = cols;
      const sig = out.signals;
      const anyAtr = stopSlot >= 0 || targetSlot >= 0 || trailSlot >= 0;
      for (let i = from, j = offset; i < to; i++, j++) {
        sig[j] = step(open[i], high[i], low[i], close[i], volume[i]);
        if (anyAtr) {
          if (out.stopAtr) out.stopAtr[j] = slotValue(stopSlot);
          if (out.targetAtr) out.targetAtr[j] = slotValue(targetSlot);
          if (out.trailAtr) out.trailAtr[j] = slotValue(trailSlot);
        }
      }
    },
  };
}

/**
 * A comparison between two slots. Comparisons with NaN are false (JavaScript semantics), so nothing fires while
 * an operand is warming up. crossesAbove: prev left <= prev right and left > right (both bars defined).
 */
function compareCond(op: CompareOp, a: number, b: number, cur: Float64Array, prev: Float64Array): Cond {
  switch (op) {
    case 'gt':
      return () => cur[a] > cur[b];
    case 'gte':
      return () => cur[a] >= cur[b];
    case 'lt':
      return () => cur[a] < cur[b];
    case 'lte':
      return () => cur[a] <= cur[b];
    case 'eq':
      return () => cur[a] === cur[b];
    case 'crossesAbove':
      return () => prev[a] <= prev[b] && cur[a] > cur[b];
    case 'crossesBelow':
      return () => prev[a] >= prev[b] && cur[a] < cur[b];
  }
}
