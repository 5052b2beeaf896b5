/**
 * `POST /datasets/download`: a job that pages fetchOHLCV from an exchange's public API into a dataset, so backtests can
 * use real exchange history.
 *
 * - The job row exists (status `pending`) before any request; `next_since_ms` is the resume point and `candles` the
 *   progress (also published as `dataset.download` events on `user:<id>`).
 * - Pages are appended to DATA_DIR/downloads/<job>.csv; the row is advanced after each page, so a job interrupted by a
 *   restart resumes from its last page (rows past the resume point are dropped from the file first).
 * - ccxt's throttle spaces the requests by the exchange's documented rate limit; a 503 EXCHANGE_RATE_LIMITED waits its
 *   Retry-After and tries the same page again.
 * - When the range is covered the CSV is imported through the datasets module (`importUpload`, source `download`).
 */
import { TIMEFRAME_MS, type Timeframe } from '../../shared/timeframes.js';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { and, eq, inArray } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { datasetDownloads } from '../../db/schema/orders.js';
import { HttpProblem, badRequest, notFound } from '../../errors.js';
import type { EventBus } from '../../plugins/event-bus.js';
import type { DatasetsService } from '../datasets/datasets.service.js';
import type { ExchangeId } from '../exchanges/index.js';
import type { TradingService } from '../trading/index.js';

export type DownloadRow = typeof datasetDownloads.$inferSelect;


const PAGE_LIMIT = 500;
const MAX_CANDLES = 2_000_000;
const HEADER = 'timestamp,open,high,low,close,volume\n';

export interface DownloadInput {
  exchange: ExchangeId;
  symbol: string;
  timeframe: string;
  since: string;
  until?: string;
  name?: string;
}

