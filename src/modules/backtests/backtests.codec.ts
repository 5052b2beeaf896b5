/**
 * Storage of a result's trades and equity curve: fixed-size little-endian float64 records, base64 in text columns.
 * A trade record is 96 bytes = 128 base64 characters (no padding inside), so a page of trades is
 * `substring(trades_data from offset*TRADE_CHARS+1 for limit*TRADE_CHARS)`, itself valid base64; a large result is
 * written without building JSON on the API thread or making the database parse it.
 */
import type { ExitReason, Trade } from '../../../workers/types.js';

const EXIT_REASONS: readonly ExitReason[] = ['signal', 'reverse', 'stopLoss', 'takeProfit', 'trailingStop', 'end'];
const FIELDS = 12;
/** Bytes per trade record: side, entryBar, exitBar, entryTime, exitTime, entryPrice, exitPrice, size, pnl, pnlPct, fees, exitReason. */
export const TRADE_BYTES = FIELDS * 8;
/** Base64 characters per trade record. */
export const TRADE_CHARS = (TRADE_BYTES / 3) * 4;

export function encodeTrades(trades: readonly Trade[]): Buffer {
  const buf = Buffer.allocUnsafe(trades.length * TRADE_BYTES);
  let o = 0;
  for (const t of trades) {
    const reason = EXIT_REASONS.indexOf(t.exitReason);
    const values = [t.side === 'long' ? 1 : -1, t.entryBar, t.exitBar, t.entryTime, t.exitTime, t.entryPrice, t.exitPrice, t.size, t.pnl, t.pnlPct, t.fees, reason];
    for (const v of values) {
      buf.writeDoubleLE(v, o);
      o += 8;
    }
  }
  return buf;
}

export function decodeTrades(buf: Uint8Array): Trade[] {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Math.floor(b.length / TRADE_BYTES);
  const out: Trade[] = [];
  for (let k = 0; k < n; k++) {
    const o = k * TRADE_BYTES;
    const f = (i: number) => b.readDoubleLE(o + i * 8);
    out.push({
      side: f(0) > 0 ? 'long' : 'short',
      entryBar: f(1),
      exitBar: f(2),
      entryTime: f(3),
      exitTime: f(4),
      entryPrice: f(5),
      exitPrice: f(6),
      size: f(7),
      pnl: f(8),
      pnlPct: f(9),
      fees: f(10),
      exitReason: EXIT_REASONS[f(11)] ?? 'signal',
    });
  }
  return out;
}

/** (t, equity) float64 pairs. */
export function encodeEquity(e: { t: number[]; equity: number[] }): Buffer {
  const buf = Buffer.allocUnsafe(e.t.length * 16);
  for (let i = 0; i < e.t.length; i++) {
    buf.writeDoubleLE(e.t[i], i * 16);
    buf.writeDoubleLE(e.equity[i], i * 16 + 8);
  }
  return buf;
}

export function decodeEquity(buf: Uint8Array): { t: Float64Array; equity: Float64Array } {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Math.floor(b.length / 16);
  const t = new Float64Array(n);
  const equity = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    t[i] = b.readDoubleLE(i * 16);
    equity[i] = b.readDoubleLE(i * 16 + 8);
  }
  return { t, equity };
}

/** Trades per stored chunk (128 KiB of base64). */
export const TRADES_PER_CHUNK = 1024;

/** The trades as base64 chunks of TRADES_PER_CHUNK records. */
export function encodeTradeChunks(trades: readonly Trade[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < trades.length; i += TRADES_PER_CHUNK) out.push(encodeTrades(trades.slice(i, i + TRADES_PER_CHUNK)).toString('base64'));
  return out;
}
