import { and, count, desc, eq, inArray, lt, ne, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { datasets } from '../../db/schema/datasets.js';

export type DatasetRow = typeof datasets.$inferSelect;
export type NewDatasetRow = typeof datasets.$inferInsert;
export type DatasetReadyFields = Pick<
  NewDatasetRow,
  'sha256' | 'rows' | 'bytes' | 'fromAt' | 'toAt' | 'timeframeMs' | 'timeframe' | 'quality' | 'warnings' | 'storageFile'
>;

/** Sources listed from the table (file datasets are listed from the directory, their rows only cache the ingest). */
const LISTED_SOURCES = ['upload', 'download'] as const;

export function createDatasetsRepository(db: DbOrTx) {
  return {
    async insert(row: NewDatasetRow, tx: DbOrTx = db): Promise<DatasetRow> {
      const [created] = await tx.insert(datasets).values(row).returning();
      return created;
    },

    /** Owner-scoped: another user's id finds nothing. */
    async findOwned(userId: string, id: string, tx: DbOrTx = db): Promise<DatasetRow | null> {
      const [row] = await tx
        .select()
        .from(datasets)
        .where(and(eq(datasets.id, id), eq(datasets.userId, userId)));
      return row ?? null;
    },

    /** The user's uploaded/downloaded datasets, newest first, and their total. */
    async listOwned(userId: string, limit: number, offset: number, tx: DbOrTx = db): Promise<{ items: DatasetRow[]; total: number }> {
      const cond = and(eq(datasets.userId, userId), inArray(datasets.source, [...LISTED_SOURCES]));
      const [items, [{ total }]] = await Promise.all([
        limit > 0
          ? tx.select().from(datasets).where(cond).orderBy(desc(datasets.createdAt), desc(datasets.id)).limit(limit).offset(offset)
          : Promise.resolve([] as DatasetRow[]),
        tx.select({ total: count() }).from(datasets).where(cond),
      ]);
      return { items, total };
    },

    /** The user's cache rows of directory files (any status), newest first. */
    listFileRows(userId: string, fileName?: string, tx: DbOrTx = db): Promise<DatasetRow[]> {
      return tx
        .select()
        .from(datasets)
        .where(and(eq(datasets.userId, userId), eq(datasets.source, 'file'), fileName === undefined ? undefined : eq(datasets.fileName, fileName)))
        .orderBy(desc(datasets.createdAt));
    },

    /** A ready cache row of this exact file version from any user (file datasets are shared, their metadata too). */
    async findReadyFileVersion(fileName: string, size: number, mtime: Date, tx: DbOrTx = db): Promise<DatasetRow | null> {
      const [row] = await tx
        .select()
        .from(datasets)
        .where(
          and(
            eq(datasets.source, 'file'),
            eq(datasets.status, 'ready'),
            eq(datasets.fileName, fileName),
            eq(datasets.fileSize, size),
            eq(datasets.fileMtime, mtime),
          ),
        )
        .orderBy(desc(datasets.createdAt))
        .limit(1);
      return row ?? null;
    },

    /** importing → ready; null when the row is gone or no longer importing (deleted or failed meanwhile). */
    async markReady(id: string, fields: DatasetReadyFields, tx: DbOrTx = db): Promise<DatasetRow | null> {
      const [row] = await tx
        .update(datasets)
        .set({ ...fields, status: 'ready', error: null })
        .where(and(eq(datasets.id, id), eq(datasets.status, 'importing')))
        .returning();
      return row ?? null;
    },

    async markFailed(id: string, error: string, tx: DbOrTx = db): Promise<void> {
      await tx.update(datasets).set({ status: 'failed', error }).where(and(eq(datasets.id, id), eq(datasets.status, 'importing')));
    },

    async deleteById(id: string, tx: DbOrTx = db): Promise<void> {
      await tx.delete(datasets).where(eq(datasets.id, id));
    },

    async deleteOwned(userId: string, id: string, tx: DbOrTx = db): Promise<DatasetRow | null> {
      const [row] = await tx
        .delete(datasets)
        .where(and(eq(datasets.id, id), eq(datasets.userId, userId)))
        .returning();
      return row ?? null;
    },

    /** Keeps importing rows alive (see the stale sweep). */
    async heartbeat(ids: string[], tx: DbOrTx = db): Promise<void> {
      if (ids.length === 0) return;
      await tx
        .update(datasets)
        .set({ heartbeatAt: sql`now()` })
        .where(and(inArray(datasets.id, ids), eq(datasets.status, 'importing')));
    },

    /** Marks `importing` rows whose heartbeat is older than `staleMs` as failed; returns their ids. */
    async failStale(staleMs: number, error: string, tx: DbOrTx = db): Promise<string[]> {
      const cutoff = sql`now() - make_interval(secs => ${staleMs / 1000})`;
      const rows = await tx
        .update(datasets)
        .set({ status: 'failed', error })
        .where(and(eq(datasets.status, 'importing'), staleMs > 0 ? lt(datasets.heartbeatAt, cutoff) : undefined))
        .returning({ id: datasets.id });
      return rows.map((r) => r.id);
    },

    /** Serialises work on one columnar file (delete-vs-reuse) across transactions and API instances. */
    async lockSha(sha256: string, tx: DbOrTx): Promise<void> {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`dataset:${sha256}`}, 0))`);
    },

    /** Rows (other than `exceptId`) still pointing at this content. */
    async countBySha(sha256: string, exceptId?: string, tx: DbOrTx = db): Promise<number> {
      const [{ n }] = await tx
        .select({ n: count() })
        .from(datasets)
        .where(and(eq(datasets.sha256, sha256), exceptId ? ne(datasets.id, exceptId) : undefined));
      return n;
    },
  };
}
export type DatasetsRepository = ReturnType<typeof createDatasetsRepository>;
