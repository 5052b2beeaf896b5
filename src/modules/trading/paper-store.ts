import { eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { paperAccounts } from '../../db/schema/orders.js';
import type { PaperState, PaperStore } from '../exchanges/index.js';

/** Paper account id: `<userId>:<marketType>`. */
export const paperAccountId = (userId: string, marketType: string) => `${userId}:${marketType}`;

/** The paper adapter's state in the `paper_accounts` table (one jsonb document per account), so restarts lose nothing. */
export function createDbPaperStore(db: Db): PaperStore {
  return {
    async load(accountId) {
      const [row] = await db.select({ state: paperAccounts.state }).from(paperAccounts).where(eq(paperAccounts.id, accountId));
      return row ? (row.state as unknown as PaperState) : null;
    },
    async save(accountId, state) {
      const userId = accountId.split(':')[0];
      const doc = state as unknown as Record<string, unknown>;
      await db
        .insert(paperAccounts)
        .values({ id: accountId, userId, state: doc })
        .onConflictDoUpdate({ target: paperAccounts.id, set: { state: doc, updatedAt: sql`now()` } });
    },
  };
}