export function toDownloadView(r: DownloadRow) {
  return {
    id: r.id,
    exchange: r.exchange,
    symbol: r.symbol,
    timeframe: r.timeframe,
    name: r.name,
    since: new Date(r.sinceMs).toISOString(),
    until: new Date(r.untilMs).toISOString(),
    next: new Date(r.nextSinceMs).toISOString(),
    candles: r.candles,
    status: r.status,
    datasetId: r.datasetId,
    error: r.error,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

export function createDownloadService(deps: {
  db: Db;
  trading: TradingService;
  datasets: DatasetsService;
  bus: EventBus;
  log: FastifyBaseLogger;
  dir: string;
  now?: () => number;
}) {
  const { db, trading, datasets, bus, log } = deps;
  const now = deps.now ?? (() => Date.now());
  const running = new Map<string, Promise<void>>();
  let stopped = false;
  const sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  const file = (id: string) => path.join(deps.dir, `${id}.csv`);
  const update = async (id: string, patch: Partial<DownloadRow>) => {
    const [row] = await db.update(datasetDownloads).set({ ...patch, updatedAt: new Date() }).where(eq(datasetDownloads.id, id)).returning();
    void bus
      .publish(`user:${row.userId}`, { type: 'dataset.download', download: toDownloadView(row) })
      .catch(() => undefined);
    return row;
  };

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = { timer: setTimeout(() => (sleeps.delete(entry), resolve()), ms), resolve };
      sleeps.add(entry);
    });
  }

  /** Keeps the CSV consistent with the row: header, and only candles before the resume point. */
  async function prepareFile(row: DownloadRow): Promise<void> {
    await mkdir(deps.dir, { recursive: true });
    let text: string;
    try {
      text = await readFile(file(row.id), 'utf8');
    } catch {
      await writeFile(file(row.id), HEADER);
      return;
    }
    const lines = text.split('\n').slice(1).filter(Boolean);
    const kept = lines.filter((l) => Date.parse(l.slice(0, l.indexOf(','))) < row.nextSinceMs);
    if (kept.length !== lines.length) await writeFile(file(row.id), HEADER + kept.map((l) => `${l}\n`).join(''));
  }

  async function run(id: string): Promise<void> {
    let [row] = await db.select().from(datasetDownloads).where(eq(datasetDownloads.id, id));
    if (!row || row.status === 'done' || row.status === 'failed') return;
    try {
      row = await update(id, { status: 'running' });
      await prepareFile(row);
      const adapter = await trading.publicAdapter(row.exchange, row.symbol.includes(':') ? 'swap' : 'spot');
      const step = TIMEFRAME_MS[row.timeframe as Timeframe];
      let since = row.nextSinceMs;
      let candles = row.candles;
      while (!stopped && since < row.untilMs && since <= now()) {
        let page;
        try {
          page = await adapter.fetchOHLCV(row.symbol, row.timeframe, { since, limit: PAGE_LIMIT });
        } catch (err) {
          if (err instanceof HttpProblem && err.code === 'EXCHANGE_RATE_LIMITED') {
            const wait = Number(err.headers?.['retry-after'] ?? 5) * 1000;
            log.info({ downloadId: id, wait }, 'exchange rate limit: waiting before the next page');
            await sleep(wait);
            continue;
          }
          throw err;
        }
        const fresh = page.filter((c) => c.timestamp >= since && c.timestamp < row.untilMs);
        if (fresh.length === 0) break;
        await appendFile(
          file(id),
          fresh.map((c) => `${new Date(c.timestamp).toISOString()},${c.open},${c.high},${c.low},${c.close},${c.volume}\n`).join(''),
        );
        candles += fresh.length;
        since = fresh[fresh.length - 1].timestamp + step;
        row = await update(id, { nextSinceMs: since, candles });
        if (candles > MAX_CANDLES) throw badRequest(`more than ${MAX_CANDLES} candles; download a shorter range`, 'DOWNLOAD_TOO_LARGE');
      }
      if (stopped) return; // resumed at the next start
      if (candles === 0) throw badRequest(`${row.exchange} returned no ${row.timeframe} candles for ${row.symbol} in the range`, 'NO_CANDLES');
      row = await update(id, { status: 'importing' });
      const dataset = await datasets.importUpload(row.userId, { name: row.name, source: 'download', stream: createReadStream(file(id)) });
      await update(id, { status: 'done', datasetId: dataset.id });
      await rm(file(id), { force: true });
    } catch (err) {
      if (stopped) return;
      const message = (err as Error).message;
      log.warn({ downloadId: id, err: message }, 'dataset download failed');
      await update(id, { status: 'failed', error: message }).catch(() => undefined);
      await rm(file(id), { force: true });
    }
  }

  function launch(id: string): Promise<void> {
    const existing = running.get(id);
    if (existing) return existing;
    const job = run(id).finally(() => running.delete(id));
    running.set(id, job);
    return job;
  }

  return {
    async start(userId: string, input: DownloadInput) {
      const step = TIMEFRAME_MS[input.timeframe as Timeframe];
      if (!step) throw badRequest(`unknown timeframe ${input.timeframe}`, 'INVALID_TIMEFRAME');
      const sinceMs = Math.floor(Date.parse(input.since) / step) * step;
      const untilMs = input.until ? Date.parse(input.until) : now();
      if (!(untilMs > sinceMs)) throw badRequest('until must be after since', 'INVALID_RANGE');
      if ((untilMs - sinceMs) / step > MAX_CANDLES) throw badRequest(`the range holds more than ${MAX_CANDLES} candles`, 'DOWNLOAD_TOO_LARGE');
      // unknown exchange/symbol -> 400 before the job exists
      const adapter = await trading.publicAdapter(input.exchange, input.symbol.includes(':') ? 'swap' : 'spot');
      const markets = await adapter.loadMarkets();
      if (!markets[input.symbol]) throw badRequest(`${input.exchange} has no market ${input.symbol}`, 'UNKNOWN_SYMBOL');
      const name = input.name ?? `${input.exchange} ${input.symbol} ${input.timeframe} ${new Date(sinceMs).toISOString().slice(0, 10)}`;
      const [row] = await db
        .insert(datasetDownloads)
        .values({ userId, exchange: input.exchange, symbol: input.symbol, timeframe: input.timeframe, name, sinceMs, untilMs, nextSinceMs: sinceMs })
        .returning();
      void launch(row.id);
      return toDownloadView(row);
    },

    async get(userId: string, id: string) {
      const [row] = await db.select().from(datasetDownloads).where(and(eq(datasetDownloads.id, id), eq(datasetDownloads.userId, userId)));
      if (!row) throw notFound('Download', id, 'DOWNLOAD_NOT_FOUND');
      return toDownloadView(row);
    },

    /** Resumes jobs an earlier process left unfinished. */
    async resumeAll(): Promise<number> {
      const rows = await db
        .select({ id: datasetDownloads.id })
        .from(datasetDownloads)
        .where(inArray(datasetDownloads.status, ['pending', 'running', 'importing']));
      for (const r of rows) void launch(r.id);
      return rows.length;
    },

    /** Waits for a job (tests, tools). */
    wait: (id: string) => running.get(id) ?? Promise.resolve(),

    async stop(): Promise<void> {
      stopped = true;
      for (const s of sleeps) {
        clearTimeout(s.timer);
        s.resolve();
      }
      await Promise.allSettled([...running.values()]);
    },
  };
}

export type DownloadService = ReturnType<typeof createDownloadService>;
