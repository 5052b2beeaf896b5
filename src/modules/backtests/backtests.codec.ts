/**
 * Storage of a result's trades and equity curve: fixed-size little-endian float64 records, base64 in text columns.
 * A trade record is 96 bytes = 128 base64 characters (no padding inside), so a page of trades is
 * `substring(trades_data from offset*TRADE_CHARS+1 for limit*TRADE_CHARS)`, itself valid base64; a large result is
 * written without building JSON on the API thread or making the database parse it.
 */
import { TRADE_FIELDS, unpackTrades, type Trade, type TradeRecords } from '../../../workers/engine/trades.js';

/** Bytes per trade record (workers/engine/trades.ts: side, entryBar, exitBar, entryTime, exitTime, entryPrice, exitPrice, size, pnl, pnlPct, fees, exitReason). */
export const TRADE_BYTES = TRADE_FIELDS * 8;
/** Base64 characters per trade record (a multiple of 4: records encode independently of their neighbours). */
const TRADE_CHARS = (TRADE_BYTES / 3) * 4;

/** The records' bytes (the platform is little-endian: columnar.ts refuses to run otherwise). */
const bytesOf = (r: TradeRecords) => Buffer.from(r.buffer, r.byteOffset, r.byteLength);

export function decodeTrades(buf: Uint8Array): Trade[] {
  const n = Math.floor(buf.byteLength / TRADE_BYTES);
  // Copied into an aligned buffer: a Buffer decoded from base64 may start at any byte offset.
  const records = new Float64Array(n * TRADE_FIELDS);
  new Uint8Array(records.buffer).set(buf.subarray(0, n * TRADE_BYTES));
  return unpackTrades(records);
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

/** The trades as base64 chunks of TRADES_PER_CHUNK records (one encode, then slices: records are 128 characters). */
export function encodeTradeChunks(records: TradeRecords): string[] {
  const all = bytesOf(records).toString('base64');
  const step = TRADES_PER_CHUNK * TRADE_CHARS;
  const out: string[] = [];
  for (let i = 0; i < all.length; i += step) out.push(all.slice(i, i + step));
  return out;
}
