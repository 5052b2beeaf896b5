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

/**
 * Compiled form. Every value the strategy uses lives in a numbered slot; a slot is a column holding one block of
 * consecutive bars: value on the k-th bar of the block = `S[slot][O[slot] + k]`. Slots 0-4 are the candle fields
 * (in array mode they point into the caller's columns at the block's offset, without copying or subarray views).
 * Nodes (indicators, lags) fill their output columns for a block in dependency order; conditions turn columns into
 * 0/1 masks. Array mode runs blocks of up to BLOCK bars, onCandle runs blocks of one bar: same code, same numbers.
 */
type Node = (len: number) => void;
type CondRun = (len: number) => Uint8Array;
/** Builds a condition once every slot is known; `last` holds each slot's value on the bar before the block. */
type CondFactory = (last: Float64Array) => CondRun;

/** Bars per block in array mode. */
const BLOCK = 1024;

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
  const nodes: Node[] = [];
  /** Slot columns and their offsets, filled once every slot is known (closures only read them at run time). */
  const S: Float64Array[] = [];
  const O: number[] = [];
  const num = (n: NumberOrParam) => numberOf(n, params);

  const defs = doc.indicators ?? {};
  const outSlots = new Map<string, Record<string, number>>();
  const constSlots = new Map<number, number>();
  const lagSlots = new Map<string, number>();
  /** Slots whose previous-bar value is needed (operands of crosses). */
  const crossSlots = new Set<number>();

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
      s = newSlot();
      const lag = new Lag(bars);
      const out = s;
      nodes.push((len) => lag.block(S[slot], O[slot], S[out], len));
      lagSlots.set(key, s);
    }
    return s;
  };
  const indicatorSlot = (name: string, output?: string): number => {
    const outs = ensureIndicator(name);
    return outs[output ?? DEFAULT_OUTPUT[defs[name].type]];
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
    const dep = sourceIndicator(def);
    if (dep !== undefined) ensureIndicator(dep);
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
        if (def.type === 'sma') return { value: smaNode(p, src, out) };
        const ind =
          def.type === 'ema' ? new Ema(p)
          : def.type === 'rsi' ? new Rsi(p)
          : def.type === 'roc' ? new Roc(p)
          : def.type === 'highest' ? new Highest(p)
          : new Lowest(p);
        nodes.push((len) => ind.block(S[src], O[src], S[out], len));
        return { value: out };
      }
      case 'atr': {
        const ind = new Atr(num(def.period));
        const out = newSlot();
        nodes.push((len) => ind.block(S[1], S[2], S[3], O[1], S[out], len));
        return { value: out };
      }
      case 'macd': {
        const ind = new Macd(num(def.fast ?? 12), num(def.slow ?? 26), num(def.signal ?? 9));
        const src = sourceSlot(def.source, 'close');
        const line = newSlot();
        const signal = newSlot();
        const hist = newSlot();
        nodes.push((len) => ind.block(S[src], O[src], S[line], S[signal], S[hist], len));
        return { line, signal, hist };
      }
      case 'bbands': {
        const ind = new Bbands(num(def.period ?? 20), num(def.stdDev ?? 2));
        const src = sourceSlot(def.source, 'close');
        const upper = newSlot();
        const middle = newSlot();
        const lower = newSlot();
        nodes.push((len) => ind.block(S[src], O[src], S[upper], S[middle], S[lower], len));
        return { upper, middle, lower };
      }
    }
  }

  /**
   * SMA nodes: two SMAs of the same source (the fast and slow averages of a cross) share one node running
   * Sma.pairBlock, which overlaps their two running sums (same values as two separate passes). The second SMA
   * takes the first one's place in the node order, which is safe: its only input, the source, is ready there.
   */
  const unpairedSma = new Map<number, { ind: Sma; out: number; node: number }>();
  function smaNode(period: number, src: number, out: number): number {
    const ind = new Sma(period);
    const first = unpairedSma.get(src);
    if (first) {
      unpairedSma.delete(src);
      const a = first.ind;
      const outA = first.out;
      nodes[first.node] = (len) => Sma.pairBlock(a, ind, S[src], O[src], S[outA], S[out], len);
    } else {
      unpairedSma.set(src, { ind, out, node: nodes.length });
      nodes.push((len) => ind.block(S[src], O[src], S[out], len));
    }
    return out;
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
        return (last) => {
          const runs = parts.map((f) => f(last));
          if (runs.length === 1) return runs[0];
          const m = new Uint8Array(BLOCK);
          return (len) => {
            const m0 = runs[0](len);
            for (let k = 0; k < len; k++) m[k] = m0[k];
            for (let j = 1; j < runs.length; j++) {
              const mj = runs[j](len);
              if (isAnd) for (let k = 0; k < len; k++) m[k] &= mj[k];
              else for (let k = 0; k < len; k++) m[k] |= mj[k];
            }
            return m;
          };
        };
      }
      case 'not': {
        const inner = compileCondition(cond.condition);
        return (last) => {
          const run = inner(last);
          const m = new Uint8Array(BLOCK);
          return (len) => {
            const mi = run(len);
            for (let k = 0; k < len; k++) m[k] = mi[k] ^ 1;
            return m;
          };
        };
      }
      default: {
        const op = cond.op;
        const a = operandSlot(cond.left);
        const b = operandSlot(cond.right);
        if (op === 'crossesAbove' || op === 'crossesBelow') crossSlots.add(a).add(b);
        return (last) => compareCond(op, a, b, S, O, last);
      }
    }
  }

  const rules = doc.rules;
  const condFactories = [rules.long?.entry, rules.long?.exit, rules.short?.entry, rules.short?.exit].map((c) =>
    c === undefined ? undefined : compileCondition(c),
  );

  const atrSlot = (lvl: Level | undefined) => (lvl?.type === 'atr' ? indicatorSlot(lvl.indicator) : -1);
  const stopSlot = atrSlot(doc.risk?.stopLoss);
  const targetSlot = atrSlot(doc.risk?.takeProfit);
  const trailSlot = atrSlot(doc.risk?.trailingStop);

  // All slots are known now: allocate the columns.
  for (const init of slotInit) {
    S.push(new Float64Array(BLOCK).fill(init));
    O.push(0);
  }
  /** Candle columns used by onCandle (array mode points slots 0-4 at the caller's columns instead). */
  const own = S.slice(0, 5);
  const last = Float64Array.from(slotInit);
  const keep = Int32Array.from(crossSlots);
  const [longEntry, longExit, shortEntry, shortExit] = condFactories.map((f) => f?.(last));
  const nNodes = nodes.length;
  const zeros = new Uint8Array(BLOCK);
  const present = [longEntry, longExit, shortEntry, shortExit].flatMap((r, bit) => (r ? [{ run: r, shift: bit }] : []));
  const nRules = present.length;
  const ruleRuns = present.map((p) => p.run);
  const [shift0, shift1] = present.map((p) => p.shift);
  const pair = crossPair([rules.long?.entry, rules.long?.exit, rules.short?.entry, rules.short?.exit], operandSlot);
  let bars = 0;

  /**
   * The compiled step: run `len` bars whose candle fields are in S[0..4], writing the signal bits of bar k to
   * sig[at + k]. Nodes run in dependency order, then the four rules.
   */
  function runBlock(len: number, sig: Uint8Array, at: number): void {
    for (let n = 0; n < nNodes; n++) nodes[n](len);
    if (pair) {
      // Fused "crossesAbove(a, b)" + "crossesBelow(a, b)": one pass straight into the signal column instead of two
      // mask passes and a merge (same comparisons as compareCond, so the same bits).
      const A = S[pair.a];
      const B = S[pair.b];
      const oa = O[pair.a];
      const ob = O[pair.b];
      const up = pair.upShift;
      const down = pair.downShift;
      let pa = last[pair.a];
      let pb = last[pair.b];
      for (let k = 0; k < len; k++) {
        const x = A[oa + k];
        const y = B[ob + k];
        sig[at + k] = ((+(pa <= pb) & +(x > y)) << up) | ((+(pa >= pb) & +(x < y)) << down);
        pa = x;
        pb = y;
      }
    } else if (nRules === 1) {
      const m0 = ruleRuns[0](len);
      for (let k = 0; k < len; k++) sig[at + k] = m0[k] << shift0;
    } else if (nRules === 2) {
      // The common shapes (two entries, or one side with entry and exit): one pass over two masks.
      const m0 = ruleRuns[0](len);
      const m1 = ruleRuns[1](len);
      for (let k = 0; k < len; k++) sig[at + k] = (m0[k] << shift0) | (m1[k] << shift1);
    } else {
      const le = longEntry ? longEntry(len) : zeros;
      const lx = longExit ? longExit(len) : zeros;
      const se = shortEntry ? shortEntry(len) : zeros;
      const sx = shortExit ? shortExit(len) : zeros;
      for (let k = 0; k < len; k++) sig[at + k] = le[k] | (lx[k] << 1) | (se[k] << 2) | (sx[k] << 3);
    }
    for (let k = 0; k < keep.length; k++) last[keep[k]] = S[keep[k]][O[keep[k]] + len - 1];
    bars += len;
  }

  const one = new Uint8Array(1);
  const copySlot = (slot: number, to: Float64Array, at: number, len: number) => {
    const src = S[slot];
    const off = O[slot];
    for (let k = 0; k < len; k++) to[at + k] = src[off + k];
  };
  const slotValue = (slot: number) => (slot < 0 ? NaN : S[slot][O[slot]]);

  return {
    doc,
    params,
    usesAtr: { stopLoss: stopSlot >= 0, takeProfit: targetSlot >= 0, trailingStop: trailSlot >= 0 },
    get bars() {
      return bars;
    },
    onCandle(candle: Candle): Decision {
      const bar = bars;
      for (let f = 0; f < 5; f++) {
        S[f] = own[f];
        O[f] = 0;
      }
      own[0][0] = candle.open;
      own[1][0] = candle.high;
      own[2][0] = candle.low;
      own[3][0] = candle.close;
      own[4][0] = candle.volume;
      runBlock(1, one, 0);
      const s = one[0];
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
      const fields = [cols.open, cols.high, cols.low, cols.close, cols.volume];
      for (let i = from; i < to; i += BLOCK) {
        const len = Math.min(BLOCK, to - i);
        for (let f = 0; f < 5; f++) {
          S[f] = fields[f];
          O[f] = i;
        }
        const at = offset + (i - from);
        runBlock(len, out.signals, at);
        if (out.stopAtr && stopSlot >= 0) copySlot(stopSlot, out.stopAtr, at, len);
        if (out.targetAtr && targetSlot >= 0) copySlot(targetSlot, out.targetAtr, at, len);
        if (out.trailAtr && trailSlot >= 0) copySlot(trailSlot, out.trailAtr, at, len);
      }
    },
  };
}

