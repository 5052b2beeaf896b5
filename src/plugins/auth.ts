import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, preHandlerAsyncHookHandler } from 'fastify';
import jwt from '@fastify/jwt';
import { createVerifier } from 'fast-jwt';
import { forbidden, notFound, unauthorized } from '../errors.js';
import type { Tx } from '../db/client.js';
import { createAuthRepository, type AuthUser, type SessionState } from '../modules/auth/auth.repository.js';
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

/** Per-process cache of what `authenticate` loads; every change made through this process invalidates it. */
export interface AuthStateCache {
  /** Forget a user's cached state (call after committing any change to the user or their sessions). */
  invalidate(userId: string): void;
  clear(): void;
  readonly size: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user as loaded by `authenticate` (fresh, or at most AUTH_CACHE_TTL_MS old). */
    authUser: AuthUser | null;
  }
  interface FastifyInstance {
    authStateCache: AuthStateCache;
    /** onRequest hook: verifies the bearer JWT (HS256 only) and the user's current state; sets `request.user`. */
    authenticate: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;
    /**
     * The check behind `authenticate`, for transports without a request hook (the WebSocket `auth` message):
     * verifies an access token and the user's current state; throws the same 401 problems.
     */
    verifyAccessToken: (token: string) => Promise<{ claims: AccessClaims & { exp?: number }; user: AuthUser }>;
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

const CACHE_MAX_USERS = 10_000;
const JWT_CACHE_SIZE = 10_000;

/**
 * Remembers tokens that passed `verify` (signature, algorithm, claims) until their own `exp` (and from their `nbf`),
 * keyed by the exact token string: a repeat skips base64/JSON decoding and the HMAC. Only verified tokens are stored
 * (junk cannot evict them); a token without `exp` is never cached; failures always go through `verify` (same errors).
 * fast-jwt's own cache hashes every token with SHA-256 to build its key, which costs about as much as verifying.
 */
export function createVerifiedTokenCache(verify: (token: string) => unknown, max: number, now: () => number = Date.now) {
  const entries = new Map<string, { payload: unknown; notBefore: number; expiresAt: number }>();
  return function cachedVerify(token: string): unknown {
    const t = now();
    const hit = entries.get(token);
    if (hit !== undefined) {
      if (t >= hit.notBefore && t < hit.expiresAt) return hit.payload;
      entries.delete(token);
    }
    const payload = verify(token);
    const { exp, nbf } = payload as { exp?: unknown; nbf?: unknown };
    if (typeof exp === 'number') {
      if (entries.size >= max) entries.delete(entries.keys().next().value!);
      entries.set(token, { payload: Object.freeze(payload), notBefore: typeof nbf === 'number' ? nbf * 1000 : 0, expiresAt: exp * 1000 });
    }
    return payload;
  };
}

interface CachedState {
  at: number;
  user: AuthUser;
  /** session id → live */
  sessions: Map<string, boolean>;
}

/**
 * A short-lived map userId → (user state, known sessions). A change made through this process calls `invalidate`
 * after its commit; an epoch counter keeps a lookup that raced with an invalidation from caching what it read.
 * Other processes see a change after at most `ttlMs`. ttlMs = 0: every request reads the database.
 */
function createStateCache(ttlMs: number, load: (userId: string, sid: string) => Promise<SessionState | null>) {
  const entries = new Map<string, CachedState>();
  let epoch = 0;
  const api = {
    /** The cached state when it is fresh and knows this session, synchronously; undefined otherwise (call `get`). */
    peek(userId: string, sid: string): { user: AuthUser; sessionActive: boolean } | undefined {
      if (ttlMs <= 0) return undefined;
      const hit = entries.get(userId);
      if (hit === undefined || Date.now() - hit.at >= ttlMs) return undefined;
      const active = hit.sessions.get(sid);
      return active === undefined ? undefined : { user: hit.user, sessionActive: active };
    },
    async get(userId: string, sid: string): Promise<{ user: AuthUser; sessionActive: boolean } | null> {
      const now = Date.now();
      if (ttlMs > 0) {
        const hit = entries.get(userId);
        if (hit && now - hit.at < ttlMs) {
          const active = hit.sessions.get(sid);
          if (active !== undefined) return { user: hit.user, sessionActive: active };
        }
      }
      const started = epoch;
      const row = await load(userId, sid);
      if (!row) return null;
      const { sessionActive, ...user } = row;
      if (ttlMs > 0 && started === epoch) {
        let entry = entries.get(userId);
        if (!entry || now - entry.at >= ttlMs || entry.user.tokenVersion !== user.tokenVersion) {
          entries.delete(userId);
          if (entries.size >= CACHE_MAX_USERS) entries.delete(entries.keys().next().value!);
          entry = { at: now, user, sessions: new Map() };
          entries.set(userId, entry);
        }
        entry.sessions.set(sid, sessionActive);
      }
      return { user, sessionActive };
    },
    invalidate(userId: string) {
      epoch++;
      entries.delete(userId);
    },
    clear() {
      epoch++;
      entries.clear();
    },
    get size() {
      return entries.size;
    },
  };
  return api;
}

/**
 * The one place for authentication and authorization. A valid signature is not enough: every request also needs
 * the user's (role, disabled, token_version) and its session's liveness, read in one indexed select, so disabling,
 * deleting, demoting, a password change or a logout take effect on the next request. That state may be reused for
 * AUTH_CACHE_TTL_MS (default 1 s); every change invalidates it at once on every instance (event bus).
 */
export default fp(
  async function authPlugin(app: FastifyInstance) {
    const { jwtSecret, accessTtlSeconds, cacheTtlMs } = app.config.auth;
    await app.register(jwt, {
      secret: jwtSecret,
      sign: { algorithm: 'HS256', expiresIn: accessTtlSeconds },
      // Explicit allow-list: `alg: none`, HS384/512 and asymmetric algorithms are all refused.
      verify: { algorithms: ['HS256'] },
    });

    // The hot path verifies through its own fast-jwt verifier (the library behind @fastify/jwt, same key and algorithm
    // allow-list) behind a cache of verified tokens (see createVerifiedTokenCache). Session/user state is still checked
    // below on every request.
    const verifyJwt = createVerifiedTokenCache(createVerifier({ key: jwtSecret, algorithms: ['HS256'] }), JWT_CACHE_SIZE);

    const repo = createAuthRepository(app.database.db);
    const cache = createStateCache(cacheTtlMs, (userId, sid) => repo.sessionState(userId, sid));
    const passwords = createPasswordHasher(app.config.auth.argon2, {
      concurrency: app.config.auth.hashConcurrency,
      queueMax: app.config.auth.hashQueueMax,
    });
    app.decorate('passwords', passwords);
    // A change made on any instance reaches every instance's cache through the event bus (Redis pub/sub when
    // REDIS_URL is set), so "takes effect on the next request" holds across instances too, not only after the TTL.
    const INVALIDATE_TOPIC = 'auth:invalidate';
    app.eventBus.subscribe(INVALIDATE_TOPIC, (event) => {
      if (typeof event.userId === 'string') cache.invalidate(event.userId);
    });
    const invalidate = (userId: string) => {
      cache.invalidate(userId);
      if (cacheTtlMs > 0) {
        void app.eventBus
          .publish(INVALIDATE_TOPIC, { type: 'auth.invalidate', userId })
          .catch((err: Error) => app.log.warn({ err: err.message }, 'could not broadcast an auth state change'));
      }
    };
    app.decorate('authStateCache', { invalidate, clear: cache.clear, get size() { return cache.size; } } satisfies AuthStateCache);
    app.decorateRequest('authUser', null);
    app.diagnostics.register('auth', () => ({ passwordHashing: passwords.stats(), cachedUsers: cache.size, cacheTtlMs }));

    // Verified payloads are cached (frozen) objects: the claim shape check is done once per cached token.
    const checkedClaims = new WeakSet<object>();
    /** Signature and claims (HS256, exp/nbf, claim shape); throws the 401 problems. */
    function verifyClaims(token: string): AccessClaims {
      let verified: unknown;
      try {
        verified = verifyJwt(token);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'FAST_JWT_EXPIRED') throw unauthorized('Access token expired', 'TOKEN_EXPIRED');
        throw unauthorized('Access token is invalid', 'INVALID_TOKEN');
      }
      if (!checkedClaims.has(verified as object)) {
        if (!isClaims(verified)) throw unauthorized('Access token is invalid', 'INVALID_TOKEN');
        checkedClaims.add(verified);
      }
      return verified as AccessClaims;
    }
    /** The user's and session's current state must still accept the token. */
    const stateAccepts = (payload: AccessClaims, state: { user: AuthUser; sessionActive: boolean } | null): state is { user: AuthUser; sessionActive: boolean } =>
      !!state && !state.user.disabled && state.user.tokenVersion === payload.ver && state.sessionActive;
    const sessionRevoked = () => unauthorized('Session is no longer valid; log in again', 'SESSION_REVOKED');

    async function verifyAccessToken(token: string) {
      const payload = verifyClaims(token);
      const state = await cache.get(payload.sub, payload.sid);
      if (!stateAccepts(payload, state)) throw sessionRevoked();
      const user = state.user;
      const exp = (payload as { exp?: unknown }).exp;
      const claims = { sub: payload.sub, sid: payload.sid, ver: payload.ver, role: user.role };
      return { claims: typeof exp === 'number' ? { ...claims, exp } : claims, user };
    }
    app.decorate('verifyAccessToken', verifyAccessToken);

    /** Sets request.user (with the current role: a demotion takes effect now) and request.authUser, or gives the 401. */
    function accept(request: FastifyRequest, payload: AccessClaims, state: { user: AuthUser; sessionActive: boolean } | null) {
      if (!stateAccepts(payload, state)) return sessionRevoked();
      request.user = { sub: payload.sub, sid: payload.sid, ver: payload.ver, role: state.user.role };
      request.authUser = state.user;
      return undefined;
    }

    // Callback-style: with the user's state in the cache (the common case) a request is not deferred at all.
    app.decorate('authenticate', function authenticate(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
      const header = request.headers.authorization;
      if (!header || header.length < 8 || !/^bearer /i.test(header)) return done(unauthorized('Bearer token required', 'UNAUTHORIZED'));
      let payload: AccessClaims;
      try {
        payload = verifyClaims(header.slice(7).trim());
      } catch (err) {
        return done(err as Error);
      }
      const cached = cache.peek(payload.sub, payload.sid);
      if (cached !== undefined) return done(accept(request, payload, cached));
      cache.get(payload.sub, payload.sid).then(
        (state) => done(accept(request, payload, state)),
        (err: Error) => done(err),
      );
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
  { name: 'auth', dependencies: ['event-bus', 'db', 'diagnostics'] },
);

/**
 * Ownership check for per-user resources: another user's resource answers 404 exactly like a missing one (no
 * existence oracle). Admins are not exempt here; admin routes read through their own scope.
 */
export function assertOwner<T extends { userId: string }>(request: FastifyRequest, resource: T | null | undefined, what: string, id?: string): T {
  if (!resource || !request.user || resource.userId !== request.user.sub) throw notFound(what, id);
  return resource;
}
