/**
 * Streaming CSV → columnar ingest for OHLCV datasets (pure: no Fastify, no DB).
 *
 * The input is read chunk by chunk; a hand-written byte scanner splits lines and parses numbers straight from the
 * bytes into growing Float64Arrays (no per-line strings), while a sha256 of the raw bytes is computed on the fly.
 * Only a partial last line is carried between chunks, so chunk boundaries may fall anywhere (inside a number, inside
 * a CRLF pair, inside the UTF-8 BOM).
 *
 * Accepted input
 * - Delimiter: `,` (or `;` / TAB when the header line has more of those). Fields may be wrapped in double quotes
 *   (no embedded quotes or line breaks). Spaces around fields are ignored. `\n` or `\r\n` line ends, optional
 *   UTF-8 BOM, blank lines are skipped (they still count for line numbers).
 * - Header (line 1), names matched case-insensitively after trimming: time column = first of `timestamp`,
 *   `open_time`, `datetime`, `date`, `time`, `ts`; an empty first header field (pandas' default index export) is the
 *   time column. Prices: `open`, `high`, `low`, `close` (required). `volume` (or `vol`) is OPTIONAL: without it every
 *   bar gets volume 0, `quality.hasVolume` is false and a warning says so (many FX/index exports have no volume;
 *   refusing them would be unhelpful, and a strategy that needs volume can check the flag). Other columns are ignored.
 *   Separate `date` + `time` columns (MetaTrader) are refused rather than silently folded into one bar per day.
 *   A file whose first line has no recognised name but starts with a number is read as headerless
 *   `time,open,high,low,close[,volume,...]` (Binance's data.vision kline dumps look like this).
 * - Time values: epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude on the first row
 *   (|v| < 1e11 → s, < 1e14 → ms, < 1e17 → µs, else ns) and required to stay in that unit; or ISO 8601 dates
 *   `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM[:SS[.fff]]` with optional `Z` / `±HH[:MM]` (also `/` as date separator).
 *   Dates without a zone are UTC. Stored as epoch ms.
 *
 * Fatal (400 INVALID_CSV, `extensions: { line, reason }`, first offending line, 1-based, header = line 1):
 *   empty file / no data rows, missing time/open/high/low/close column, a recognised column named twice,
 *   separate date and time columns,
 *   wrong field count, empty or non-numeric value (including NaN/Infinity), unparsable timestamp or a change of
 *   epoch unit, negative price or volume, high < low, a line longer than 64 KiB.
 * Warnings (the data is still stored; counted in `quality`, summarised in `warnings`):
 *   duplicate timestamps (the first row in file order is kept), out-of-order rows (stable-sorted by time),
 *   gaps (a step ≥ 1.5 × timeframe), open/close outside [low, high], zero volume, zero prices, no volume column.
 * Too large (> maxBytes): 413 DATASET_TOO_LARGE, raised as soon as the limit is crossed.
 *
 * Storage: `<dir>/<sha256>.bin` in the format of ./columnar.ts, written through temp file + fsync + rename only after
 * the whole input was parsed and validated; an existing complete file with the same hash is reused.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { HttpProblem, badRequest } from '../../errors.js';
import { isCompleteColumnarFile, writeColumns } from './columnar.js';
import type { OhlcvColumns, SharedOhlcvColumns } from './columnar.js';

export interface IngestOptions {
  /** Directory that receives `<sha256>.bin` (created if missing). */
  dir: string;
  /** Hard limit on raw input bytes; crossing it rejects with 413 DATASET_TOO_LARGE. */
  maxBytes: number;
  signal?: AbortSignal;
  /** Called after each chunk with the cumulative number of bytes read. */
  onProgress?: (bytes: number) => void;
}

export interface GapReport {
  /** Number of steps ≥ 1.5 × timeframe. */
  count: number;
  /** Bars missing inside those gaps: Σ (round(step / timeframe) − 1). */
  missingBars: number;
  /** Largest such step in ms (last bar before → first bar after), 0 when there is none. */
  largestMs: number;
  /** Daily bars only: gaps whose missing days are all Saturdays/Sundays (UTC), i.e. weekend closures of stock data. */
  weekendOnly: number;
  /** The first 20 gaps: `from` = last bar before the gap, `to` = first bar after (epoch ms). */
  first: Array<{ from: number; to: number }>;
}

