/**
 * Backtests: validated start (job row first, then the queue), the runner that executes one job on the worker pool
 * (dataset columns as SharedArrayBuffers, progress over a MessagePort), results with paginated trades and a
 * downsampled equity curve, per-user history, cancel, and recovery of jobs a stopped process left behind.
 */
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import type { Piscina } from 'piscina';
import type { Db } from '../../db/client.js';
import { conflict, HttpProblem, notFound, serviceUnavailable, validationFailed } from '../../errors.js';
import type { EventBus } from '../../plugins/event-bus.js';
import { JobAborted, QueueFullError, type JobQueue, type QueuedJob } from '../../plugins/job-queue.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import { resolveParams } from '../../../workers/engine/dsl.js';
import { ENGINE_VERSION } from '../../../workers/engine/version.js';
import { downsample } from '../../../workers/backtest.worker.js';
import type { Metrics as EngineMetrics, Trade as EngineTrade } from '../../../workers/types.js';
import { audit, type AuditEntry } from '../audit/index.js';
import { decimalString, type DatasetsService } from '../datasets/datasets.service.js';
import { validateDocument, type StrategiesService } from '../strategies/strategies.service.js';
import { createBacktestsRepository, type BacktestHead } from './backtests.repository.js';
import { decodeEquity, decodeTrades, TRADES_PER_CHUNK } from './backtests.codec.js';
import type { JobResult, JobTask } from './backtest.job.js';
import type { BacktestResult, BacktestSummary, StartBacktestBody } from './backtests.schemas.js';

/** The pool task file wrapping the backtest worker (TypeScript from source, JavaScript in the build). */
const JOB_FILE = new URL(import.meta.url.endsWith('.ts') ? './backtest.job.ts' : './backtest.job.js', import.meta.url).href;

type Who = Pick<AuditEntry, 'actorId' | 'ip' | 'requestId'>;

/** Points of the equity curve kept with a result; `equityPoints` downsamples from these. */
export const STORED_EQUITY_POINTS = 5000;
/** Runs of one job (a process that dies mid-run counts one); after that it is failed, not retried. */
export const MAX_ATTEMPTS = 3;
/** A queued/running row whose heartbeat is older than this belongs to a process that is gone (PostgreSQL). */
export const STALE_JOB_MS = 60_000;
export const HEARTBEAT_MS = 15_000;
/** Progress rows are written at most this often; events go out every 10% of progress. */
export const PROGRESS_WRITE_MS = 500;
const PROGRESS_EVENT_STEP = 0.1;
/** Seconds a client is told to wait when the queue is full. */
export const RETRY_AFTER_S = 5;

export interface BacktestsServiceDeps {
  db: Db;
  pool: Pick<Piscina, 'run' | 'queueSize' | 'options'>;
  poolQueueMax: number;
  queue: JobQueue;
  queueMax: number;
  datasets: Pick<DatasetsService, 'get' | 'open'>;
  strategies: Pick<StrategiesService, 'get'>;
  eventBus: Pick<EventBus, 'publish'>;
  log: FastifyBaseLogger;
  maxAttempts?: number;
}

/** What start() accepts: the route's body (defaults applied) or the AI domain's narrower input (defaults here). */
export type StartInput = StartBacktestBody;

const isoOrNull = (d: Date | null | undefined) => (d ? d.toISOString() : null);

function metricsDto(m: Record<string, unknown>): NonNullable<BacktestResult['metrics']> {
  return { ...(m as Record<string, number | null>), finalEquity: decimalString(m.finalEquity as number), feesPaid: decimalString(m.feesPaid as number) } as NonNullable<
    BacktestResult['metrics']
  >;
}

/** The result's metrics as the API sends them (money as decimal strings). Exported for tests and the SDK docs. */
export const toMetricsDto = (m: EngineMetrics) => metricsDto(m as unknown as Record<string, unknown>);

