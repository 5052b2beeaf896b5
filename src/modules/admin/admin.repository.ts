import { and, asc, count, desc, eq, ilike, sql, type SQL } from 'drizzle-orm';
import type { Db, DbOrTx } from '../../db/client.js';
import { users } from '../../db/schema/users.js';
import type { Role, UserRow } from '../auth/auth.repository.js';

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export function createAdminRepository(db: Db) {
  return {
    async listUsers(q: { limit: number; offset: number; email?: string }, tx: DbOrTx = db): Promise<{ items: UserRow[]; total: number }> {
      const cond: SQL | undefined = q.email ? ilike(users.email, `%${likeEscape(q.email.trim().toLowerCase())}%`) : undefined;
      const [items, [{ total }]] = await Promise.all([
        tx.select().from(users).where(cond).orderBy(desc(users.createdAt), asc(users.id)).limit(q.limit).offset(q.offset),
        tx.select({ total: count() }).from(users).where(cond),
      ]);
      return { items, total };
    },

    async counts(tx: DbOrTx = db): Promise<{ total: number; admins: number; disabled: number }> {
      const [row] = await tx
        .select({
          total: count(),
          admins: sql<number>`count(*) filter (where ${users.role} = 'admin')`.mapWith(Number),
          disabled: sql<number>`count(*) filter (where ${users.disabled})`.mapWith(Number),
        })
        .from(users);
      return row;
    },

    async findById(id: string, tx: DbOrTx = db): Promise<UserRow | null> {
      const [row] = await tx.select().from(users).where(eq(users.id, id)).limit(1);
      return row ?? null;
    },

    /**
     * Locks and returns the ids of every active admin (FOR UPDATE): two concurrent demotions of the last two
     * admins serialize here, so the second sees one admin left and is refused.
     */
    async lockActiveAdmins(tx: DbOrTx): Promise<string[]> {
      const rows = await tx
        .select({ id: users.id })
        .from(users)
        .where(and(eq(users.role, 'admin'), eq(users.disabled, false)))
        .orderBy(asc(users.id))
        .for('update');
      return rows.map((r) => r.id);
    },

    /** Locks one user row. */
    async lockUser(id: string, tx: DbOrTx): Promise<UserRow | null> {
      const [row] = await tx.select().from(users).where(eq(users.id, id)).for('update');
      return row ?? null;
    },

    /** Sets role/disabled and bumps token_version (every outstanding access token of the user is refused). */
    async updateAccess(id: string, patch: { role?: Role; disabled?: boolean }, tx: DbOrTx): Promise<UserRow> {
      const [row] = await tx
        .update(users)
        .set({ ...patch, tokenVersion: sql`${users.tokenVersion} + 1`, updatedAt: sql`now()` })
        .where(eq(users.id, id))
        .returning();
      return row;
    },

    async deleteUser(id: string, tx: DbOrTx): Promise<boolean> {
      const rows = await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id });
      return rows.length === 1;
    },
  };
}
export type AdminRepository = ReturnType<typeof createAdminRepository>;