export interface QualityReport {
  /** Bars stored (after dropping duplicates). */
  rows: number;
  /** Data lines read (bars stored + duplicates). */
  sourceRows: number;
  /** Rows dropped because an earlier row had the same timestamp. */
  duplicates: number;
  /** Of those, rows whose values differ from the kept row. */
  conflictingDuplicates: number;
  /** Rows whose timestamp is lower than the previous row's (file order); the result is sorted. */
  outOfOrder: number;
  gaps: GapReport;
  /** Rows with high < low: fatal, so always 0 in a returned report (kept for a stable report shape). */
  highLowViolations: number;
  /** Rows where open or close lies outside [low, high]. */
  priceOutsideRange: number;
  /** Rows with volume 0 (only counted when the file has a volume column). */
  zeroVolume: number;
  /** Rows with a price ≤ 0. Negative prices are fatal, so these are zero prices. */
  nonPositivePrice: number;
  hasVolume: boolean;
  /** First line (1-based) of each warning class found while streaming. */
  firstLines: { outOfOrder?: number; priceOutsideRange?: number; zeroVolume?: number; nonPositivePrice?: number };
}

export interface IngestResult {
  sha256: string;
  rows: number;
  bytes: number;
  fromMs: number;
  toMs: number;
  /** Median of the positive steps between bars (ms); null with fewer than 2 bars. */
  timeframeMs: number | null;
  /** `1m`, `5m`, `1h`, `1d`, `1w`, `1M` (28–31 days), otherwise the largest whole unit (`90s`, `45m`); null if unknown. */
  timeframe: string | null;
  quality: QualityReport;
  warnings: string[];
  /** Absolute path of the stored columnar file. */
  file: string;
  /** True when an identical dataset was already stored and the file was reused. */
  reused: boolean;
  /** The stored bars, as `readColumns` would return them (for the dataset cache). */
  columns: SharedOhlcvColumns;
}

export type IngestInput = AsyncIterable<Buffer | Uint8Array | string> | NodeJS.ReadableStream;

const MAX_LINE_BYTES = 64 * 1024;
const MAX_GAPS_LISTED = 20;
/** Largest instant a JS Date can hold. */
const MAX_DATE_MS = 8.64e15;

const TIME_NAMES = ['timestamp', 'open_time', 'datetime', 'date', 'time', 'ts'];
const FIELD_NAMES: Record<string, number> = { open: 1, high: 2, low: 3, close: 4, volume: 5, vol: 5 };
const ROLE_LABEL = ['time', 'open', 'high', 'low', 'close', 'volume'];

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
  1e19, 1e20, 1e21, 1e22];

const invalid = (line: number, reason: string) =>
  badRequest(`Invalid CSV at line ${line}: ${reason}`, 'INVALID_CSV', { extensions: { line, reason } });

/** Exact decimal → double for up to 15 significant digits and |exp| ≤ 22 (Clinger's fast path), else Number(). */
function parseNumber(buf: Buffer, s: number, e: number): number {
  while (s < e && (buf[s] === 32 || buf[s] === 9)) s++;
  while (e > s && (buf[e - 1] === 32 || buf[e - 1] === 9)) e--;
  if (s >= e) return Number.NaN;
  const start = s;
  let neg = false;
  let c = buf[s];
  if (c === 45 /* - */ || c === 43 /* + */) {
    neg = c === 45;
    s++;
  }
  let mant = 0;
  let digits = 0;
  let exp = 0;
  while (s < e && (c = buf[s] - 48) >= 0 && c <= 9) {
    mant = mant * 10 + c;
    digits++;
    s++;
  }
  if (s < e && buf[s] === 46 /* . */) {
    s++;
    while (s < e && (c = buf[s] - 48) >= 0 && c <= 9) {
      mant = mant * 10 + c;
      digits++;
      exp--;
      s++;
    }
  }
  if (digits === 0) return Number.NaN;
  if (s < e && (buf[s] === 101 || buf[s] === 69) /* e E */) {
    s++;
    let eneg = false;
    if (s < e && (buf[s] === 45 || buf[s] === 43)) {
      eneg = buf[s] === 45;
      s++;
    }
    let ev = 0;
    let ed = 0;
    while (s < e && (c = buf[s] - 48) >= 0 && c <= 9) {
      if (ev < 100000) ev = ev * 10 + c;
      ed++;
      s++;
    }
    if (ed === 0) return Number.NaN;
    exp += eneg ? -ev : ev;
  }
  if (s !== e) return Number.NaN;
  if (digits <= 15 && exp >= -22 && exp <= 22) {
    const v = exp < 0 ? mant / POW10[-exp] : mant * POW10[exp];
    return neg ? -v : v;
  }
  const v = Number(buf.toString('latin1', start, e));
  return Number.isFinite(v) ? v : Number.NaN;
}