export function toTradeDto(t: EngineTrade): BacktestResult['trades']['items'][number] {
  return {
    side: t.side,
    entryBar: t.entryBar,
    exitBar: t.exitBar,
    entryTime: new Date(t.entryTime).toISOString(),
    exitTime: new Date(t.exitTime).toISOString(),
    entryPrice: decimalString(t.entryPrice),
    exitPrice: decimalString(t.exitPrice),
    size: decimalString(t.size),
    pnl: decimalString(t.pnl),
    pnlPct: t.pnlPct,
    fees: decimalString(t.fees),
    exitReason: t.exitReason,
  };
}

function summary(row: BacktestHead): BacktestSummary {
  return {
    id: row.id,
    status: row.status,
    progress: row.progress,
    error: row.error,
    datasetId: row.datasetId,
    strategyId: row.strategyId,
    strategyVersion: row.strategyVersion,
    strategyName: row.strategyName,
    finalEquity: row.finalEquity === null ? null : decimalString(Number(row.finalEquity)),
    totalReturnPct: row.totalReturnPct,
    createdAt: row.createdAt.toISOString(),
    startedAt: isoOrNull(row.startedAt),
    finishedAt: isoOrNull(row.finishedAt),
  };
}

/** A clear one-line reason for a job that failed in the worker (or before it). */
export function failureMessage(err: unknown): string {
  if (err instanceof HttpProblem) return err.message;
  const e = err as { name?: string; message?: string } | null;
  const msg = (e?.message ?? String(err)).split('\n')[0].slice(0, 500);
  if (/worker exited|terminated/i.test(msg)) return `backtest worker crashed (${msg}); the job was not retried`;
  if (e?.name === 'RangeError' || e?.name === 'TypeError' || e?.name === 'StrategyError') return `backtest failed: ${msg}`;
  return `backtest worker failed: ${msg}`;
}

