import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/client.js';
import { badRequest, conflict, forbidden, HttpProblem, unauthorized } from '../../errors.js';
import { audit } from '../audit/audit.repository.js';
import { isUniqueViolation, type AuthRepository, type AuthUser, type Role, type UserRow } from './auth.repository.js';
import { normaliseEmail, type PasswordHasher } from './passwords.js';
import { hashToken, newRefreshToken, type AccessClaims } from './tokens.js';

/** Who is asking: copied into audit rows. */
export interface RequestContext {
  ip?: string;
  requestId?: string;
  actorId?: string | null;
}

export interface PublicUser {
  id: string;
  email: string;
  role: Role;
  disabled: boolean;
  createdAt: string;
  lastLoginAt: string | null;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** Access token lifetime in seconds. */
  expiresIn: number;
  tokenType: 'Bearer';
}

export const toPublicUser = (u: AuthUser): PublicUser => ({
  id: u.id,
  email: u.email,
  role: u.role,
  disabled: u.disabled,
  createdAt: u.createdAt.toISOString(),
  lastLoginAt: u.lastLoginAt ? u.lastLoginAt.toISOString() : null,
});

const INVALID_CREDENTIALS = () => unauthorized('Invalid email or password', 'INVALID_CREDENTIALS');
const INVALID_REFRESH = () => unauthorized('Refresh token is invalid, expired or revoked', 'INVALID_REFRESH_TOKEN');

export interface AuthServiceDeps {
  db: Db;
  repo: AuthRepository;
  passwords: PasswordHasher;
  signAccessToken: (claims: AccessClaims) => string;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  log: FastifyBaseLogger;
  /** Called after a committed change to a user or their sessions (drops the per-process auth state cache). */
  invalidateUser?: (userId: string) => void;
}

