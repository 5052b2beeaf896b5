/**
 * Columnar binary store for OHLCV bars.
 *
 * Layout (little-endian throughout; every column starts on an 8-byte boundary):
 *
 * | offset | size | field                                                       |
 * |-------:|-----:|-------------------------------------------------------------|
 * |      0 |    7 | magic `OHLCV1\0`                                            |
 * |      7 |    1 | format version (u8, currently 1)                            |
 * |      8 |    8 | row count (u64)                                             |
 * |     16 |    4 | column count (u32, 6)                                       |
 * |     20 |    4 | header size in bytes (u32, 64) = offset of the first column |
 * |     24 |    8 | first ts, epoch ms (f64; NaN when there are no rows)        |
 * |     32 |    8 | last ts, epoch ms (f64; NaN when there are no rows)         |
 * |     40 |   24 | reserved, zero                                              |
 * |     64 | 8·n  | ts (f64 epoch ms, ascending)                                |
 * |        | 8·n  | open, then high, low, close, volume (f64 each)              |
 *
 * Column `c` (0 = ts … 5 = volume) starts at `64 + c * 8 * rows`. Readers copy each column straight from the file
 * into its own SharedArrayBuffer, so worker threads can share the data without another copy.
 */
import { randomUUID } from 'node:crypto';
import { open, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { dirname } from 'node:path';

export const COLUMNAR_MAGIC = 'OHLCV1\0';
export const COLUMNAR_VERSION = 1;
export const HEADER_BYTES = 64;
export const COLUMN_NAMES = ['ts', 'open', 'high', 'low', 'close', 'volume'] as const;
export type ColumnName = (typeof COLUMN_NAMES)[number];

/** Columns in memory: six equally long Float64Arrays, `ts` ascending epoch ms. */
export type OhlcvColumns = Record<ColumnName, Float64Array>;
/** Columns as read for worker threads: each one its own SharedArrayBuffer of Float64 values. */
export type SharedOhlcvColumns = Record<ColumnName, SharedArrayBuffer>;

export interface ColumnarHeader {
  version: number;
  rows: number;
  /** First/last ts (epoch ms), null when the file holds no rows. */
  fromMs: number | null;
  toMs: number | null;
}

export interface TimeRange {
  /** Inclusive lower bound, epoch ms. */
  fromMs?: number;
  /** Inclusive upper bound, epoch ms. */
  toMs?: number;
}

export interface ReadColumnsResult {
  rows: number;
  /** Timestamps of the first/last row returned (null when the range is empty). */
  fromMs: number | null;
  toMs: number | null;
  columns: SharedOhlcvColumns;
}

/** Thrown when a file is not a valid columnar file (wrong magic, version, size). Not an HttpProblem: callers decide. */
export class ColumnarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ColumnarFormatError';
  }
}

function assertLittleEndian(): void {
  // Float64Array views use the platform byte order; the format is little-endian. Every platform Node ships on
  // for us (x64, arm64) is LE; fail loudly instead of returning garbage elsewhere.
  if (endianness() !== 'LE') throw new ColumnarFormatError('columnar files need a little-endian platform');
}

/** Byte size of a columnar file with `rows` rows. */
export const columnarFileSize = (rows: number): number => HEADER_BYTES + rows * 8 * COLUMN_NAMES.length;

function encodeHeader(rows: number, fromMs: number, toMs: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write(COLUMNAR_MAGIC, 0, 'latin1');
  h.writeUInt8(COLUMNAR_VERSION, 7);
  h.writeBigUInt64LE(BigInt(rows), 8);
  h.writeUInt32LE(COLUMN_NAMES.length, 16);
  h.writeUInt32LE(HEADER_BYTES, 20);
  h.writeDoubleLE(fromMs, 24);
  h.writeDoubleLE(toMs, 32);
  return h;
}

function decodeHeader(h: Buffer, fileSize: number): ColumnarHeader {
  if (h.length < HEADER_BYTES || h.toString('latin1', 0, 7) !== COLUMNAR_MAGIC) {
    throw new ColumnarFormatError('not an OHLCV columnar file (bad magic)');
  }
  const version = h.readUInt8(7);
  if (version !== COLUMNAR_VERSION) throw new ColumnarFormatError(`unsupported columnar version ${version}`);
  const rowsBig = h.readBigUInt64LE(8);
  if (rowsBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new ColumnarFormatError('row count out of range');
  const rows = Number(rowsBig);
  if (h.readUInt32LE(16) !== COLUMN_NAMES.length || h.readUInt32LE(20) !== HEADER_BYTES) {
    throw new ColumnarFormatError('unexpected column count or header size');
  }
  if (fileSize !== columnarFileSize(rows)) {
    throw new ColumnarFormatError(`file size ${fileSize} does not match ${rows} rows (truncated or corrupt)`);
  }
  const fromMs = h.readDoubleLE(24);
  const toMs = h.readDoubleLE(32);
  return { version, rows, fromMs: rows === 0 ? null : fromMs, toMs: rows === 0 ? null : toMs };
}

async function readFully(fh: FileHandle, target: Uint8Array, position: number): Promise<void> {
  const MAX = 1 << 30; // a single read(2) returns at most ~2 GiB; stay well below
  let done = 0;
  while (done < target.byteLength) {
    const len = Math.min(MAX, target.byteLength - done);
    const { bytesRead } = await fh.read(target, done, len, position + done);
    if (bytesRead === 0) throw new ColumnarFormatError('unexpected end of columnar file');
    done += bytesRead;
  }
}

async function writeFully(fh: FileHandle, source: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < source.byteLength) {
    const len = Math.min(1 << 30, source.byteLength - done);
    const { bytesWritten } = await fh.write(source, done, len, position + done);
    done += bytesWritten;
  }
}

