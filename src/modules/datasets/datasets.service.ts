/**
 * Datasets: CSV imports (uploads and read-only files in DATASETS_DIR) into shared columnar files, and the `open()`
 * other modules (backtests) use to read them.
 *
 * How a dataset is referenced: an imported one by its uuid; a file in DATASETS_DIR as `file:<name>` (e.g.
 * `file:GOOG.csv`; a bare `GOOG.csv` is accepted too). Names follow safe-path.ts (no separators, no `..`, no NUL, no
 * `%`, `.csv` only, symlinks must stay inside the directory). A file is ingested on first use per user and cached by
 * its name, size and mtime (the columnar file is shared by sha256, so a second user or an identical upload reuses it).
 */
import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/client.js';
import { HttpProblem, conflict, notFound } from '../../errors.js';
import type { EventBus } from '../../plugins/event-bus.js';
import { audit, type AuditEntry } from '../audit/index.js';
import { ColumnCache } from './column-cache.js';
import { ColumnarFormatError, isCompleteColumnarFile, readColumns, type SharedOhlcvColumns, type TimeRange } from './columnar.js';
import { ingestCsv, type IngestInput, type IngestResult } from './ingest.js';
import { assertSafeDatasetName, listDatasetFiles, resolveDatasetFile, type DatasetFileInfo } from './safe-path.js';
import { createDatasetsRepository, type DatasetRow } from './datasets.repository.js';
import type { CandlesResponse, Dataset, DatasetList } from './datasets.schemas.js';

export type AuditCtx = Pick<AuditEntry, 'actorId' | 'ip' | 'requestId'>;

/** What `open()` hands to a backtest: the bars of one dataset (optionally a time slice) as shared Float64 columns. */
export interface OpenedDataset {
  /** The reference to store with a result: the uuid, or `file:<name>` for a file dataset. */
  id: string;
  name: string;
  /** Hash of the CSV bytes the bars came from (pins the exact content). */
  sha256: string;
  /** Rows in `columns` (after range slicing). */
  rows: number;
  timeframeMs: number | null;
  timeframe: string | null;
  /** First/last bar time (epoch ms) in `columns`; null when the slice is empty. */
  fromMs: number | null;
  toMs: number | null;
  /** One SharedArrayBuffer of Float64 values per column (ts = epoch ms ascending). Wrap with `new Float64Array(sab, 0, rows)` (a fixed-length view: some are growable buffers, and length-tracking views of those read slower). */
  columns: SharedOhlcvColumns;
}

export interface UploadInput {
  name: string;
  /** `download` for data another module fetched (e.g. exchange OHLCV); default `upload`. */
  source?: 'upload' | 'download';
  stream: IngestInput;
  /** Content-Length when the client sent one: refused up front (413) when over the limit. */
  declaredBytes?: number;
  /** Aborts the import (client gone); the row is removed. */
  signal?: AbortSignal;
}

export interface DatasetsServiceDeps {
  db: Db;
  maxBytes: number;
  /** Byte budget of the in-memory column cache (0 = none). */
  cacheBytes?: number;
  filesDir: string;
  columnarDir: string;
  eventBus?: Pick<EventBus, 'publish'>;
  log: FastifyBaseLogger;
}