/** Accounts and sessions: registration, login, refresh rotation with reuse detection, logout, password change. */
export function createAuthService(deps: AuthServiceDeps) {
  const { db, repo } = deps;
  const changed = (userId: string) => deps.invalidateUser?.(userId);
  const publicUsers = new WeakMap<AuthUser, PublicUser>();

  /** Starts or continues a session family: a new refresh token row and an access token for the user as stored now. */
  async function issueTokens(user: UserRow, familyId: string, tx: Parameters<Parameters<Db['transaction']>[0]>[0]): Promise<TokenPair> {
    const refreshToken = newRefreshToken();
    await repo.insertRefreshToken(
      { userId: user.id, familyId, tokenHash: hashToken(refreshToken), expiresAt: new Date(Date.now() + deps.refreshTtlSeconds * 1000) },
      tx,
    );
    const accessToken = deps.signAccessToken({ sub: user.id, role: user.role, ver: user.tokenVersion, sid: familyId });
    return { accessToken, refreshToken, expiresIn: deps.accessTtlSeconds, tokenType: 'Bearer' };
  }

  /** Creates a user with the given role inside `tx` (409 on a duplicate email, race-safe through the unique index). */
  async function createUser(
    input: { email: string; password: string; role: Role },
    ctx: RequestContext,
    action: string,
  ): Promise<UserRow> {
    const email = normaliseEmail(input.email);
    const passwordHash = await deps.passwords.hash(input.password);
    try {
      return await db.transaction(async (tx) => {
        const user = await repo.insertUser({ email, passwordHash, role: input.role }, tx);
        await audit(tx, {
          action,
          actorId: ctx.actorId ?? user.id,
          targetType: 'user',
          targetId: user.id,
          ip: ctx.ip,
          requestId: ctx.requestId,
          details: { email, role: user.role },
        });
        return user;
      });
    } catch (err) {
      if (isUniqueViolation(err, 'users_email_uq')) throw conflict('An account with this email already exists', 'EMAIL_TAKEN');
      throw err;
    }
  }

  return {
    createUser,

    /** Self-service registration: always a plain user. */
    async register(input: { email: string; password: string }, ctx: RequestContext): Promise<PublicUser> {
      return toPublicUser(await createUser({ ...input, role: 'user' }, { ...ctx, actorId: null }, 'auth.register'));
    },

    /**
     * Same answer, and one argon2 verification, whether the email is unknown or the password wrong. Failures are
     * counted on the user and audited.
     */
    async login(input: { email: string; password: string }, ctx: RequestContext): Promise<TokenPair & { user: PublicUser }> {
      const email = normaliseEmail(input.email);
      const user = await repo.findByEmail(email);
      const ok = await deps.passwords.verify(user ? user.passwordHash : await deps.passwords.dummyHash(), input.password);

      if (!user || !ok) {
        await db.transaction(async (tx) => {
          const failedLogins = user ? await repo.recordLoginFailure(user.id, tx) : undefined;
          await audit(tx, {
            action: 'auth.login',
            outcome: 'failure',
            actorId: user?.id ?? null,
            targetType: 'user',
            targetId: user?.id ?? null,
            ip: ctx.ip,
            requestId: ctx.requestId,
            details: { email, reason: user ? 'wrong_password' : 'unknown_email', ...(failedLogins === undefined ? {} : { failedLogins }) },
          });
        });
        throw INVALID_CREDENTIALS();
      }
      if (user.disabled) {
        await audit(db, {
          action: 'auth.login',
          outcome: 'failure',
          actorId: user.id,
          targetType: 'user',
          targetId: user.id,
          ip: ctx.ip,
          requestId: ctx.requestId,
          details: { email, reason: 'disabled' },
        });
        throw forbidden('This account is disabled', 'ACCOUNT_DISABLED');
      }

      const rehash = deps.passwords.needsRehash(user.passwordHash) ? await deps.passwords.hash(input.password) : undefined;
      const tokens = await db.transaction(async (tx) => {
        await repo.recordLoginSuccess(user.id, rehash, tx);
        const pair = await issueTokens(user, randomUUID(), tx);
        await audit(tx, {
          action: 'auth.login',
          actorId: user.id,
          targetType: 'user',
          targetId: user.id,
          ip: ctx.ip,
          requestId: ctx.requestId,
          details: { email },
        });
        return pair;
      });
      changed(user.id);
      return { ...tokens, user: toPublicUser({ ...user, lastLoginAt: new Date() }) };
    },

    /**
     * Rotates a refresh token. A token that was already used (or revoked) is a replay: the whole family is revoked,
     * so the thief's and the victim's current tokens both stop working, and the event is audited.
     */
    async refresh(refreshToken: string, ctx: RequestContext): Promise<TokenPair> {
      const row = await repo.findRefreshToken(hashToken(refreshToken));
      if (!row) throw INVALID_REFRESH();

      const outcome = await db.transaction(async (tx) => {
        if (!(await repo.consumeRefreshToken(row.id, tx))) {
          const revoked = await repo.revokeFamily(row.familyId, tx);
          await audit(tx, {
            action: 'auth.refresh.reuse_detected',
            outcome: 'failure',
            actorId: row.userId,
            targetType: 'session',
            targetId: row.familyId,
            ip: ctx.ip,
            requestId: ctx.requestId,
            details: { revokedTokens: revoked, alreadyRevoked: row.revokedAt !== null },
          });
          return { kind: 'reuse' as const };
        }
        if (row.expiresAt.getTime() <= Date.now()) return { kind: 'expired' as const };
        const user = await repo.findById(row.userId, tx);
        if (!user || user.disabled) {
          await repo.revokeFamily(row.familyId, tx);
          return { kind: 'disabled' as const };
        }
        return { kind: 'ok' as const, pair: await issueTokens(user, row.familyId, tx) };
      });
      if (outcome.kind === 'reuse' || outcome.kind === 'disabled') changed(row.userId);
      if (outcome.kind === 'reuse') deps.log.warn({ userId: row.userId, sessionId: row.familyId }, 'refresh token reuse detected: session revoked');
      if (outcome.kind !== 'ok') throw INVALID_REFRESH();
      return outcome.pair;
    },

    /** Ends the session (refresh family) the access token belongs to; its access tokens stop working at once. */
    async logout(claims: AccessClaims, ctx: RequestContext): Promise<void> {
      await db.transaction(async (tx) => {
        const revoked = await repo.revokeFamily(claims.sid, tx);
        await audit(tx, {
          action: 'auth.logout',
          actorId: claims.sub,
          targetType: 'session',
          targetId: claims.sid,
          ip: ctx.ip,
          requestId: ctx.requestId,
          details: { revokedTokens: revoked },
        });
      });
      changed(claims.sub);
    },

    /**
     * The user `authenticate` loaded for this request. That object is shared by the requests served from the auth
     * state cache, so its public form is built once per loaded object (frozen; a reload gives a new object).
     */
    me(user: AuthUser | null): PublicUser {
      if (!user) throw unauthorized('Session is no longer valid', 'SESSION_REVOKED');
      let pub = publicUsers.get(user);
      if (pub === undefined) {
        pub = Object.freeze(toPublicUser(user));
        publicUsers.set(user, pub);
      }
      return pub;
    },

    /** Changes the password after checking the current one; every session of the user ends (token version bump). */
    async changePassword(userId: string, input: { currentPassword: string; newPassword: string }, ctx: RequestContext): Promise<void> {
      const user = await repo.findById(userId);
      if (!user) throw unauthorized('Session is no longer valid', 'SESSION_REVOKED');
      if (!(await deps.passwords.verify(user.passwordHash, input.currentPassword))) {
        await audit(db, {
          action: 'auth.password.change',
          outcome: 'failure',
          actorId: user.id,
          targetType: 'user',
          targetId: user.id,
          ip: ctx.ip,
          requestId: ctx.requestId,
          details: { reason: 'wrong_current_password' },
        });
        throw badRequest('The current password is incorrect', 'CURRENT_PASSWORD_INCORRECT');
      }
      if (input.currentPassword === input.newPassword) throw badRequest('The new password must differ from the current one', 'PASSWORD_UNCHANGED');
      const passwordHash = await deps.passwords.hash(input.newPassword);
      await db.transaction(async (tx) => {
        await repo.setPassword(user.id, passwordHash, tx);
        const revoked = await repo.revokeAllForUser(user.id, tx);
        await audit(tx, {
          action: 'auth.password.change',
          actorId: user.id,
          targetType: 'user',
          targetId: user.id,
          ip: ctx.ip,
          requestId: ctx.requestId,
          details: { revokedTokens: revoked },
        });
      });
      changed(user.id);
    },

    /**
     * The bootstrap admin: creates `email` as an admin unless a user with that email exists (then nothing changes).
     * Used at first boot (ADMIN_EMAIL + ADMIN_PASSWORD) and by `npm run admin:create`.
     */
    async ensureAdmin(input: { email: string; password: string }, ctx: RequestContext = {}): Promise<{ created: boolean; user: PublicUser }> {
      const existing = await repo.findByEmail(normaliseEmail(input.email));
      if (existing) return { created: false, user: toPublicUser(existing) };
      try {
        const user = await createUser({ ...input, role: 'admin' }, { ...ctx, actorId: null }, 'admin.bootstrap');
        return { created: true, user: toPublicUser(user) };
      } catch (err) {
        if (err instanceof HttpProblem && err.code === 'EMAIL_TAKEN') {
          const raced = await repo.findByEmail(normaliseEmail(input.email));
          if (raced) return { created: false, user: toPublicUser(raced) };
        }
        throw err;
      }
    },
  };
}
export type AuthService = ReturnType<typeof createAuthService>;