function read2(buf: Buffer, i: number): number {
  const a = buf[i] - 48;
  const b = buf[i + 1] - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** ISO-8601-ish date/time → epoch ms; NaN when malformed or out of range. */
function parseIsoDate(buf: Buffer, s: number, e: number): number {
  if (e - s < 10) return Number.NaN;
  const y = read2(buf, s) * 100 + read2(buf, s + 2);
  const sep = buf[s + 4];
  if (read2(buf, s) < 0 || read2(buf, s + 2) < 0 || (sep !== 45 && sep !== 47) || buf[s + 7] !== sep) return Number.NaN;
  const mo = read2(buf, s + 5);
  const d = read2(buf, s + 8);
  if (mo < 1 || mo > 12 || d < 1) return Number.NaN;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (d > (mo === 2 && leap ? 29 : DAYS_IN_MONTH[mo - 1])) return Number.NaN;
  let p = s + 10;
  let ms = 0;
  if (p < e && (buf[p] === 84 /* T */ || buf[p] === 32 /* space */ || buf[p] === 116 /* t */)) {
    p++;
    if (e - p < 5 || buf[p + 2] !== 58) return Number.NaN;
    const hh = read2(buf, p);
    const mi = read2(buf, p + 3);
    if (hh < 0 || hh > 23 || mi < 0 || mi > 59) return Number.NaN;
    p += 5;
    let ss = 0;
    if (p < e && buf[p] === 58 /* : */) {
      ss = read2(buf, p + 1);
      if (ss < 0 || ss > 59 || p + 3 > e) return Number.NaN;
      p += 3;
      if (p < e && (buf[p] === 46 || buf[p] === 44) /* . or , */) {
        p++;
        let frac = 0;
        let scale = 1;
        let nd = 0;
        let c: number;
        while (p < e && (c = buf[p] - 48) >= 0 && c <= 9) {
          if (nd < 3) {
            frac = frac * 10 + c;
            scale *= 10;
          }
          nd++;
          p++;
        }
        if (nd === 0) return Number.NaN;
        ms = Math.floor((frac * 1000) / scale);
      }
    }
    ms += ((hh * 60 + mi) * 60 + ss) * 1000;
  }
  let offsetMin = 0;
  if (p < e) {
    const z = buf[p];
    if ((z === 90 || z === 122) /* Z z */ && p + 1 === e) p++;
    else if (z === 43 || z === 45) {
      const oh = read2(buf, p + 1);
      let om = 0;
      let q = p + 3;
      if (q < e && buf[q] === 58) q++;
      if (q < e) {
        om = read2(buf, q);
        q += 2;
      }
      if (oh < 0 || oh > 23 || om < 0 || om > 59 || q !== e) return Number.NaN;
      offsetMin = (z === 45 ? -1 : 1) * (oh * 60 + om);
      p = e;
    }
  }
  if (p !== e) return Number.NaN;
  return daysFromCivil(y, mo, d) * 86_400_000 + ms - offsetMin * 60_000;
}

/** Epoch unit classes by magnitude: 0 = s, 1 = ms, 2 = µs, 3 = ns. */
const UNIT_SCALE = [1000, 1, 1e-3, 1e-6];
const UNIT_NAME = ['seconds', 'milliseconds', 'microseconds', 'nanoseconds'];
function unitClass(v: number): number {
  const a = Math.abs(v);
  return a < 1e11 ? 0 : a < 1e14 ? 1 : a < 1e17 ? 2 : 3;
}

/** Rows parsed into a small buffer before they are appended to the columns. */
const STAGE_ROWS = 16_384;
/** Largest column a SharedArrayBuffer can hold here (4 GiB). */
const MAX_COLUMN_ROWS = 2 ** 29;

/**
 * A column in a growable SharedArrayBuffer: address space for the largest possible input is reserved up front
 * (nothing is committed), and each batch of staged rows grows it by exactly their size. The column is never
 * copied while it grows, ends exactly as long as the data, and is handed to worker threads and the dataset cache
 * as it is.
 */
class Column {
  readonly sab: SharedArrayBuffer;
  private readonly view: Float64Array;
  readonly stage = new Float64Array(STAGE_ROWS);
  constructor(maxRows: number) {
    this.sab = new SharedArrayBuffer(0, { maxByteLength: maxRows * 8 });
    this.view = new Float64Array(this.sab); // length-tracking
  }
  /** Appends the first `k` staged values at row `at`. */
  flush(at: number, k: number): void {
    this.sab.grow((at + k) * 8);
    this.view.set(k === STAGE_ROWS ? this.stage : this.stage.subarray(0, k), at);
  }
}

class Scanner {
  // parsed rows: n in all, of which the last k are still staged
  n = 0;
  private k = 0;
  private readonly cols: Column[];
  private readonly maxRows: number;
  // layout from the header
  private roles: Int8Array = new Int8Array(0);
  private nFields = 0;
  private delim = 44;
  private headerDone = false;
  hasVolume = false;
  private tsUnit = -1;
  // position
  line = 0;
  private carry: Buffer | null = null;
  private bomChecked = false;
  // streaming quality counters
  outOfOrder = 0;
  priceOutsideRange = 0;
  zeroVolume = 0;
  nonPositivePrice = 0;
  firstLines: QualityReport['firstLines'] = {};
  private lastTs = Number.NEGATIVE_INFINITY;
  // per-row scratch
  private readonly row = new Float64Array(6);

  /** `maxBytes`: the input's size limit; a data line takes at least 10 bytes (`1,1,1,1,1\n`), which bounds the rows. */
  constructor(maxBytes: number) {
    this.maxRows = Math.min(MAX_COLUMN_ROWS, Math.floor(maxBytes / 10) + 1);
    this.cols = [0, 1, 2, 3, 4, 5].map(() => new Column(this.maxRows));
  }

  push(buf: Buffer): void {
    let pos = 0;
    if (!this.bomChecked) {
      // Buffer until 3 bytes are available so a BOM split across chunks is still recognised.
      const head = this.carry ? Buffer.concat([this.carry, buf]) : buf;
      if (head.length < 3 && !head.includes(10)) {
        this.carry = Buffer.from(head);
        return;
      }
      this.bomChecked = true;
      this.carry = null;
      buf = head;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) pos = 3;
    }
    if (this.carry) {
      const nl = buf.indexOf(10, pos);
      if (nl < 0) {
        if (this.carry.length + buf.length - pos > MAX_LINE_BYTES) throw invalid(this.line + 1, 'line longer than 64 KiB');
        this.carry = Buffer.concat([this.carry, buf.subarray(pos)]);
        return;
      }
      if (this.carry.length + nl - pos > MAX_LINE_BYTES) throw invalid(this.line + 1, 'line longer than 64 KiB');
      const whole = Buffer.concat([this.carry, buf.subarray(pos, nl)]);
      this.carry = null;
      this.parseLine(whole, 0, whole.length);
      pos = nl + 1;
    }
    for (;;) {
      const nl = buf.indexOf(10, pos);
      if (nl < 0) break;
      // The limit holds whatever the chunking: a long line inside one big chunk is refused like one split across many.
      if (nl - pos > MAX_LINE_BYTES) throw invalid(this.line + 1, 'line longer than 64 KiB');
      this.parseLine(buf, pos, nl);
      pos = nl + 1;
    }
    if (pos < buf.length) {
      if (buf.length - pos > MAX_LINE_BYTES) throw invalid(this.line + 1, 'line longer than 64 KiB');
      this.carry = Buffer.from(buf.subarray(pos)); // copy: the producer may reuse its buffer
    }
  }

  end(): void {
    if (this.carry && this.carry.length > 0) {
      const last = this.carry;
      this.carry = null;
      this.parseLine(last, 0, last.length);
    }
    if (!this.headerDone) throw invalid(1, 'empty file');
    if (this.n === 0) throw invalid(this.line + 1, 'no data rows');
  }

  /** The parsed columns (each exactly n long, in its own SharedArrayBuffer; fixed-length views, which read faster). */
  columns(): Float64Array[] {
    this.flush();
    return this.cols.map((c) => new Float64Array(c.sab, 0, this.n));
  }

  private flush(): void {
    if (this.k === 0) return;
    const at = this.n - this.k;
    for (const col of this.cols) col.flush(at, this.k);
    this.k = 0;
  }

  private parseLine(buf: Buffer, s: number, e: number): void {
    this.line++;
    if (e > s && buf[e - 1] === 13) e--;
    if (s === e) return; // blank line
    if (!this.headerDone) {
      this.parseHeader(buf, s, e);
      return;
    }
    this.parseRow(buf, s, e);
  }

  /** Splits a line into raw fields (used for the header only). */
  private splitFields(buf: Buffer, s: number, e: number): string[] {
    const out: string[] = [];
    let p = s;
    for (;;) {
      let q = p;
      while (q < e && buf[q] !== this.delim) q++;
      out.push(buf.toString('utf8', p, q).trim().replace(/^"(.*)"$/s, '$1').trim());
      if (q >= e) break;
      p = q + 1;
    }
    return out;
  }

  private parseHeader(buf: Buffer, s: number, e: number): void {
    let best = 44;
    let bestCount = 0;
    for (const d of [44, 59, 9]) {
      let count = 0;
      for (let i = s; i < e; i++) if (buf[i] === d) count++;
      if (count > bestCount) {
        best = d;
        bestCount = count;
      }
    }
    this.delim = best;
    const names = this.splitFields(buf, s, e).map((n) => n.toLowerCase());
    const roles = new Int8Array(names.length).fill(-1);
    const seen = new Map<number, string>();
    const assign = (idx: number, role: number, name: string) => {
      const prev = seen.get(role);
      if (prev !== undefined) throw invalid(this.line, `column "${name}" duplicates "${prev}" (${ROLE_LABEL[role]})`);
      seen.set(role, name);
      roles[idx] = role;
    };
    names.forEach((name, i) => {
      const r = FIELD_NAMES[name];
      if (r !== undefined) assign(i, r, name);
    });
    let timeIdx = -1;
    for (const t of TIME_NAMES) {
      timeIdx = names.indexOf(t);
      if (timeIdx >= 0) break;
    }
    if (timeIdx >= 0 && names[timeIdx] === 'date' && names.includes('time')) {
      // MetaTrader-style Date,Time pairs: reading the date alone would fold every intraday bar into duplicates.
      throw invalid(this.line, 'separate date and time columns are not supported; combine them into one datetime column');
    }
    if (timeIdx < 0 && names[0] === '' && roles[0] === -1) timeIdx = 0;
    if (timeIdx >= 0) roles[timeIdx] = 0;

    if (seen.size === 0 && timeIdx < 0 && names.length >= 5 && !Number.isNaN(this.parseTsLoose(buf, s, e))) {
      // Headerless: time, open, high, low, close[, volume, ...]
      this.nFields = names.length;
      this.roles = new Int8Array(names.length).fill(-1);
      for (let i = 0; i < Math.min(6, names.length); i++) this.roles[i] = i;
      this.hasVolume = names.length >= 6;
      this.headerDone = true;
      this.parseRow(buf, s, e);
      return;
    }
    if (timeIdx < 0) {
      throw invalid(this.line, 'missing time column (timestamp, date, time, datetime, open_time or an unnamed first column)');
    }
    const missing = [1, 2, 3, 4].filter((r) => !seen.has(r)).map((r) => ROLE_LABEL[r]);
    if (missing.length) throw invalid(this.line, `missing column${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
    this.hasVolume = seen.has(5);
    this.roles = roles;
    this.nFields = names.length;
    this.headerDone = true;
  }

  /** Parses the first field of a line as a timestamp without touching unit state (headerless detection). */
  private parseTsLoose(buf: Buffer, s: number, e: number): number {
    let q = s;
    while (q < e && buf[q] !== this.delim) q++;
    const v = parseNumber(buf, s, q);
    return Number.isNaN(v) ? parseIsoDate(buf, s, q) : v;
  }

  private parseTs(buf: Buffer, s: number, e: number): number {
    while (s < e && (buf[s] === 32 || buf[s] === 9)) s++;
    while (e > s && (buf[e - 1] === 32 || buf[e - 1] === 9)) e--;
    if (e - s >= 10 && (buf[s + 4] === 45 || buf[s + 4] === 47)) {
      const t = parseIsoDate(buf, s, e);
      if (Number.isNaN(t)) throw invalid(this.line, `unparsable timestamp "${fieldText(buf, s, e)}"`);
      return t;
    }
    const v = parseNumber(buf, s, e);
    if (Number.isNaN(v)) throw invalid(this.line, `unparsable timestamp "${fieldText(buf, s, e)}"`);
    return this.epochToMs(v, buf, s, e);
  }

  /** Epoch value in the file's unit (fixed by the first row) → ms. */
  private epochToMs(v: number, buf: Buffer, s: number, e: number): number {
    const u = unitClass(v);
    if (this.tsUnit < 0) this.tsUnit = u;
    else if (u !== this.tsUnit) {
      throw invalid(this.line, `timestamp ${fieldText(buf, s, e)} is not in epoch ${UNIT_NAME[this.tsUnit]} like the first row`);
    }
    const t = Math.round(v * UNIT_SCALE[u]);
    if (!(Math.abs(t) <= MAX_DATE_MS)) throw invalid(this.line, `timestamp ${fieldText(buf, s, e)} is out of range`);
    return t;
  }

  private parseRow(buf: Buffer, s: number, e: number): void {
    const roles = this.roles;
    const row = this.row;
    row[5] = 0;
    let p = s;
    let f = 0;
    const delim = this.delim;
    const nRoles = roles.length;
    for (;;) {
      const role = f < nRoles ? roles[f] : -1;
      if (role >= 0) {
        // Fast path (almost every field of a real file): an unsigned decimal of at most 15 digits directly followed
        // by the delimiter or the line end, parsed in the same pass that finds the field's end. Exact: mant < 2^53
        // and one correctly rounded division by an exact power of ten. Anything else takes the general path below.
        let k = p;
        let mant = 0;
        let digits = 0;
        let scale = 0;
        let c = 0;
        while (k < e && (c = buf[k] - 48) >= 0 && c <= 9) {
          mant = mant * 10 + c;
          digits++;
          k++;
        }
        if (k < e && buf[k] === 46 && role > 0) {
          k++;
          while (k < e && (c = buf[k] - 48) >= 0 && c <= 9) {
            mant = mant * 10 + c;
            digits++;
            scale++;
            k++;
          }
        }
        if (digits > 0 && digits <= 15 && (k === e || buf[k] === delim)) {
          row[role] = role === 0 ? this.epochToMs(mant, buf, p, k) : scale === 0 ? mant : mant / POW10[scale];
          f++;
          if (k >= e) break;
          p = k + 1;
          continue;
        }
      }
      let fs = p;
      let fe: number;
      let q: number;
      // skip leading spaces to detect a quoted field
      while (p < e && buf[p] === 32) p++;
      if (p < e && buf[p] === 34 /* " */) {
        fs = p + 1;
        fe = buf.indexOf(34, fs);
        if (fe < 0 || fe >= e) throw invalid(this.line, 'unterminated quoted field');
        q = fe + 1;
        while (q < e && buf[q] === 32) q++;
        if (q < e && buf[q] !== this.delim) throw invalid(this.line, 'unexpected character after a quoted field');
      } else {
        q = p;
        while (q < e && buf[q] !== this.delim) q++;
        fe = q;
      }
      if (role >= 0) {
        if (role === 0) row[0] = this.parseTs(buf, fs, fe);
        else if (role > 0) {
          const v = parseNumber(buf, fs, fe);
          if (Number.isNaN(v)) {
            const text = fieldText(buf, fs, fe);
            throw invalid(this.line, text === '' ? `empty ${ROLE_LABEL[role]} value` : `non-numeric ${ROLE_LABEL[role]} value "${text}"`);
          }
          if (v < 0) throw invalid(this.line, `negative ${ROLE_LABEL[role]} ${fieldText(buf, fs, fe)}`);
          row[role] = v;
        }
      }
      f++;
      if (q >= e) break;
      p = q + 1;
    }
    if (f !== this.nFields) throw invalid(this.line, `expected ${this.nFields} fields, found ${f}`);
    const ts = row[0];
    const o = row[1];
    const h = row[2];
    const l = row[3];
    const c = row[4];
    const v = row[5];
    if (h < l) throw invalid(this.line, `high ${h} is below low ${l}`);
    if (o > h || o < l || c > h || c < l) {
      if (this.priceOutsideRange++ === 0) this.firstLines.priceOutsideRange = this.line;
    }
    if (this.hasVolume && v === 0 && this.zeroVolume++ === 0) this.firstLines.zeroVolume = this.line;
    if ((o === 0 || h === 0 || l === 0 || c === 0) && this.nonPositivePrice++ === 0) this.firstLines.nonPositivePrice = this.line;
    if (ts < this.lastTs && this.outOfOrder++ === 0) this.firstLines.outOfOrder = this.line;
    this.lastTs = ts;
    if (this.k === STAGE_ROWS) this.flush();
    if (this.n === this.maxRows) throw invalid(this.line, `more than ${this.maxRows} rows`);
    const k = this.k;
    const cols = this.cols;
    cols[0].stage[k] = ts;
    cols[1].stage[k] = o;
    cols[2].stage[k] = h;
    cols[3].stage[k] = l;
    cols[4].stage[k] = c;
    cols[5].stage[k] = v;
    this.k = k + 1;
    this.n++;
  }
}

function fieldText(buf: Buffer, s: number, e: number): string {
  const t = buf.toString('utf8', s, Math.min(e, s + 40)).trim();
  return e - s > 40 ? `${t}…` : t;
}

/** Stable sort by ts (when needed) and drop later rows with an already seen ts. */
function sortAndDedupe(cols: Float64Array[], outOfOrder: number): { cols: Float64Array[]; duplicates: number; conflicting: number } {
  let n = cols[0].length;
  if (outOfOrder > 0) {
    const ts = cols[0];
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    idx.sort((a, b) => ts[a] - ts[b] || a - b); // tie-break on position: stable by construction
    cols = cols.map((col) => {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = col[idx[i]];
      return out;
    });
  }
  const [ts, o, h, l, c, v] = cols;
  let w = 1;
  let duplicates = 0;
  let conflicting = 0;
  for (let r = 1; r < n; r++) {
    if (ts[r] === ts[w - 1]) {
      duplicates++;
      const k = w - 1;
      if (o[r] !== o[k] || h[r] !== h[k] || l[r] !== l[k] || c[r] !== c[k] || v[r] !== v[k]) conflicting++;
      continue;
    }
    if (w !== r) for (const col of cols) col[w] = col[r];
    w++;
  }
  if (n > 0) n = w;
  return { cols: cols.map((col) => col.subarray(0, n)), duplicates, conflicting };
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const AVG_MONTH = 30.436875 * DAY;

/** Median (lower) of the positive steps between consecutive (sorted, distinct) timestamps. */
function medianStep(ts: Float64Array): number | null {
  const n = ts.length;
  if (n < 2) return null;
  const counts = new Map<number, number>();
  for (let i = 1; i < n; i++) {
    const d = ts[i] - ts[i - 1];
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  const keys = [...counts.keys()].sort((a, b) => a - b);
  const target = Math.floor((n - 2) / 2); // index of the lower median among n-1 steps
  let seen = 0;
  for (const k of keys) {
    seen += counts.get(k) ?? 0;
    if (seen > target) return k;
  }
  return keys[keys.length - 1];
}

export function timeframeLabel(ms: number | null): string | null {
  if (ms === null || !(ms > 0)) return null;
  if (ms >= 28 * DAY && ms <= 31 * DAY) return '1M';
  const units: Array<[number, string]> = [[WEEK, 'w'], [DAY, 'd'], [HOUR, 'h'], [MINUTE, 'm'], [SECOND, 's']];
  for (const [size, suffix] of units) if (ms % size === 0) return `${ms / size}${suffix}`;
  return `${ms}ms`;
}

/** True when every bar time in [from, to) stepping by tf is a Saturday or Sunday (UTC). */
function onlyWeekend(from: number, to: number, tf: number): boolean {
  for (let t = from; t < to; t += tf) {
    const dow = (((Math.floor(t / DAY) + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday (4); 0 = Sunday
    if (dow !== 0 && dow !== 6) return false;
  }
  return true;
}

function gapReport(ts: Float64Array, tf: number | null, monthly: boolean): GapReport {
  const report: GapReport = { count: 0, missingBars: 0, largestMs: 0, weekendOnly: 0, first: [] };
  if (tf === null) return report;
  const unit = monthly ? AVG_MONTH : tf;
  const threshold = 1.5 * tf;
  for (let i = 1; i < ts.length; i++) {
    const d = ts[i] - ts[i - 1];
    if (d < threshold) continue;
    report.count++;
    const missing = Math.max(0, Math.round(d / unit) - 1);
    report.missingBars += missing;
    if (!monthly && tf === DAY && missing > 0 && missing <= 2 && onlyWeekend(ts[i - 1] + tf, ts[i], tf)) report.weekendOnly++;
    if (d > report.largestMs) report.largestMs = d;
    if (report.first.length < MAX_GAPS_LISTED) report.first.push({ from: ts[i - 1], to: ts[i] });
  }
  return report;
}

function formatMs(ms: number): string {
  return timeframeLabel(ms) ?? `${ms}ms`;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * Streams `input` (a Readable or any async iterable of byte chunks), validates it as an OHLCV CSV, and stores it as
 * `<opts.dir>/<sha256>.bin`. A Readable is destroyed only on abort; after an early rejection the caller disposes of it. Rejects with a 400 INVALID_CSV / 413 DATASET_TOO_LARGE HttpProblem, or the abort reason.
 * Nothing is written unless the whole input is valid.
 */
export async function ingestCsv(input: IngestInput, opts: IngestOptions): Promise<IngestResult> {
  const { signal } = opts;
  if (signal?.aborted) throw abortError(signal);
  const hash = createHash('sha256');
  const scanner = new Scanner(opts.maxBytes);
  let bytes = 0;
  // A Readable is destroyed on abort, so even a stalled upload stops at once; other iterables are checked per chunk.
  // Stopping early for any other reason (bad line, too large) leaves a Readable undestroyed: the caller owns it, and
  // an HTTP request body must stay open so the 400/413 answer can still be sent on its socket.
  let source: AsyncIterable<Buffer | Uint8Array | string>;
  if (input instanceof Readable) {
    if (signal) addAbortSignal(signal, input);
    source = input.iterator({ destroyOnReturn: false });
  } else source = input as AsyncIterable<Buffer | Uint8Array | string>;
  for await (const chunk of source) {
    if (signal?.aborted) throw abortError(signal);
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    bytes += buf.length;
    if (bytes > opts.maxBytes) {
      throw new HttpProblem(413, 'DATASET_TOO_LARGE', 'Content Too Large', `Dataset exceeds the limit of ${opts.maxBytes} bytes`, {
        extensions: { maxBytes: opts.maxBytes },
      });
    }
    hash.update(buf);
    scanner.push(buf);
    opts.onProgress?.(bytes);
  }
  if (signal?.aborted) throw abortError(signal);
  scanner.end();

  const sorted = sortAndDedupe(scanner.columns(), scanner.outOfOrder);
  const [ts, open, high, low, close, volume] = sorted.cols;
  const rows = ts.length;
  const timeframeMs = medianStep(ts);
  const timeframe = timeframeLabel(timeframeMs);
  const gaps = gapReport(ts, timeframeMs, timeframe === '1M');

  const quality: QualityReport = {
    rows,
    sourceRows: scanner.n,
    duplicates: sorted.duplicates,
    conflictingDuplicates: sorted.conflicting,
    outOfOrder: scanner.outOfOrder,
    gaps,
    highLowViolations: 0,
    priceOutsideRange: scanner.priceOutsideRange,
    zeroVolume: scanner.zeroVolume,
    nonPositivePrice: scanner.nonPositivePrice,
    hasVolume: scanner.hasVolume,
    firstLines: scanner.firstLines,
  };
  const warnings: string[] = [];
  if (!scanner.hasVolume) warnings.push('no volume column: volume set to 0');
  if (quality.duplicates) {
    warnings.push(
      `${quality.duplicates} duplicate timestamp${quality.duplicates > 1 ? 's' : ''} dropped (first kept)` +
        (quality.conflictingDuplicates ? `, ${quality.conflictingDuplicates} with different values` : ''),
    );
  }
  if (quality.outOfOrder) {
    warnings.push(`${quality.outOfOrder} row${quality.outOfOrder > 1 ? 's' : ''} out of order (first at line ${quality.firstLines.outOfOrder}); sorted by time`);
  }
  if (gaps.count) {
    warnings.push(
      `${gaps.count} gap${gaps.count > 1 ? 's' : ''} with ${gaps.missingBars} missing bar${gaps.missingBars === 1 ? '' : 's'} ` +
        `(largest step ${formatMs(gaps.largestMs)}${gaps.weekendOnly ? `; ${gaps.weekendOnly} only over weekends` : ''})`,
    );
  }
  if (quality.priceOutsideRange) {
    warnings.push(`${quality.priceOutsideRange} bar(s) with open/close outside [low, high] (first at line ${quality.firstLines.priceOutsideRange})`);
  }
  if (quality.zeroVolume) warnings.push(`${quality.zeroVolume} bar(s) with zero volume`);
  if (quality.nonPositivePrice) {
    warnings.push(`${quality.nonPositivePrice} bar(s) with a zero price (first at line ${quality.firstLines.nonPositivePrice})`);
  }

  const sha256 = hash.digest('hex');
  await mkdir(opts.dir, { recursive: true });
  const file = resolve(join(opts.dir, `${sha256}.bin`));
  const reused = await isCompleteColumnarFile(file, rows);
  if (!reused) {
    if (signal?.aborted) throw abortError(signal);
    const cols: OhlcvColumns = { ts, open, high, low, close, volume };
    await writeColumns(file, cols);
  }
  return {
    sha256,
    rows,
    bytes,
    fromMs: ts[0],
    toMs: ts[rows - 1],
    timeframeMs,
    timeframe,
    quality,
    warnings,
    file,
    reused,
    columns: { ts: shared(ts), open: shared(open), high: shared(high), low: shared(low), close: shared(close), volume: shared(volume) },
  };
}

/** The column's own SharedArrayBuffer when it fills one exactly (the usual case), else a copy in a new one. */
function shared(col: Float64Array): SharedArrayBuffer {
  if (col.buffer instanceof SharedArrayBuffer && col.byteOffset === 0 && col.byteLength === col.buffer.byteLength) return col.buffer;
  const sab = new SharedArrayBuffer(col.byteLength);
  new Float64Array(sab).set(col);
  return sab;
}