/**
 * The common "always in the market" shape: exactly two rules, one `crossesAbove(a, b)` and one
 * `crossesBelow(a, b)` on the same operands (in either rule position). Returns the operand slots and the signal bit
 * of each, or undefined for any other shape. `rules` = [long entry, long exit, short entry, short exit].
 */
function crossPair(
  rules: (Condition | undefined)[],
  slotOf: (o: Operand) => number,
): { a: number; b: number; upShift: number; downShift: number } | undefined {
  const present = rules.flatMap((c, shift) => (c ? [{ c, shift }] : []));
  if (present.length !== 2) return undefined;
  const [r0, r1] = present;
  if (r0.c.op !== 'crossesAbove' && r0.c.op !== 'crossesBelow') return undefined;
  if (r1.c.op !== (r0.c.op === 'crossesAbove' ? 'crossesBelow' : 'crossesAbove')) return undefined;
  // operandSlot is memoised (same operand -> same slot), so this creates no new nodes.
  const a = slotOf(r0.c.left);
  const b = slotOf(r0.c.right);
  if (slotOf(r1.c.left) !== a || slotOf(r1.c.right) !== b) return undefined;
  const [up, down] = r0.c.op === 'crossesAbove' ? [r0, r1] : [r1, r0];
  return { a, b, upShift: up.shift, downShift: down.shift };
}