export function createBacktestsService(deps: BacktestsServiceDeps) {
  const { db, pool, queue, log } = deps;
  const repo = createBacktestsRepository(db);
  const maxAttempts = deps.maxAttempts ?? MAX_ATTEMPTS;
  /** The worker the job task wraps: the pool's own file (workers/backtest.worker, or a test's override). */
  const workerModule = () => {
    const f = pool.options.filename;
    if (!f) throw new Error('the worker pool has no filename');
    return f.startsWith('file:') ? f : pathToFileURL(f).href;
  };

  const publish = (userId: string, event: { type: string; [k: string]: unknown }) =>
    deps.eventBus.publish(`user:${userId}`, event).catch((err: Error) => log.warn({ err: err.message }, 'could not publish backtest event'));

  async function assertCapacity(): Promise<void> {
    const waiting = await queue.waiting();
    if (waiting >= deps.queueMax || pool.queueSize >= deps.poolQueueMax) {
      throw serviceUnavailable(`The backtest queue is full (${waiting}/${deps.queueMax} waiting); try again shortly`, RETRY_AFTER_S, 'BACKTEST_QUEUE_FULL');
    }
  }

  /** The strategy document to run (validated; issues point into the request body) and where it came from. */
  async function resolveStrategy(userId: string, input: StartInput) {
    if (input.strategyId !== undefined) {
      const saved = await deps.strategies.get(userId, input.strategyId, input.strategyVersion);
      return { doc: validateDocument(saved.document, '/body/strategy'), id: saved.id, version: saved.version };
    }
    return { doc: validateDocument(input.strategy, '/body/strategy'), id: null, version: null };
  }

  async function runJob(job: QueuedJob, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const t0 = performance.now();
    const row = await repo.markRunning(job.id);
    if (!row) return; // cancelled (or taken) meanwhile
    let port: MessagePort | undefined;
    try {
      if (row.attempts > maxAttempts) throw new Error(`gave up after ${maxAttempts} attempts`);
      const opened = await deps.datasets.open(row.userId, row.datasetId, {
        fromMs: row.rangeFrom?.getTime(),
        toMs: row.rangeTo?.getTime(),
      });
      if (opened.sha256 !== row.datasetSha256) {
        throw conflict(`Dataset ${row.datasetId} changed since the backtest was started (sha256 ${opened.sha256} != ${row.datasetSha256})`, 'DATASET_CHANGED');
      }
      const tOpened = performance.now();
      if (opened.rows < 2) throw conflict(`The selected range of dataset ${row.datasetId} holds ${opened.rows} bars; at least 2 are needed`, 'RANGE_TOO_SHORT');
      if (signal.aborted) throw signal.reason;

      const channel = new MessageChannel();
      port = channel.port1;
      let lastWrite = 0;
      let lastEvent = 0;
      let writing: Promise<void> | undefined;
      port.on('message', (m: { type?: string; progress?: number }) => {
        if (m?.type !== 'progress' || typeof m.progress !== 'number') return;
        const p = Math.max(0, Math.min(1, m.progress));
        const now = Date.now();
        if (!writing && now - lastWrite >= PROGRESS_WRITE_MS) {
          lastWrite = now;
          writing = repo
            .setProgress(row.id, p)
            .catch((err: Error) => log.warn({ err: err.message, backtestId: row.id }, 'could not write backtest progress'))
            .finally(() => (writing = undefined));
        }
        if (p - lastEvent >= PROGRESS_EVENT_STEP || (p === 1 && lastEvent < 1)) {
          lastEvent = p;
          void publish(row.userId, { type: 'backtest.progress', id: row.id, progress: p });
        }
      });
      const task: JobTask = {
        workerModule: workerModule(),
        columns: opened.columns,
        strategy: row.strategy,
        params: row.params,
        settings: { ...(row.settings as object), initialCash: Number(row.initialCash) },
        equityPoints: STORED_EQUITY_POINTS,
        progressPort: channel.port2,
      };
      const result = (await pool.run(task, { filename: JOB_FILE, signal, transferList: [channel.port2] as never })) as JobResult;
      const tRan = performance.now();
      await writing;
      // The trades and the succeeded row commit together: one commit (one WAL flush) instead of one per statement,
      // and a job cancelled meanwhile keeps no trades.
      const done = await db.transaction(async (tx) => {
        await repo.replaceTradeChunks(row.id, result.tradeChunks, tx);
        const finished = await repo.finish(
          row.id,
          {
            status: 'succeeded',
            progress: 1,
            error: null,
            engineVersion: result.engineVersion,
            resolvedParams: result.params,
            finalEquity: String(result.metrics.finalEquity),
            totalReturnPct: result.metrics.totalReturnPct,
            bars: result.bars,
            fromIndex: result.fromIndex,
            toIndex: result.toIndex,
            tradesCount: result.tradesCount,
            metrics: result.metrics as unknown as Record<string, unknown>,
            equityData: result.equityData,
            openPosition: result.openPosition as unknown as Record<string, unknown> | null,
            elapsedMs: result.elapsedMs,
          },
          tx,
        );
        if (!finished) await repo.deleteTradeChunks(row.id, tx); // cancelled meanwhile
        return finished;
      });
      const tStored = performance.now();
      log.info(
        {
          backtestId: row.id,
          bars: result.bars,
          trades: result.tradesCount,
          ms: { open: Math.round(tOpened - t0), run: Math.round(tRan - tOpened), worker: Math.round(result.elapsedMs), store: Math.round(tStored - tRan) },
        },
        'backtest finished',
      );
      if (done) {
        void publish(row.userId, {
          type: 'backtest.completed',
          id: row.id,
          status: 'succeeded',
          finalEquity: decimalString(result.metrics.finalEquity),
          totalReturnPct: result.metrics.totalReturnPct,
          trades: result.tradesCount,
        });
      }
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : undefined;
      if (reason instanceof JobAborted) {
        // Cancelled: the row already says so. Shutdown: back to queued, resumed by the next start-up.
        if (reason.reason === 'shutdown') await repo.requeue(row.id).catch((e: Error) => log.warn({ err: e.message }, 'could not requeue backtest'));
        return;
      }
      const error = failureMessage(err);
      log.warn({ err, backtestId: row.id }, 'backtest failed');
      if (await repo.finish(row.id, { status: 'failed', error })) void publish(row.userId, { type: 'backtest.failed', id: row.id, error });
    } finally {
      port?.close();
    }
  }

  return {
    /**
     * Validates everything (strategy, params, settings, dataset), stores the job row (status queued) with all it
     * needs to be rerun, then queues it. 400 with paths, 404 unknown dataset/strategy, 409 dataset not ready,
     * 503 + Retry-After when the queue is full.
     */
    async start(userId: string, input: StartInput, who: Who): Promise<{ id: string; status: 'queued' }> {
      await assertCapacity();
      const strategy = await resolveStrategy(userId, input);
      const params = input.params ?? {};
      const resolved = resolveParams(strategy.doc, params);
      if (!resolved.ok) {
        throw validationFailed(
          `Strategy params are invalid (${resolved.issues.length} issue${resolved.issues.length === 1 ? '' : 's'})`,
          resolved.issues.map((i) => ({ path: `/body${i.path}`, message: i.message })),
          'INVALID_PARAMS',
        );
      }
      const dataset = await deps.datasets.get(userId, input.datasetId);
      if (dataset.status !== 'ready' || !dataset.sha256) {
        throw conflict(`Dataset ${dataset.id} is not ready (${dataset.status}${dataset.error ? `: ${dataset.error}` : ''})`, 'DATASET_NOT_READY');
      }
      const settings = {
        feeBps: input.feeBps ?? 0,
        slippageBps: input.slippageBps ?? 0,
        fill: input.fill ?? 'next_open',
        lotStep: input.lotStep ?? 0,
        closeAtEnd: input.closeAtEnd ?? true,
      };
      const created = await db.transaction(async (tx) => {
        const row = await repo.insert(
          {
            userId,
            datasetId: dataset.id,
            datasetName: dataset.name,
            datasetSha256: dataset.sha256!,
            strategyId: strategy.id,
            strategyVersion: strategy.version,
            strategyName: strategy.doc.name,
            strategy: strategy.doc as unknown as Record<string, unknown>,
            params,
            resolvedParams: resolved.value,
            initialCash: input.initialCash ?? '10000',
            settings,
            rangeFrom: input.from ? new Date(input.from) : null,
            rangeTo: input.to ? new Date(input.to) : null,
            engineVersion: ENGINE_VERSION,
          },
          tx,
        );
        await audit(tx, {
          ...who,
          action: 'backtest.started',
          targetType: 'backtest',
          targetId: row.id,
          details: { datasetId: dataset.id, strategyId: strategy.id, strategyVersion: strategy.version },
        });
        return row;
      });
      try {
        await queue.enqueue({ id: created.id, userId });
      } catch (err) {
        await repo.deleteById(created.id).catch(() => {});
        if (err instanceof QueueFullError) {
          throw serviceUnavailable(`The backtest queue is full (${err.waiting}/${err.max} waiting); try again shortly`, RETRY_AFTER_S, 'BACKTEST_QUEUE_FULL');
        }
        throw err;
      }
      return { id: created.id, status: 'queued' };
    },

    async result(userId: string, id: string, q: { tradesLimit: number; tradesOffset: number; equityPoints?: number }): Promise<BacktestResult> {
      const found = await repo.findOwned(userId, id, q.equityPoints !== undefined);
      if (!found) throw notFound('Backtest', id, 'BACKTEST_NOT_FOUND');
      const { row } = found;
      const total = row.tradesCount ?? 0;
      let trades: EngineTrade[] = [];
      const end = Math.min(total, q.tradesOffset + q.tradesLimit);
      if (end > q.tradesOffset) {
        const first = Math.floor(q.tradesOffset / TRADES_PER_CHUNK);
        const chunks = await repo.tradeChunks(row.id, first, Math.floor((end - 1) / TRADES_PER_CHUNK));
        const decoded = chunks.flatMap((c) => decodeTrades(Buffer.from(c.data, 'base64')));
        trades = decoded.slice(q.tradesOffset - first * TRADES_PER_CHUNK, end - first * TRADES_PER_CHUNK);
      }
      let equity: BacktestResult['equity'] = null;
      if (found.equity && q.equityPoints !== undefined) {
        const stored = decodeEquity(Buffer.from(found.equity, 'base64'));
        const d = downsample(stored.t, stored.equity, q.equityPoints);
        equity = { t: d.t.map((t) => new Date(t).toISOString()), equity: d.equity };
      }
      const s = row.settings as Omit<BacktestResult['settings'], 'initialCash'>;
      const open = row.openPosition as { side: 'long' | 'short'; size: number; entryBar: number; entryPrice: number } | null;
      return {
        ...summary(row),
        attempts: row.attempts,
        engineVersion: row.engineVersion,
        dataset: { id: row.datasetId, name: row.datasetName, sha256: row.datasetSha256 },
        strategy: { id: row.strategyId, version: row.strategyVersion, name: row.strategyName, document: row.strategy },
        params: row.params,
        resolvedParams: row.resolvedParams,
        settings: { initialCash: decimalString(Number(row.initialCash)), ...s },
        range: { from: isoOrNull(row.rangeFrom), to: isoOrNull(row.rangeTo) },
        bars: row.bars,
        fromIndex: row.fromIndex,
        toIndex: row.toIndex,
        metrics: row.metrics ? metricsDto(row.metrics) : null,
        openPosition: open ? { side: open.side, size: decimalString(open.size), entryBar: open.entryBar, entryPrice: decimalString(open.entryPrice) } : null,
        trades: {
          items: trades.map(toTradeDto),
          total,
          limit: q.tradesLimit,
          offset: q.tradesOffset,
          nextOffset: q.tradesOffset + q.tradesLimit < total && q.tradesLimit > 0 ? q.tradesOffset + q.tradesLimit : null,
        },
        equity,
      };
    },

    async history(userId: string, q: { limit: number; cursor?: string }) {
      const rows = await repo.listByUser(userId, q.limit, decodeCursor(q.cursor));
      return toPage(rows, q.limit, (r) => ({ at: r.createdAt, id: r.id }), summary);
    },

    /** queued or running -> cancelled (a running one is aborted through its AbortSignal). 409 when already finished. */
    async cancel(userId: string, id: string, who: Who): Promise<BacktestSummary> {
      const row = await db.transaction(async (tx) => {
        const r = await repo.cancelOwned(userId, id, tx);
        if (r) await audit(tx, { ...who, action: 'backtest.cancelled', targetType: 'backtest', targetId: id });
        return r;
      });
      if (!row) {
        const existing = await repo.findHead(id, userId);
        if (!existing) throw notFound('Backtest', id, 'BACKTEST_NOT_FOUND');
        throw conflict(`Backtest ${id} is already ${existing.status}`, 'BACKTEST_FINISHED');
      }
      await queue.cancel(id);
      void publish(userId, { type: 'backtest.cancelled', id });
      return summary(row);
    },

    /** The queue handler. */
    runJob,

    /**
     * Jobs a stopped process left queued or running (all of them when `staleMs` is 0, i.e. one process owns the
     * database; otherwise those whose heartbeat is older): queued again while under MAX_ATTEMPTS runs, else failed.
     */
    async recover(staleMs: number): Promise<{ requeued: string[]; failed: string[] }> {
      const out = { requeued: [] as string[], failed: [] as string[] };
      const staleBefore = staleMs > 0 ? new Date(Date.now() - staleMs) : null;
      for (const o of await repo.orphans(staleMs)) {
        if (o.attempts >= maxAttempts) {
          await repo.failActive(o.id, `interrupted ${o.attempts} times (the server stopped while it ran); not retried`);
          out.failed.push(o.id);
          void publish(o.userId, { type: 'backtest.failed', id: o.id, error: 'interrupted too many times' });
          continue;
        }
        if (!(await repo.adoptOrphan(o.id, staleBefore))) continue; // another instance took it
        try {
          await queue.enqueue({ id: o.id, userId: o.userId });
          out.requeued.push(o.id);
        } catch (err) {
          const error = err instanceof QueueFullError ? 'could not be queued again after a restart: the queue is full' : failureMessage(err);
          await repo.failActive(o.id, error);
          out.failed.push(o.id);
        }
      }
      return out;
    },

    /** Refreshes the heartbeat of the jobs this instance holds. */
    heartbeat: () => repo.touch(queue.heldIds()),
  };
}

export type BacktestsService = ReturnType<typeof createBacktestsService>;
