import { and, asc, desc, eq, gt } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { exchangeKeys } from '../../db/schema/exchange-keys.js';

export type ExchangeKeyRow = typeof exchangeKeys.$inferSelect;
export type NewExchangeKeyRow = typeof exchangeKeys.$inferInsert;

export function createKeysRepository(db: DbOrTx) {
  return {
    async insert(row: NewExchangeKeyRow, tx: DbOrTx = db): Promise<ExchangeKeyRow> {
      const [created] = await tx.insert(exchangeKeys).values(row).returning();
      return created;
    },
    listByUser(userId: string, tx: DbOrTx = db): Promise<ExchangeKeyRow[]> {
      return tx.select().from(exchangeKeys).where(eq(exchangeKeys.userId, userId)).orderBy(desc(exchangeKeys.createdAt));
    },
    /** Owner-scoped: another user's key id finds nothing. */
    async findOwned(userId: string, id: string, tx: DbOrTx = db): Promise<ExchangeKeyRow | null> {
      const [row] = await tx
        .select()
        .from(exchangeKeys)
        .where(and(eq(exchangeKeys.id, id), eq(exchangeKeys.userId, userId)));
      return row ?? null;
    },
    async deleteOwned(userId: string, id: string, tx: DbOrTx = db): Promise<ExchangeKeyRow | null> {
      const [row] = await tx
        .delete(exchangeKeys)
        .where(and(eq(exchangeKeys.id, id), eq(exchangeKeys.userId, userId)))
        .returning();
      return row ?? null;
    },
    async touch(id: string, tx: DbOrTx = db): Promise<void> {
      await tx.update(exchangeKeys).set({ lastUsedAt: new Date() }).where(eq(exchangeKeys.id, id));
    },
    /** A page of rows in id order, for the rotation sweep. */
    page(afterId: string | null, limit: number, tx: DbOrTx = db): Promise<ExchangeKeyRow[]> {
      return tx
        .select()
        .from(exchangeKeys)
        .where(afterId ? gt(exchangeKeys.id, afterId) : undefined)
        .orderBy(asc(exchangeKeys.id))
        .limit(limit);
    },
    /** Compare-and-set of the encrypted columns: a row changed meanwhile is left alone (and retried by the caller). */
    async replaceCiphertexts(
      row: Pick<ExchangeKeyRow, 'id' | 'apiKeyEnc' | 'secretEnc'>,
      next: Pick<ExchangeKeyRow, 'apiKeyEnc' | 'secretEnc' | 'passphraseEnc'>,
      tx: DbOrTx = db,
    ): Promise<boolean> {
      const updated = await tx
        .update(exchangeKeys)
        .set(next)
        .where(and(eq(exchangeKeys.id, row.id), eq(exchangeKeys.apiKeyEnc, row.apiKeyEnc), eq(exchangeKeys.secretEnc, row.secretEnc)))
        .returning({ id: exchangeKeys.id });
      return updated.length === 1;
    },
  };
}
export type KeysRepository = ReturnType<typeof createKeysRepository>;
