import { and, asc, eq, getTableColumns, gte, inArray, lt, lte, or, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { backtestTradeChunks, backtests, type BacktestStatus } from '../../db/schema/backtests.js';
import { beforeCursor, newestFirst, type Cursor } from '../../shared/pagination.js';

export type BacktestRow = typeof backtests.$inferSelect;
export type BacktestInsert = typeof backtests.$inferInsert;
/** A row without its big result columns (trades, equity). */
export type BacktestHead = Omit<BacktestRow, 'tradesData' | 'equityData'>;

// eslint-disable-next-line @typescript-eslint/no-unused-vars
const { equityData: _equity, ...headColumns } = getTableColumns(backtests);

const ACTIVE: BacktestStatus[] = ['queued', 'running'];

/** Trade chunks written per INSERT. */
const CHUNKS_PER_INSERT = 8;

export function createBacktestsRepository(db: DbOrTx) {
  return {
    async insert(row: BacktestInsert, tx: DbOrTx = db): Promise<BacktestHead> {
      const [created] = await tx.insert(backtests).values(row).returning(headColumns);
      return created;
    },

    async deleteById(id: string, tx: DbOrTx = db): Promise<void> {
      await tx.delete(backtests).where(eq(backtests.id, id));
    },

    async findHead(id: string, userId?: string, tx: DbOrTx = db): Promise<BacktestHead | null> {
      const where = userId ? and(eq(backtests.id, id), eq(backtests.userId, userId)) : eq(backtests.id, id);
      const [row] = await tx.select(headColumns).from(backtests).where(where);
      return row ?? null;
    },

    /** The owned row and, when asked, its stored equity curve (base64). */
    async findOwned(userId: string, id: string, withEquity: boolean, tx: DbOrTx = db): Promise<{ row: BacktestHead; equity: string | null } | null> {
      const [found] = await tx
        .select({ head: headColumns, equity: withEquity ? backtests.equityData : sql<null>`null` })
        .from(backtests)
        .where(and(eq(backtests.id, id), eq(backtests.userId, userId)));
      return found ? { row: found.head as BacktestHead, equity: found.equity } : null;
    },

    /** Chunks [fromSeq, toSeq] of a result's trades, in order. */
    async tradeChunks(id: string, fromSeq: number, toSeq: number, tx: DbOrTx = db): Promise<{ seq: number; data: string }[]> {
      return tx
        .select({ seq: backtestTradeChunks.seq, data: backtestTradeChunks.data })
        .from(backtestTradeChunks)
        .where(and(eq(backtestTradeChunks.backtestId, id), gte(backtestTradeChunks.seq, fromSeq), lte(backtestTradeChunks.seq, toSeq)))
        .orderBy(asc(backtestTradeChunks.seq));
    },

    /** Stores a result's trade chunks (replacing any of an earlier attempt), one short statement each. */
    async replaceTradeChunks(id: string, chunks: string[], tx: DbOrTx = db): Promise<void> {
      await tx.delete(backtestTradeChunks).where(eq(backtestTradeChunks.backtestId, id));
      // A few chunks (128 KiB each) per statement: fewer round trips, and requests still get in between (PGlite
      // runs statements on this thread).
      for (let i = 0; i < chunks.length; i += CHUNKS_PER_INSERT) {
        await tx.insert(backtestTradeChunks).values(chunks.slice(i, i + CHUNKS_PER_INSERT).map((data, k) => ({ backtestId: id, seq: i + k, data })));
        if (i + CHUNKS_PER_INSERT < chunks.length) await new Promise((resolve) => setImmediate(resolve));
      }
    },

    async deleteTradeChunks(id: string, tx: DbOrTx = db): Promise<void> {
      await tx.delete(backtestTradeChunks).where(eq(backtestTradeChunks.backtestId, id));
    },

    listByUser(userId: string, limit: number, cursor: Cursor | undefined, tx: DbOrTx = db) {
      return tx
        .select(headColumns)
        .from(backtests)
        .where(and(eq(backtests.userId, userId), beforeCursor(backtests.createdAt, backtests.id, cursor)))
        .orderBy(...newestFirst(backtests.createdAt, backtests.id))
        .limit(limit + 1);
    },

    /** queued -> running (attempt counted). Null when the row is no longer queued (cancelled meanwhile). */
    async markRunning(id: string, tx: DbOrTx = db): Promise<BacktestHead | null> {
      const [row] = await tx
        .update(backtests)
        .set({ status: 'running', attempts: sql`${backtests.attempts} + 1`, startedAt: new Date(), heartbeatAt: new Date(), progress: 0, error: null })
        .where(and(eq(backtests.id, id), eq(backtests.status, 'queued')))
        .returning(headColumns);
      return row ?? null;
    },

    async setProgress(id: string, progress: number, tx: DbOrTx = db): Promise<void> {
      await tx
        .update(backtests)
        .set({ progress, heartbeatAt: new Date() })
        .where(and(eq(backtests.id, id), eq(backtests.status, 'running')));
    },

    /** Final update of a running job; false when it is no longer running (cancelled meanwhile). */
    async finish(id: string, patch: Partial<BacktestInsert>, tx: DbOrTx = db): Promise<boolean> {
      const rows = await tx
        .update(backtests)
        .set({ ...patch, finishedAt: new Date(), heartbeatAt: new Date() })
        .where(and(eq(backtests.id, id), eq(backtests.status, 'running')))
        .returning({ id: backtests.id });
      return rows.length > 0;
    },

    /** running -> queued without counting the attempt (this instance is shutting down; the job is resumed later). */
    async requeue(id: string, tx: DbOrTx = db): Promise<void> {
      await tx
        .update(backtests)
        .set({ status: 'queued', progress: 0, attempts: sql`greatest(${backtests.attempts} - 1, 0)` })
        .where(and(eq(backtests.id, id), eq(backtests.status, 'running')));
    },

    /** queued|running -> cancelled for the owner. Returns the row when it changed. */
    async cancelOwned(userId: string, id: string, tx: DbOrTx = db): Promise<BacktestHead | null> {
      const [row] = await tx
        .update(backtests)
        .set({ status: 'cancelled', finishedAt: new Date(), error: 'cancelled by the user' })
        .where(and(eq(backtests.id, id), eq(backtests.userId, userId), inArray(backtests.status, ACTIVE)))
        .returning(headColumns);
      return row ?? null;
    },

    async touch(ids: string[], tx: DbOrTx = db): Promise<void> {
      if (ids.length === 0) return;
      await tx.update(backtests).set({ heartbeatAt: new Date() }).where(and(inArray(backtests.id, ids), inArray(backtests.status, ACTIVE)));
    },

    /** Jobs left queued/running whose heartbeat is older than `staleMs` (0 = all of them): their process is gone. */
    async orphans(staleMs: number, tx: DbOrTx = db): Promise<Pick<BacktestRow, 'id' | 'userId' | 'status' | 'attempts'>[]> {
      const conds: SQL[] = [inArray(backtests.status, ACTIVE)];
      if (staleMs > 0) conds.push(lt(backtests.heartbeatAt, new Date(Date.now() - staleMs)));
      return tx
        .select({ id: backtests.id, userId: backtests.userId, status: backtests.status, attempts: backtests.attempts, createdAt: backtests.createdAt })
        .from(backtests)
        .where(and(...conds))
        .orderBy(backtests.createdAt);
    },

    /** Claims an orphan for this instance: back to queued (heartbeat now), only if it is still the stale row seen. */
    async adoptOrphan(id: string, staleBefore: Date | null, tx: DbOrTx = db): Promise<boolean> {
      const stale = staleBefore ? lt(backtests.heartbeatAt, staleBefore) : undefined;
      const rows = await tx
        .update(backtests)
        .set({ status: 'queued', progress: 0, heartbeatAt: new Date() })
        .where(and(eq(backtests.id, id), inArray(backtests.status, ACTIVE), stale))
        .returning({ id: backtests.id });
      return rows.length > 0;
    },

    async failActive(id: string, error: string, tx: DbOrTx = db): Promise<void> {
      await tx
        .update(backtests)
        .set({ status: 'failed', error, finishedAt: new Date() })
        .where(and(eq(backtests.id, id), or(eq(backtests.status, 'queued'), eq(backtests.status, 'running'))));
    },
  };
}
export type BacktestsRepository = ReturnType<typeof createBacktestsRepository>;