/** Reads and validates the header (and the file size) without reading any column. */
export async function readColumnarHeader(file: string): Promise<ColumnarHeader> {
  const fh = await open(file, 'r');
  try {
    return await readHeaderFrom(fh);
  } finally {
    await fh.close();
  }
}

async function readHeaderFrom(fh: FileHandle): Promise<ColumnarHeader> {
  const { size } = await fh.stat();
  const h = Buffer.alloc(HEADER_BYTES);
  if (size < HEADER_BYTES) throw new ColumnarFormatError('not an OHLCV columnar file (too short)');
  await readFully(fh, h, 0);
  return decodeHeader(h, size);
}

/**
 * Writes `columns` to `file` atomically: a temp file in the same directory, fsync, rename over `file`, fsync of the
 * directory. On any error the temp file is removed and `file` is left as it was. `ts` must be ascending (the
 * range reader relies on it); this is checked.
 */
export async function writeColumns(file: string, columns: OhlcvColumns): Promise<void> {
  assertLittleEndian();
  const rows = columns.ts.length;
  for (const name of COLUMN_NAMES) {
    const col = columns[name];
    if (!(col instanceof Float64Array)) throw new TypeError(`column ${name} must be a Float64Array`);
    if (col.length !== rows) throw new RangeError(`column ${name} has ${col.length} values, ts has ${rows}`);
  }
  const ts = columns.ts;
  for (let i = 1; i < rows; i++) {
    if (!(ts[i] >= ts[i - 1])) throw new RangeError(`ts must be ascending (index ${i})`);
  }
  const header = encodeHeader(rows, rows ? ts[0] : Number.NaN, rows ? ts[rows - 1] : Number.NaN);
  const tmp = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx', 0o644);
    await writeFully(fh, header, 0);
    let pos = HEADER_BYTES;
    for (const name of COLUMN_NAMES) {
      const col = columns[name];
      await writeFully(fh, new Uint8Array(col.buffer, col.byteOffset, col.byteLength), pos);
      pos += col.byteLength;
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, file);
  } catch (err) {
    if (fh) await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await syncDir(dirname(file));
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename itself durable. Not every platform/filesystem allows fsync on a directory; that is not fatal.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* best effort */
  }
}

/** First index i in [0, rows) with ts[i] >= value (rows if none), using 8-byte positional reads. */
async function lowerBound(fh: FileHandle, rows: number, value: number, strict: boolean): Promise<number> {
  const cell = Buffer.alloc(8);
  let lo = 0;
  let hi = rows;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    await readFully(fh, cell, HEADER_BYTES + mid * 8);
    const t = cell.readDoubleLE(0);
    if (strict ? t <= value : t < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Reads a columnar file into one SharedArrayBuffer per column (Float64 values). With `range`, only rows whose ts is
 * within [fromMs, toMs] (both inclusive) are read; the bounds are found by binary search over the ts column on disk,
 * so a narrow range of a large file reads only the bytes it returns.
 */
export async function readColumns(file: string, range: TimeRange = {}): Promise<ReadColumnsResult> {
  assertLittleEndian();
  const fh = await open(file, 'r');
  try {
    const header = await readHeaderFrom(fh);
    const n = header.rows;
    let start = 0;
    let end = n;
    if (range.fromMs !== undefined && n > 0) start = await lowerBound(fh, n, range.fromMs, false);
    if (range.toMs !== undefined && n > 0) end = await lowerBound(fh, n, range.toMs, true);
    if (end < start) end = start;
    const rows = end - start;
    const columns = {} as SharedOhlcvColumns;
    for (let c = 0; c < COLUMN_NAMES.length; c++) {
      const sab = new SharedArrayBuffer(rows * 8);
      if (rows > 0) await readFully(fh, new Uint8Array(sab), HEADER_BYTES + (c * n + start) * 8);
      columns[COLUMN_NAMES[c]] = sab;
    }
    const ts = new Float64Array(columns.ts);
    return { rows, fromMs: rows ? ts[0] : null, toMs: rows ? ts[rows - 1] : null, columns };
  } finally {
    await fh.close();
  }
}

/** True when `file` exists and has the exact size its header promises (used to reuse an already stored dataset). */
export async function isCompleteColumnarFile(file: string, expectedRows?: number): Promise<boolean> {
  try {
    const st = await stat(file);
    if (!st.isFile()) return false;
    const h = await readColumnarHeader(file);
    return expectedRows === undefined || h.rows === expectedRows;
  } catch {
    return false;
  }
}
