import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import jwt from '@fastify/jwt';
import { forbidden, notFound, unauthorized } from '../errors.js';
import type { Tx } from '../db/client.js';
import { createAuthRepository } from '../modules/auth/auth.repository.js';
import type { AccessClaims } from '../modules/auth/tokens.js';
import { createPasswordHasher, type PasswordHasher } from '../modules/auth/passwords.js';

export type Role = AccessClaims['role'];

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessClaims;
    user: AccessClaims;
  }
}

/** Called when a user is deleted, inside the deleting transaction (throwing aborts the deletion). */
export type UserDeleteHook = (event: { userId: string; tx: Tx; log: FastifyRequest['log'] }) => Promise<void> | void;

export interface UserLifecycle {
  /** Register a hook run before a user (and, by cascade, their data) is deleted, e.g. to stop their bots. */
  onDelete(fn: UserDeleteHook): void;
  /** Runs every onDelete hook in registration order (the admin service calls this). */
  runDelete(event: Parameters<UserDeleteHook>[0]): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: verifies the bearer JWT (HS256 only) and the user's current state; sets `request.user`. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /** Hook (after `authenticate`) refusing any other role with 403. */
    requireRole: (role: Role) => preHandlerAsyncHookHandler;
    userLifecycle: UserLifecycle;
    /** argon2id with the configured parameters (one instance: the auth service verifies through it). */
    passwords: PasswordHasher;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isClaims(p: unknown): p is AccessClaims {
  const c = p as Partial<AccessClaims> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.sub === 'string' &&
    UUID.test(c.sub) &&
    typeof c.sid === 'string' &&
    UUID.test(c.sid) &&
    Number.isInteger(c.ver) &&
    (c.role === 'admin' || c.role === 'user')
  );
}

/**
 * The one place for authentication and authorization. A valid signature is not enough: every request also loads
 * the user's (role, disabled, token_version) and its session's liveness in one indexed select, so disabling,
 * deleting, demoting, a password change or a logout take effect on the very next request. No cache: measured cheap
 * enough (bench/http.ts), and nothing to invalidate across instances.
 */
export default fp(
  async function authPlugin(app: FastifyInstance) {
    const { jwtSecret, accessTtlSeconds } = app.config.auth;
    await app.register(jwt, {
      secret: jwtSecret,
      sign: { algorithm: 'HS256', expiresIn: accessTtlSeconds },
      // Explicit allow-list: `alg: none`, HS384/512 and asymmetric algorithms are all refused.
      verify: { algorithms: ['HS256'] },
    });

    const repo = createAuthRepository(app.database.db);
    app.decorate('passwords', createPasswordHasher(app.config.auth.argon2));

    app.decorate('authenticate', async function authenticate(request: FastifyRequest) {
      const header = request.headers.authorization;
      if (!header || header.length < 8 || !/^bearer /i.test(header)) throw unauthorized('Bearer token required', 'UNAUTHORIZED');
      let payload: unknown;
      try {
        payload = app.jwt.verify(header.slice(7).trim());
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'FAST_JWT_EXPIRED') throw unauthorized('Access token expired', 'TOKEN_EXPIRED');
        throw unauthorized('Access token is invalid', 'INVALID_TOKEN');
      }
      if (!isClaims(payload)) throw unauthorized('Access token is invalid', 'INVALID_TOKEN');
      const state = await repo.sessionState(payload.sub, payload.sid);
      if (!state || state.disabled || state.tokenVersion !== payload.ver || !state.sessionActive) {
        throw unauthorized('Session is no longer valid; log in again', 'SESSION_REVOKED');
      }
      request.user = { sub: payload.sub, sid: payload.sid, ver: payload.ver, role: state.role };
    });

    app.decorate('requireRole', (role: Role): preHandlerAsyncHookHandler => {
      return async function requireRole(request: FastifyRequest) {
        if (!request.user) throw unauthorized();
        if (request.user.role !== role) throw forbidden(`Requires the ${role} role`, 'FORBIDDEN');
      };
    });

    const deleteHooks: UserDeleteHook[] = [];
    app.decorate('userLifecycle', {
      onDelete(fn) {
        deleteHooks.push(fn);
      },
      async runDelete(event) {
        for (const fn of deleteHooks) await fn(event);
      },
    } satisfies UserLifecycle);
  },
  { name: 'auth', dependencies: ['db'] },
);

/**
 * Ownership check for per-user resources: another user's resource answers 404 exactly like a missing one (no
 * existence oracle). Admins are not exempt here; admin routes read through their own scope.
 */
export function assertOwner<T extends { userId: string }>(request: FastifyRequest, resource: T | null | undefined, what: string, id?: string): T {
  if (!resource || !request.user || resource.userId !== request.user.sub) throw notFound(what, id);
  return resource;
}
