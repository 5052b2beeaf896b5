/**
 * In-memory cache of stored datasets' columns (SharedArrayBuffers), least recently used first out, within a byte
 * budget. Columnar files are content-addressed (`<sha256>.bin`) and never change, so an entry stays valid until its
 * file is removed. Backtests only read the buffers; a time range is copied out of the cached columns.
 */
import { COLUMN_NAMES, type ReadColumnsResult, type SharedOhlcvColumns, type TimeRange } from './columnar.js';

export interface CachedColumns {
  rows: number;
  columns: SharedOhlcvColumns;
}

const bytesOf = (rows: number) => rows * 8 * COLUMN_NAMES.length;

/** First index with ts[i] >= value (or > value when `strict`). */
function lowerBound(ts: Float64Array, value: number, strict: boolean): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (strict ? ts[mid] <= value : ts[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class ColumnCache {
  private readonly entries = new Map<string, CachedColumns>();
  private used = 0;

  constructor(readonly maxBytes: number) {}

  /** Whether a dataset of `rows` rows may be cached at all (at most half the budget, so one entry cannot evict all). */
  fits(rows: number): boolean {
    return bytesOf(rows) <= this.maxBytes / 2;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.used };
  }

  set(key: string, value: CachedColumns): void {
    if (!this.fits(value.rows)) return;
    this.delete(key);
    this.entries.set(key, value);
    this.used += bytesOf(value.rows);
    for (const [k, v] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.entries.delete(k);
      this.used -= bytesOf(v.rows);
    }
  }

  delete(key: string): void {
    const v = this.entries.get(key);
    if (!v) return;
    this.entries.delete(key);
    this.used -= bytesOf(v.rows);
  }

  /** The rows of `key` within `range` (both bounds inclusive), as readColumns returns them; undefined on a miss. */
  read(key: string, range: TimeRange = {}): ReadColumnsResult | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    this.entries.delete(key); // most recently used goes last
    this.entries.set(key, hit);
    const ts = new Float64Array(hit.columns.ts, 0, hit.rows);
    const start = range.fromMs !== undefined ? lowerBound(ts, range.fromMs, false) : 0;
    const end = Math.max(start, range.toMs !== undefined ? lowerBound(ts, range.toMs, true) : hit.rows);
    const rows = end - start;
    let columns = hit.columns;
    if (rows !== hit.rows) {
      columns = {} as SharedOhlcvColumns;
      for (const name of COLUMN_NAMES) columns[name] = hit.columns[name].slice(start * 8, end * 8);
    }
    return { rows, fromMs: rows ? ts[start] : null, toMs: rows ? ts[end - 1] : null, columns };
  }
}
