import { and, count, eq, gte, lt } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { aiGenerations } from '../../db/schema/ai.js';
import { users } from '../../db/schema/users.js';
import { beforeCursor, newestFirst, type Cursor } from '../../shared/pagination.js';

export type AiGenerationRow = typeof aiGenerations.$inferSelect;
export type AiGenerationInsert = typeof aiGenerations.$inferInsert;
export type AiGenerationUpdate = Partial<Omit<AiGenerationInsert, 'id' | 'userId' | 'createdAt'>>;

export function createAiRepository(db: DbOrTx) {
  return {
    /** Serialises quota checks of one user (row lock on the user until the transaction ends). */
    async lockUser(userId: string, tx: DbOrTx): Promise<boolean> {
      const rows = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('update');
      return rows.length === 1;
    },
    async countSince(userId: string, since: Date, tx: DbOrTx = db): Promise<number> {
      const [row] = await tx
        .select({ n: count() })
        .from(aiGenerations)
        .where(and(eq(aiGenerations.userId, userId), gte(aiGenerations.createdAt, since)));
      return Number(row?.n ?? 0);
    },
    async insert(row: AiGenerationInsert, tx: DbOrTx = db): Promise<AiGenerationRow> {
      const [created] = await tx.insert(aiGenerations).values(row).returning();
      return created;
    },
    async update(id: string, patch: AiGenerationUpdate, tx: DbOrTx = db): Promise<void> {
      await tx
        .update(aiGenerations)
        .set(patch)
        .where(eq(aiGenerations.id, id));
    },
    /** Marks `pending` rows created before `before` as failed (their process stopped mid-generation). */
    async failStale(before: Date, at: Date, tx: DbOrTx = db): Promise<number> {
      const rows = await tx
        .update(aiGenerations)
        .set({ outcome: 'failed', errorCode: 'INTERRUPTED', errorDetail: 'The server stopped before the generation finished', finishedAt: at })
        .where(and(eq(aiGenerations.outcome, 'pending'), lt(aiGenerations.createdAt, before)))
        .returning({ id: aiGenerations.id });
      return rows.length;
    },
    async findOwned(userId: string, id: string, tx: DbOrTx = db): Promise<AiGenerationRow | null> {
      const [row] = await tx
        .select()
        .from(aiGenerations)
        .where(and(eq(aiGenerations.id, id), eq(aiGenerations.userId, userId)));
      return row ?? null;
    },
    listByUser(userId: string, limit: number, cursor: Cursor | undefined, tx: DbOrTx = db) {
      return tx
        .select()
        .from(aiGenerations)
        .where(and(eq(aiGenerations.userId, userId), beforeCursor(aiGenerations.createdAt, aiGenerations.id, cursor)))
        .orderBy(...newestFirst(aiGenerations.createdAt, aiGenerations.id))
        .limit(limit + 1);
    },
  };
}
export type AiRepository = ReturnType<typeof createAiRepository>;