/**
 * A comparison of two slots into a 0/1 mask. Comparisons with NaN are false (IEEE semantics), so nothing fires
 * while an operand is warming up. crossesAbove: left <= right on the previous bar and left > right on this one.
 * `+(a > b)` rather than `a > b ? 1 : 0`: V8 then emits no branch, which matters on unpredictable data.
 */
function compareCond(op: CompareOp, a: number, b: number, S: Float64Array[], O: number[], last: Float64Array): CondRun {
  const m = new Uint8Array(BLOCK);
  switch (op) {
    case 'gt':
      return (len) => {
        const A = S[a];
        const B = S[b];
        const oa = O[a];
        const ob = O[b];
        for (let k = 0; k < len; k++) m[k] = +(A[oa + k] > B[ob + k]);
        return m;
      };
    case 'gte':
      return (len) => {
        const A = S[a];
        const B = S[b];
        const oa = O[a];
        const ob = O[b];
        for (let k = 0; k < len; k++) m[k] = +(A[oa + k] >= B[ob + k]);
        return m;
      };
    case 'lt':
      return (len) => {
        const A = S[a];
        const B = S[b];
        const oa = O[a];
        const ob = O[b];
        for (let k = 0; k < len; k++) m[k] = +(A[oa + k] < B[ob + k]);
        return m;
      };
    case 'lte':
      return (len) => {
        const A = S[a];
        const B = S[b];
        const oa = O[a];
        const ob = O[b];
        for (let k = 0; k < len; k++) m[k] = +(A[oa + k] <= B[ob + k]);
        return m;
      };
    case 'eq':
      return (len) => {
        const A = S[a];
        const B = S[b];
        const oa = O[a];
        const ob = O[b];
        for (let k = 0; k < len; k++) m[k] = +(A[oa + k] === B[ob + k]);
        return m;
      };
    case 'crossesAbove':
      return (len) => {
        const A = S[a];
        const B = S[b];
        const oa = O[a];
        const ob = O[b];
        let pa = last[a];
        let pb = last[b];
        for (let k = 0; k < len; k++) {
          const x = A[oa + k];
          const y = B[ob + k];
          m[k] = +(pa <= pb) & +(x > y);
          pa = x;
          pb = y;
        }
        return m;
      };
    case 'crossesBelow':
      return (len) => {
        const A = S[a];
        const B = S[b];
        const oa = O[a];
        const ob = O[b];
        let pa = last[a];
        let pb = last[b];
        for (let k = 0; k < len; k++) {
          const x = A[oa + k];
          const y = B[ob + k];
          m[k] = +(pa >= pb) & +(x < y);
          pa = x;
          pb = y;
        }
        return m;
      };
  }
}
