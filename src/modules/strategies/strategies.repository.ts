import { and, asc, eq } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { strategies, strategyVersions } from '../../db/schema/strategies.js';
import { beforeCursor, newestFirst, type Cursor } from '../../shared/pagination.js';

export type StrategyRow = typeof strategies.$inferSelect;
export type StrategyVersionRow = typeof strategyVersions.$inferSelect;

export function createStrategiesRepository(db: DbOrTx) {
  return {
    async insert(row: typeof strategies.$inferInsert, document: Record<string, unknown>, tx: DbOrTx = db): Promise<StrategyRow> {
      const [created] = await tx.insert(strategies).values(row).returning();
      await tx.insert(strategyVersions).values({ strategyId: created.id, version: 1, document });
      return created;
    },
    async findOwned(userId: string, id: string, tx: DbOrTx = db): Promise<StrategyRow | null> {
      const [row] = await tx.select().from(strategies).where(and(eq(strategies.id, id), eq(strategies.userId, userId)));
      return row ?? null;
    },
    /** Locks the strategy row so concurrent updates get consecutive version numbers. */
    async findOwnedForUpdate(userId: string, id: string, tx: DbOrTx): Promise<StrategyRow | null> {
      const [row] = await tx
        .select()
        .from(strategies)
        .where(and(eq(strategies.id, id), eq(strategies.userId, userId)))
        .for('update');
      return row ?? null;
    },
    async version(strategyId: string, version: number, tx: DbOrTx = db): Promise<StrategyVersionRow | null> {
      const [row] = await tx
        .select()
        .from(strategyVersions)
        .where(and(eq(strategyVersions.strategyId, strategyId), eq(strategyVersions.version, version)));
      return row ?? null;
    },
    versions(strategyId: string, tx: DbOrTx = db) {
      return tx
        .select({ version: strategyVersions.version, createdAt: strategyVersions.createdAt })
        .from(strategyVersions)
        .where(eq(strategyVersions.strategyId, strategyId))
        .orderBy(asc(strategyVersions.version));
    },
    async addVersion(
      row: StrategyRow,
      patch: { name?: string; description?: string },
      document: Record<string, unknown>,
      tx: DbOrTx,
    ): Promise<StrategyRow> {
      const version = row.latestVersion + 1;
      await tx.insert(strategyVersions).values({ strategyId: row.id, version, document });
      const [updated] = await tx
        .update(strategies)
        .set({ latestVersion: version, updatedAt: new Date(), ...patch })
        .where(eq(strategies.id, row.id))
        .returning();
      return updated;
    },
    listByUser(userId: string, limit: number, cursor: Cursor | undefined, tx: DbOrTx = db) {
      return tx
        .select()
        .from(strategies)
        .where(and(eq(strategies.userId, userId), beforeCursor(strategies.createdAt, strategies.id, cursor)))
        .orderBy(...newestFirst(strategies.createdAt, strategies.id))
        .limit(limit + 1);
    },
    async deleteOwned(userId: string, id: string, tx: DbOrTx = db): Promise<boolean> {
      const rows = await tx
        .delete(strategies)
        .where(and(eq(strategies.id, id), eq(strategies.userId, userId)))
        .returning({ id: strategies.id });
      return rows.length === 1;
    },
  };
}