/** A dataset reference as the API and open() accept it. */
export type DatasetRef = { kind: 'row'; id: string } | { kind: 'file'; name: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const FILE_REF_PREFIX = 'file:';
/** Importing rows whose heartbeat is older than this belong to a process that is gone. */
export const STALE_IMPORT_MS = 60_000;
export const HEARTBEAT_MS = 15_000;
/** A progress event per this many bytes read. */
export const PROGRESS_STEP_BYTES = 1 << 20;
const INTERRUPTED = 'import interrupted (the server stopped before it finished); upload the file again';

/** `<uuid>` → row; `file:<name>` or a bare name → file (the name is checked here: 400 INVALID_DATASET_NAME). */
export function parseDatasetRef(ref: string): DatasetRef {
  if (UUID.test(ref)) return { kind: 'row', id: ref.toLowerCase() };
  const name = ref.startsWith(FILE_REF_PREFIX) ? ref.slice(FILE_REF_PREFIX.length) : ref;
  assertSafeDatasetName(name);
  return { kind: 'file', name };
}

/** Shortest decimal that reads back as `v`, without exponent (JSON amounts are decimal strings). */
export function decimalString(v: number): string {
  const s = String(v);
  if (!/e/i.test(s)) return s === '-0' ? '0' : s;
  const [mant, expText] = s.toLowerCase().split('e');
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const [intPart, fracPart = ''] = (neg ? mant.slice(1) : mant).split('.');
  const digits = intPart + fracPart;
  const point = intPart.length + exp;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  out = out.replace(/^0+(?=\d)/, '');
  if (out.includes('.')) out = out.replace(/0+$/, '').replace(/\.$/, '');
  return neg && out !== '0' ? `-${out}` : out;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const isoMs = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

export function createDatasetsService(deps: DatasetsServiceDeps) {
  const { db, log, columnarDir, filesDir, maxBytes } = deps;
  const repo = createDatasetsRepository(db);
  /** Rows this process is importing (kept alive by the heartbeat). */
  const inflight = new Set<string>();
  /** One ingest per user and file version at a time (a second caller waits for the first). */
  const fileIngests = new Map<string, Promise<DatasetRow>>();
  let timer: NodeJS.Timeout | undefined;

  const storagePath = (row: Pick<DatasetRow, 'storageFile'>) => join(columnarDir, row.storageFile ?? '');
  /** Columns of recently used stored files, keyed by file name (`<sha256>.bin`). */
  const cache = new ColumnCache(deps.cacheBytes ?? 0);

  const publish = (userId: string, event: Record<string, unknown>) => {
    deps.eventBus?.publish(`user:${userId}`, { type: 'dataset.progress', ...event }).catch((err: unknown) => {
      log.warn({ err }, 'could not publish dataset progress');
    });
  };

  function toDto(row: DatasetRow, file: DatasetFileInfo | null = null): Dataset {
    return {
      id: row.source === 'file' && row.fileName ? `${FILE_REF_PREFIX}${row.fileName}` : row.id,
      name: row.name,
      source: row.source,
      status: row.status,
      error: row.error,
      sha256: row.sha256,
      rows: row.rows,
      bytes: row.bytes,
      from: iso(row.fromAt),
      to: iso(row.toAt),
      timeframe: row.timeframe,
      timeframeMs: row.timeframeMs,
      quality: (row.quality as Dataset['quality']) ?? null,
      warnings: row.warnings ?? [],
      createdAt: iso(row.createdAt),
      file,
    };
  }

  function availableFileDto(file: DatasetFileInfo): Dataset {
    return {
      id: `${FILE_REF_PREFIX}${file.name}`,
      name: file.name,
      source: 'file',
      status: 'available',
      error: null,
      sha256: null,
      rows: null,
      bytes: file.bytes,
      from: null,
      to: null,
      timeframe: null,
      timeframeMs: null,
      quality: null,
      warnings: [],
      createdAt: null,
      file,
    };
  }

  /** Removes `<sha256>.bin` when no row references that content any more. Call inside a transaction holding lockSha. */
  async function unlinkIfUnreferenced(sha256: string, tx: Parameters<Parameters<Db['transaction']>[0]>[0]): Promise<boolean> {
    if ((await repo.countBySha(sha256, undefined, tx)) > 0) return false;
    cache.delete(`${sha256}.bin`);
    await unlink(join(columnarDir, `${sha256}.bin`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    return true;
  }

  /** Deletes one row and, when it was the last reference, its columnar file. */
  async function deleteRow(row: DatasetRow, who?: AuditCtx): Promise<void> {
    await db.transaction(async (tx) => {
      if (row.sha256) await repo.lockSha(row.sha256, tx);
      const gone = await repo.deleteOwned(row.userId, row.id, tx);
      if (!gone) throw notFound('Dataset', row.id, 'DATASET_NOT_FOUND');
      let fileRemoved = false;
      if (gone.sha256) fileRemoved = await unlinkIfUnreferenced(gone.sha256, tx);
      if (who) {
        await audit(tx, {
          ...who,
          action: 'dataset.deleted',
          targetType: 'dataset',
          targetId: gone.id,
          details: { name: gone.name, sha256: gone.sha256, fileRemoved },
        });
      }
    });
  }

  /**
   * Streams `input` into the columnar store for the `importing` row `row` and marks it ready. Refused data (4xx) or an
   * aborted request removes the row; an unexpected failure marks it failed. Never leaves a file nobody references.
   */
  async function runImport(
    row: DatasetRow,
    input: IngestInput,
    opts: { signal?: AbortSignal; totalBytes?: number; who?: AuditCtx },
  ): Promise<DatasetRow> {
    inflight.add(row.id);
    // The caller's signal reaches the ingest only while it runs: an abort after it ended must not destroy a stream
    // that is no longer read (ingestCsv attaches the signal to a Readable input).
    const local = new AbortController();
    const onAbort = () => local.abort(opts.signal?.reason);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    let nextProgress = PROGRESS_STEP_BYTES;
    let result: IngestResult | undefined;
    const totalBytes = opts.totalBytes ?? null;
    publish(row.userId, { datasetId: row.id, name: row.name, phase: 'importing', bytes: 0, totalBytes });
    try {
      result = await ingestCsv(input, {
        dir: columnarDir,
        maxBytes,
        signal: local.signal,
        onProgress: (bytes) => {
          if (bytes < nextProgress) return;
          nextProgress = (Math.floor(bytes / PROGRESS_STEP_BYTES) + 1) * PROGRESS_STEP_BYTES;
          publish(row.userId, { datasetId: row.id, name: row.name, phase: 'importing', bytes, totalBytes });
        },
      }).finally(() => opts.signal?.removeEventListener('abort', onAbort));
      const r = result;
      const ready = await db.transaction(async (tx) => {
        await repo.lockSha(r.sha256, tx);
        // A concurrent delete of the last row with this content may have removed a file we found and reused.
        if (!(await isCompleteColumnarFile(r.file, r.rows))) throw new Error('stored columnar file vanished before the import finished');
        const updated = await repo.markReady(
          row.id,
          {
            sha256: r.sha256,
            rows: r.rows,
            bytes: r.bytes,
            fromAt: new Date(r.fromMs),
            toAt: new Date(r.toMs),
            timeframeMs: r.timeframeMs,
            timeframe: r.timeframe,
            quality: r.quality as unknown as Record<string, unknown>,
            warnings: r.warnings,
            storageFile: `${r.sha256}.bin`,
          },
          tx,
        );
        if (updated && opts.who) {
          await audit(tx, {
            ...opts.who,
            action: 'dataset.imported',
            targetType: 'dataset',
            targetId: row.id,
            details: { name: row.name, source: row.source, sha256: r.sha256, rows: r.rows, bytes: r.bytes, reused: r.reused },
          });
        }
        return updated;
      });
      if (!ready) throw conflict('The dataset was deleted while it was being imported', 'DATASET_IMPORT_CANCELLED');
      cache.set(`${r.sha256}.bin`, { rows: r.rows, columns: r.columns });
      publish(row.userId, { datasetId: row.id, name: row.name, phase: 'ready', bytes: r.bytes, totalBytes, rows: r.rows });
      return ready;
    } catch (err) {
      const status = statusOf(err);
      const refused = local.signal.aborted || (status !== undefined && status < 500);
      try {
        if (refused) await repo.deleteById(row.id);
        else {
          log.error({ err, datasetId: row.id }, 'dataset import failed');
          await repo.markFailed(row.id, 'import failed unexpectedly');
        }
        if (result) {
          const sha = result.sha256;
          await db.transaction(async (tx) => {
            await repo.lockSha(sha, tx);
            await unlinkIfUnreferenced(sha, tx);
          });
        }
      } catch (cleanupErr) {
        log.error({ err: cleanupErr, datasetId: row.id }, 'could not clean up after a failed dataset import');
      }
      publish(row.userId, {
        datasetId: row.id,
        name: row.name,
        phase: 'failed',
        error: err instanceof HttpProblem ? err.message : 'import failed',
        line: err instanceof HttpProblem ? (err.extensions?.line ?? null) : null,
      });
      throw err;
    } finally {
      inflight.delete(row.id);
    }
  }

  async function statFile(name: string): Promise<{ path: string; info: DatasetFileInfo; mtime: Date }> {
    const path = await resolveDatasetFile(filesDir, name);
    const st = await stat(path);
    const mtime = new Date(st.mtime.getTime()); // the same ms value listDatasetFiles reports
    return { path, mtime, info: { name, bytes: st.size, modifiedAt: mtime.toISOString() } };
  }

  const matchesVersion = (row: DatasetRow, size: number, mtime: Date) =>
    row.fileSize === size && row.fileMtime?.getTime() === mtime.getTime();

  /** The user's ready cache row for the file's current version, ingesting (or copying another user's) on first use. */
  async function ensureFile(userId: string, name: string, who?: AuditCtx): Promise<{ row: DatasetRow; info: DatasetFileInfo }> {
    const { path, info, mtime } = await statFile(name);
    const mine = await repo.listFileRows(userId, name);
    const current = mine.find((r) => r.status === 'ready' && matchesVersion(r, info.bytes, mtime));
    if (current && (await isCompleteColumnarFile(storagePath(current), current.rows ?? undefined))) return { row: current, info };

    const key = JSON.stringify([userId, name, info.bytes, mtime.getTime()]);
    let pending = fileIngests.get(key);
    if (!pending) {
      pending = (async () => {
        let row: DatasetRow | null = null;
        const shared = await repo.findReadyFileVersion(name, info.bytes, mtime);
        if (shared?.sha256) {
          const sha = shared.sha256;
          row = await db.transaction(async (tx) => {
            await repo.lockSha(sha, tx);
            if (!(await isCompleteColumnarFile(storagePath(shared), shared.rows ?? undefined))) return null;
            const { id: _id, userId: _u, createdAt: _c, heartbeatAt: _h, ...fields } = shared;
            return repo.insert({ ...fields, userId }, tx);
          });
        }
        if (!row) {
          const importing = await repo.insert({
            userId,
            name,
            source: 'file',
            status: 'importing',
            fileName: name,
            fileSize: info.bytes,
            fileMtime: mtime,
          });
          const stream = createReadStream(path);
          try {
            row = await runImport(importing, stream, { totalBytes: info.bytes, who });
          } finally {
            stream.destroy(); // ingestCsv leaves a Readable it stopped reading early to its owner
          }
        }
        // Older versions of this file (and failed attempts) in this user's cache are dropped.
        for (const old of mine) {
          if (old.id === row.id || old.status === 'importing') continue;
          await deleteRow(old).catch((err: unknown) => log.warn({ err, datasetId: old.id }, 'could not drop a stale file dataset cache row'));
        }
        return row;
      })().finally(() => fileIngests.delete(key));
      fileIngests.set(key, pending);
    }
    return { row: await pending, info };
  }

  /** The ready row behind a reference, owner-scoped: 404 for others' and unknown ids, 409 while not ready. */
  async function readyRow(userId: string, ref: string): Promise<{ row: DatasetRow; refId: string }> {
    const parsed = parseDatasetRef(ref);
    if (parsed.kind === 'file') {
      const { row } = await ensureFile(userId, parsed.name);
      return { row, refId: `${FILE_REF_PREFIX}${parsed.name}` };
    }
    const row = await repo.findOwned(userId, parsed.id);
    if (!row) throw notFound('Dataset', parsed.id, 'DATASET_NOT_FOUND');
    if (row.status !== 'ready') {
      throw conflict(
        row.status === 'importing' ? `Dataset ${row.id} is still importing` : `Dataset ${row.id} failed to import: ${row.error ?? 'unknown error'}`,
        'DATASET_NOT_READY',
      );
    }
    return { row, refId: row.id };
  }

  async function openRow(row: DatasetRow, refId: string, range: TimeRange): Promise<OpenedDataset> {
    let read;
    try {
      const key = row.storageFile ?? '';
      read = cache.read(key, range);
      if (!read && row.rows !== null && cache.fits(row.rows)) {
        const all = await readColumns(storagePath(row));
        cache.set(key, all);
        read = cache.read(key, range);
      }
      read ??= await readColumns(storagePath(row), range);
    } catch (err) {
      if (err instanceof ColumnarFormatError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
        log.error({ err, datasetId: row.id }, 'stored dataset file is missing or corrupt');
        throw conflict(`The stored data of dataset ${refId} is missing or damaged; import it again`, 'DATASET_DATA_MISSING');
      }
      throw err;
    }
    return {
      id: refId,
      name: row.name,
      sha256: row.sha256 ?? '',
      rows: read.rows,
      timeframeMs: row.timeframeMs,
      timeframe: row.timeframe,
      fromMs: read.fromMs,
      toMs: read.toMs,
      columns: read.columns,
    };
  }

  async function recoverInterrupted(staleMs: number): Promise<number> {
    const ids = await repo.failStale(staleMs, INTERRUPTED);
    if (ids.length) log.warn({ count: ids.length, ids }, 'marked interrupted dataset imports as failed');
    return ids.length;
  }

  return {
    /**
     * Imports a CSV stream (an upload, or a download another module made): an `importing` row first, then the ingest;
     * 400/413 or an abort leave nothing behind.
     */
    async importUpload(userId: string, input: UploadInput, who?: AuditCtx): Promise<Dataset> {
      if (input.declaredBytes !== undefined && input.declaredBytes > maxBytes) {
        throw new HttpProblem(413, 'DATASET_TOO_LARGE', 'Content Too Large', `Dataset exceeds the limit of ${maxBytes} bytes`, {
          extensions: { maxBytes },
        });
      }
      const row = await repo.insert({ userId, name: input.name, source: input.source ?? 'upload', status: 'importing' });
      const ready = await runImport(row, input.stream, { signal: input.signal, totalBytes: input.declaredBytes, who });
      return toDto(ready);
    },

    /** The user's imported datasets (newest first), then the files of DATASETS_DIR (by name), paginated as one list. */
    async list(userId: string, page: { limit: number; offset: number }): Promise<DatasetList> {
      const files = await listDatasetFiles(filesDir);
      const { total: ownTotal } = await repo.listOwned(userId, 0, 0);
      const ownTake = Math.max(0, Math.min(page.limit, ownTotal - page.offset));
      const own = ownTake > 0 ? (await repo.listOwned(userId, ownTake, page.offset)).items : [];
      const fileStart = Math.max(0, page.offset - ownTotal);
      const fileSlice = files.slice(fileStart, fileStart + (page.limit - own.length));
      const cache = fileSlice.length ? await repo.listFileRows(userId) : [];
      const fileItems = fileSlice.map((f) => {
        const mtime = new Date(f.modifiedAt);
        const row = cache.find((r) => r.fileName === f.name && matchesVersion(r, f.bytes, mtime));
        return row ? toDto(row, f) : availableFileDto(f);
      });
      return { items: [...own.map((r) => toDto(r)), ...fileItems], total: ownTotal + files.length, limit: page.limit, offset: page.offset };
    },

    /** One dataset. A file reference is ingested on first use (so its quality report is shown). */
    async get(userId: string, ref: string, who?: AuditCtx): Promise<Dataset> {
      const parsed = parseDatasetRef(ref);
      if (parsed.kind === 'file') {
        const { row, info } = await ensureFile(userId, parsed.name, who);
        return toDto(row, info);
      }
      const row = await repo.findOwned(userId, parsed.id);
      if (!row) throw notFound('Dataset', parsed.id, 'DATASET_NOT_FOUND');
      return toDto(row);
    },

    /** Deletes one of the user's datasets; the columnar file goes only with its last reference. Files are read-only. */
    async remove(userId: string, ref: string, who?: AuditCtx): Promise<void> {
      const parsed = parseDatasetRef(ref);
      if (parsed.kind === 'file') {
        await statFile(parsed.name); // 400/404 first
        throw conflict('Datasets in DATASETS_DIR are read-only', 'DATASET_READ_ONLY');
      }
      const row = await repo.findOwned(userId, parsed.id);
      if (!row) throw notFound('Dataset', parsed.id, 'DATASET_NOT_FOUND');
      await deleteRow(row, who);
    },

    /**
     * The bars of a ready dataset for a backtest, as SharedArrayBuffer columns, optionally sliced to
     * [fromMs, toMs] (inclusive). 404 for unknown ids and other users' datasets, 409 DATASET_NOT_READY while importing or
     * failed, 400/404 for bad or missing file names. File references are ingested on first use.
     */
    async open(userId: string, ref: string, range: TimeRange = {}): Promise<OpenedDataset> {
      const { row, refId } = await readyRow(userId, ref);
      return openRow(row, refId, range);
    },

    /** Chart data: up to `limit` bars from `fromMs`, numbers as decimal strings. */
    async candles(userId: string, ref: string, q: { fromMs?: number; toMs?: number; limit: number }): Promise<CandlesResponse> {
      const { row, refId } = await readyRow(userId, ref);
      const opened = await openRow(row, refId, { fromMs: q.fromMs, toMs: q.toMs });
      const [ts, open, high, low, close, volume] = (['ts', 'open', 'high', 'low', 'close', 'volume'] as const).map(
        (c) => new Float64Array(opened.columns[c], 0, opened.rows),
      );
      const n = Math.min(q.limit, opened.rows);
      const items = [];
      for (let i = 0; i < n; i++) {
        items.push({
          time: new Date(ts[i]).toISOString(),
          open: decimalString(open[i]),
          high: decimalString(high[i]),
          low: decimalString(low[i]),
          close: decimalString(close[i]),
          volume: decimalString(volume[i]),
        });
      }
      return { id: refId, timeframe: row.timeframe, items, next: opened.rows > n ? isoMs(ts[n]) : null };
    },

    /**
     * Marks `importing` rows whose process is gone as failed: at start (`staleMs` 0 on the embedded database, which one
     * process owns) and periodically. Returns how many.
     */
    recoverInterrupted(staleMs = STALE_IMPORT_MS): Promise<number> {
      return recoverInterrupted(staleMs);
    },

    /** Heartbeat of this process's imports plus the stale sweep, every HEARTBEAT_MS (unref'd); stop() ends it. */
    start(): void {
      if (timer) return;
      timer = setInterval(() => {
        void (async () => {
          await repo.heartbeat([...inflight]);
          await recoverInterrupted(STALE_IMPORT_MS);
        })().catch((err: unknown) => log.warn({ err }, 'dataset heartbeat failed'));
      }, HEARTBEAT_MS);
      timer.unref();
    },
    stop(): void {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
export type DatasetsService = ReturnType<typeof createDatasetsService>;
