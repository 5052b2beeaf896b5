/**
 * Closed trades as packed records: TRADE_FIELDS float64 values per trade, one after the other, in one Float64Array.
 * This is how the simulation logs trades, how the worker returns them (one buffer crosses the thread instead of
 * tens of thousands of objects) and, little-endian, how results store them (src/modules/backtests/backtests.codec).
 * `unpackTrades` builds `Trade` objects for the few callers that want them.
 */

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

/** Packed trades: TRADE_FIELDS values per trade (see the offsets below). */
export type TradeRecords = Float64Array;

export const EXIT_REASONS: readonly ExitReason[] = ['signal', 'reverse', 'stopLoss', 'takeProfit', 'trailingStop', 'end'];

/** Offsets of a trade's fields in its record. SIDE is 1 (long) or -1 (short); EXIT_REASON indexes EXIT_REASONS. */
export const SIDE = 0;
export const ENTRY_BAR = 1;
export const EXIT_BAR = 2;
export const ENTRY_TIME = 3;
export const EXIT_TIME = 4;
export const ENTRY_PRICE = 5;
export const EXIT_PRICE = 6;
export const SIZE = 7;
export const PNL = 8;
export const PNL_PCT = 9;
export const FEES = 10;
export const EXIT_REASON = 11;
export const TRADE_FIELDS = 12;

/** Number of trades in `records`. */
export const tradeCount = (records: TradeRecords): number => Math.floor(records.length / TRADE_FIELDS);

/** The trade at index i of `records`. */
export function tradeAt(r: TradeRecords, i: number): Trade {
  const o = i * TRADE_FIELDS;
  return {
    side: r[o + SIDE] > 0 ? 'long' : 'short',
    entryBar: r[o + ENTRY_BAR],
    exitBar: r[o + EXIT_BAR],
    entryTime: r[o + ENTRY_TIME],
    exitTime: r[o + EXIT_TIME],
    entryPrice: r[o + ENTRY_PRICE],
    exitPrice: r[o + EXIT_PRICE],
    size: r[o + SIZE],
    pnl: r[o + PNL],
    pnlPct: r[o + PNL_PCT],
    fees: r[o + FEES],
    exitReason: EXIT_REASONS[r[o + EXIT_REASON]] ?? 'signal',
  };
}

/** Trades [from, to) of `records` as objects. */
export function unpackTrades(records: TradeRecords, from = 0, to = tradeCount(records)): Trade[] {
  const out: Trade[] = new Array(Math.max(0, to - from));
  for (let i = from; i < to; i++) out[i - from] = tradeAt(records, i);
  return out;
}

/** Packs trade objects; missing fields become NaN (metrics read entryBar, exitBar, pnl and pnlPct only). */
export function packTrades(trades: readonly Partial<Trade>[]): TradeRecords {
  const r = new Float64Array(trades.length * TRADE_FIELDS).fill(Number.NaN);
  trades.forEach((t, i) => {
    const o = i * TRADE_FIELDS;
    if (t.side !== undefined) r[o + SIDE] = t.side === 'long' ? 1 : -1;
    const set = (off: number, v: number | undefined) => {
      if (v !== undefined) r[o + off] = v;
    };
    set(ENTRY_BAR, t.entryBar);
    set(EXIT_BAR, t.exitBar);
    set(ENTRY_TIME, t.entryTime);
    set(EXIT_TIME, t.exitTime);
    set(ENTRY_PRICE, t.entryPrice);
    set(EXIT_PRICE, t.exitPrice);
    set(SIZE, t.size);
    set(PNL, t.pnl);
    set(PNL_PCT, t.pnlPct);
    set(FEES, t.fees);
    if (t.exitReason !== undefined) r[o + EXIT_REASON] = EXIT_REASONS.indexOf(t.exitReason);
  });
  return r;
}
