import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from '../../db/client.js';
import { refreshTokens, users } from '../../db/schema/users.js';

export type UserRow = typeof users.$inferSelect;
export type Role = UserRow['role'];

/** The user as `app.authenticate` sees it (no password hash). */
export type AuthUser = Pick<UserRow, 'id' | 'email' | 'role' | 'disabled' | 'tokenVersion' | 'createdAt' | 'lastLoginAt'>;

/** What `app.authenticate` needs to know about a token's user and session, in one indexed round trip. */
export interface SessionState extends AuthUser {
  sessionActive: boolean;
}

const PG_UNIQUE_VIOLATION = '23505';

/** True when a (drizzle-wrapped) driver error is a unique-constraint violation, optionally on a given constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  for (let e = err as { code?: string; constraint?: string; constraint_name?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === PG_UNIQUE_VIOLATION) {
      const name = e.constraint_name ?? e.constraint;
      return !constraint || !name || name === constraint;
    }
  }
  return false;
}

export function createAuthRepository(db: Db) {
  return {
    async findByEmail(email: string, tx: DbOrTx = db): Promise<UserRow | null> {
      const [row] = await tx.select().from(users).where(eq(users.email, email)).limit(1);
      return row ?? null;
    },

    async findById(id: string, tx: DbOrTx = db): Promise<UserRow | null> {
      const [row] = await tx.select().from(users).where(eq(users.id, id)).limit(1);
      return row ?? null;
    },

    /** Inserts a user; a duplicate email raises a unique violation (callers map it to 409). */
    async insertUser(values: { email: string; passwordHash: string; role?: Role }, tx: DbOrTx = db): Promise<UserRow> {
      const [row] = await tx.insert(users).values(values).returning();
      return row;
    },

    /**
     * The per-request check: the user's public fields, role, disabled, token version, and whether the token's session
     * (refresh family) is still live, in one statement on the users primary key and the refresh_tokens family index.
     */
    async sessionState(userId: string, familyId: string, tx: DbOrTx = db): Promise<SessionState | null> {
      const [row] = await tx
        .select({
          id: users.id,
          email: users.email,
          role: users.role,
          disabled: users.disabled,
          tokenVersion: users.tokenVersion,
          createdAt: users.createdAt,
          lastLoginAt: users.lastLoginAt,
          // Spelled out: drizzle leaves columns unqualified inside a select-list sql fragment.
          sessionActive: sql<boolean>`exists (select 1 from "refresh_tokens" rt where rt."family_id" = ${familyId} and rt."user_id" = ${userId} and rt."revoked_at" is null)`,
        })
        .from(users)
        .where(eq(users.id, userId))
        .limit(1);
      return row ?? null;
    },

    async recordLoginFailure(userId: string, tx: DbOrTx = db): Promise<number> {
      const [row] = await tx
        .update(users)
        .set({ failedLogins: sql`${users.failedLogins} + 1` })
        .where(eq(users.id, userId))
        .returning({ failedLogins: users.failedLogins });
      return row?.failedLogins ?? 0;
    },

    async recordLoginSuccess(userId: string, passwordHash: string | undefined, tx: DbOrTx = db): Promise<void> {
      await tx
        .update(users)
        .set({ failedLogins: 0, lastLoginAt: sql`now()`, ...(passwordHash ? { passwordHash } : {}) })
        .where(eq(users.id, userId));
    },

    /** New password: bumps token_version so every access token issued before is refused. */
    async setPassword(userId: string, passwordHash: string, tx: DbOrTx = db): Promise<void> {
      await tx
        .update(users)
        .set({ passwordHash, tokenVersion: sql`${users.tokenVersion} + 1`, updatedAt: sql`now()` })
        .where(eq(users.id, userId));
    },

    async insertRefreshToken(
      values: { userId: string; familyId: string; tokenHash: string; expiresAt: Date },
      tx: DbOrTx = db,
    ): Promise<void> {
      await tx.insert(refreshTokens).values(values);
    },

    async findRefreshToken(tokenHash: string, tx: DbOrTx = db) {
      const [row] = await tx.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash)).limit(1);
      return row ?? null;
    },

    /** Marks a refresh token used, atomically: false when it was already used or revoked (a concurrent or replayed use). */
    async consumeRefreshToken(id: string, tx: DbOrTx = db): Promise<boolean> {
      const rows = await tx
        .update(refreshTokens)
        .set({ usedAt: sql`now()` })
        .where(and(eq(refreshTokens.id, id), isNull(refreshTokens.usedAt), isNull(refreshTokens.revokedAt)))
        .returning({ id: refreshTokens.id });
      return rows.length === 1;
    },

    async revokeFamily(familyId: string, tx: DbOrTx = db): Promise<number> {
      const rows = await tx
        .update(refreshTokens)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)))
        .returning({ id: refreshTokens.id });
      return rows.length;
    },

    async revokeAllForUser(userId: string, tx: DbOrTx = db): Promise<number> {
      const rows = await tx
        .update(refreshTokens)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(refreshTokens.userId, userId), isNull(refreshTokens.revokedAt)))
        .returning({ id: refreshTokens.id });
      return rows.length;
    },
  };
}
export type AuthRepository = ReturnType<typeof createAuthRepository>;
