/**
 * Seeded synthetic OHLCV CSV for benchmarks: `generateCsv(path, rows, seed)`.
 *
 * Header `timestamp,open,high,low,close,volume`, epoch-ms open times on a fixed grid (1 minute by default, from
 * 2020-01-01 UTC), a geometric random walk (Gaussian log returns, σ ≈ 0.1 % per bar, start 30,000), high/low
 * spread beyond open/close, 2-dp prices and 6-dp volumes: byte-wise close to a Binance 1m export (~60 bytes a row).
 * The same (rows, seed, options) always produce the same bytes.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export interface GenerateOptions {
  startMs?: number;
  intervalMs?: number;
  startPrice?: number;
}

/** mulberry32: small, fast, seeded 32-bit PRNG returning [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes the CSV to `path`; resolves with its size in bytes. */
export async function generateCsv(path: string, rows: number, seed: number, opts: GenerateOptions = {}): Promise<number> {
  const { startMs = Date.UTC(2020, 0, 1), intervalMs = 60_000, startPrice = 30_000 } = opts;
  const rnd = mulberry32(seed);
  const gauss = () => {
    // Box-Muller
    const u = 1 - rnd();
    const v = rnd();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const out = createWriteStream(path);
  let bytes = 0;
  let price = startPrice;
  let batch: string[] = [];
  const flush = async () => {
    const s = batch.join('');
    batch = [];
    bytes += Buffer.byteLength(s);
    if (!out.write(s)) await once(out, 'drain');
  };
  batch.push('timestamp,open,high,low,close,volume\n');
  for (let i = 0; i < rows; i++) {
    const open = price;
    const close = Math.max(0.01, open * Math.exp(gauss() * 0.001));
    const high = Math.max(open, close) * (1 + Math.abs(gauss()) * 0.0005);
    const low = Math.min(open, close) * (1 - Math.abs(gauss()) * 0.0005);
    const volume = Math.exp(gauss() * 0.8 + 3);
    const o = open.toFixed(2);
    const c = close.toFixed(2);
    // rounding must not push open/close outside [low, high]
    const h = Math.max(Number(high.toFixed(2)), Number(o), Number(c)).toFixed(2);
    const l = Math.min(Number(low.toFixed(2)), Number(o), Number(c)).toFixed(2);
    batch.push(`${startMs + i * intervalMs},${o},${h},${l},${c},${volume.toFixed(6)}\n`);
    price = Number(c);
    if (batch.length >= 10_000) await flush();
  }
  await flush();
  out.end();
  await once(out, 'finish');
  return bytes;
}

/**
 * The limit the backtest benchmarks compare against: a hand-written typed-array SMA(fast)/SMA(slow) cross loop with the
 * engine's rules (decision on the close, fill at the next open, reversal = close then open with all cash, fee on every
 * fill's notional, close at the last bar's open), writing an equity curve like the engine does. Returns final equity.
 */
export function smaCrossLoop(
  open: Float64Array,
  close: Float64Array,
  opts: { fast: number; slow: number; initialCash: number; feeBps: number },
): number {
  const { fast, slow } = opts;
  const n = close.length;
  const fee = opts.feeBps / 10_000;
  const equity = new Float64Array(n);
  let sumF = 0;
  let sumS = 0;
  let prevF = NaN;
  let prevS = NaN;
  let cash = opts.initialCash;
  let dir = 0;
  let size = 0;
  let pending = 0; // +1 go long, -1 go short
  for (let i = 0; i < n; i++) {
    if (pending !== 0) {
      const px = open[i];
      if (i === n - 1) {
        // last bar: only the closing half of a reversal
        if (dir !== 0) cash += dir * size * px - size * px * fee;
        dir = 0;
      } else {
        if (dir !== 0) cash += dir * size * px - size * px * fee;
        const q = cash / (1 + fee) / px;
        cash -= pending * q * px + q * px * fee;
        dir = pending;
        size = q;
      }
      pending = 0;
    }
    if (i === n - 1) {
      if (dir !== 0) cash += dir * size * open[i] - size * open[i] * fee;
      dir = 0;
      equity[i] = cash;
      break;
    }
    const c = close[i];
    sumF += c;
    sumS += c;
    if (i >= fast) sumF -= close[i - fast];
    if (i >= slow) sumS -= close[i - slow];
    const f = i >= fast - 1 ? sumF / fast : NaN;
    const s = i >= slow - 1 ? sumS / slow : NaN;
    if (prevF <= prevS && f > s && dir !== 1) pending = 1;
    else if (prevF >= prevS && f < s && dir !== -1) pending = -1;
    prevF = f;
    prevS = s;
    equity[i] = cash + dir * size * c;
  }
  return equity[n - 1];
}
