import fp from 'fastify-plugin';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import rateLimit, { type RateLimitOptions } from '@fastify/rate-limit';
import { Redis } from 'ioredis';
import { tooManyRequests } from '../errors.js';
import { SharedRedisStore } from './rate-limit-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Named per-route rate-limit policies (`config: { rateLimit: app.rateLimitPolicies.auth }`). */
    rateLimitPolicies: { auth: RateLimitOptions; notFound: RateLimitOptions };
  }
}

/** Authenticated calls are limited per user, anonymous ones per IP. Runs as a preHandler, after authentication. */
export const rateLimitKey = (request: FastifyRequest) => {
  const user = (request as FastifyRequest & { user?: { sub?: string } }).user;
  return user?.sub ? `user:${user.sub}` : `ip:${request.ip}`;
};

/** The store interface of @fastify/rate-limit (LocalStore, RedisStore, SharedRedisStore). */
interface CounterStore {
  incr(key: string, cb: (err: Error | null, res?: { current: number; ttl: number }) => void, timeWindow: number, max: number): void;
  child(routeOptions: unknown): CounterStore;
}

// @fastify/rate-limit's in-memory store (LRU of 5000 keys), the one it uses itself without Redis.
const LocalStore = createRequire(import.meta.url)('@fastify/rate-limit/store/LocalStore.js') as new (
  continueExceeding: boolean,
  exponentialBackoff: boolean,
  cache?: number,
) => CounterStore;

/** The store class @fastify/rate-limit instantiates for the route policies (`store.child(...)`: always exact). */
function policyStore(redis: Redis, prefix: string): RateLimitOptions['store'] {
  return class PolicySharedStore extends SharedRedisStore {
    constructor(params: RateLimitOptions) {
      super({ redis, prefix, fast: false, continueExceeding: params.continueExceeding, exponentialBackoff: params.exponentialBackoff });
    }
  } as unknown as RateLimitOptions['store'];
}

const rateLimitError = (max: number, ttl: number) => {
  const retryAfter = Math.max(1, Math.ceil(ttl / 1000));
  return tooManyRequests(`Rate limit of ${max} requests exceeded; retry in ${retryAfter} s`, retryAfter);
};

/**
 * The global limit (per user, else per IP) as a callback-style preHandler: what @fastify/rate-limit's global hook
 * does for our options (same store and key, same RateLimit-Limit/-Remaining/-Reset headers, on a 429 also
 * Retry-After and the same problem), without its two async functions, awaits and a promise per request; with the
 * in-memory store a request is not deferred at all.
 */
export function globalRateLimitHook(store: CounterStore, max: number, timeWindow: number): preHandlerHookHandler {
  return function globalRateLimit(request, reply, done) {
    store.incr(
      rateLimitKey(request),
      (err, res) => {
        if (err) return done(err);
        const { current, ttl } = res!;
        const reset = Math.ceil(ttl / 1000);
        reply.header('ratelimit-limit', max);
        if (current <= max) {
          reply.header('ratelimit-remaining', max - current);
          reply.header('ratelimit-reset', reset);
          return done();
        }
        reply.header('ratelimit-remaining', 0);
        reply.header('ratelimit-reset', reset);
        reply.header('retry-after', reset);
        done(rateLimitError(max, ttl));
      },
      timeWindow,
      max,
    );
  };
}

/**
 * Rate limits with counters in Redis when REDIS_URL is set (several API instances share one limit), in memory
 * otherwise. Every 429 is a problem+json with Retry-After and RateLimit headers. Health probes and /metrics opt out.
 * The global limit is our own hook (globalRateLimitHook); named policies (`config.rateLimit`, `app.rateLimit`,
 * `app.createRateLimit`) are @fastify/rate-limit's.
 */
export default fp(
  async function rateLimitPlugin(app: FastifyInstance) {
    const cfg = app.config.rateLimit;
    let redis: Redis | undefined;
    let globalStore: CounterStore;
    if (app.config.redisUrl) {
      // Auto-pipelining: the counter updates of all requests handled in one event-loop turn go out in one socket write
      // (one syscall instead of one per request; same commands, same order, same per-command results and errors).
      redis = new Redis(app.config.redisUrl, {
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        enableOfflineQueue: true,
        lazyConnect: false,
        enableAutoPipelining: true,
      });
      redis.on('error', (err) => app.log.warn({ err: err.message }, 'rate-limit redis error'));
      // The global limit answers requests far from it without waiting for Redis (see rate-limit-store.ts for the
      // exact rule and the cross-instance bound); same keys and counters as @fastify/rate-limit's RedisStore.
      const shared = new SharedRedisStore({ redis, prefix: `${app.config.redisPrefix}rl:`, fast: true });
      globalStore = shared;
      app.addHook('onClose', async () => {
        shared.flush(); // increments not sent yet go out before QUIT
        await redis?.quit().catch(() => redis?.disconnect());
      });
      app.readiness.register('redis', async () => {
        await redis!.ping();
        return { ok: true };
      });
    } else {
      globalStore = new LocalStore(false, false);
    }

    await app.register(rateLimit, {
      // Only the named policies: the global limit is the hook added below.
      global: false,
      hook: 'preHandler',
      max: cfg.max,
      timeWindow: cfg.windowMs,
      keyGenerator: rateLimitKey,
      // Redis: policies always wait for Redis (keys named like @fastify/rate-limit's RedisStore children).
      store: redis ? policyStore(redis, `${app.config.redisPrefix}rl:`) : undefined,
      skipOnError: false,
      enableDraftSpec: true,
      errorResponseBuilder: (_request, context) => rateLimitError(context.max, context.ttl),
    });

    // Like @fastify/rate-limit's `global: true`: every route registered from here on without a `config.rateLimit` of
    // its own (a policy object, or false to opt out) gets the global limit, last among its route preHandlers.
    const limiter = globalRateLimitHook(globalStore, cfg.max, cfg.windowMs);
    app.addHook('onRoute', (routeOptions) => {
      const config = routeOptions.config as { rateLimit?: unknown } | undefined;
      if (config?.rateLimit != null) return;
      // A new array: the route's own may be shared (with its automatic HEAD route, or by several routes).
      const current = routeOptions.preHandler;
      if (Array.isArray(current)) routeOptions.preHandler = [...current, limiter];
      else if (typeof current === 'function') routeOptions.preHandler = [current, limiter];
      else routeOptions.preHandler = [limiter];
    });

    app.decorate('rateLimitPolicies', {
      auth: { max: cfg.authMax, timeWindow: cfg.authWindowMs, keyGenerator: (r: FastifyRequest) => `auth-ip:${r.ip}` },
      notFound: { max: cfg.notFoundMax, timeWindow: cfg.windowMs },
    });
  },
  { name: 'rate-limit', dependencies: ['readiness'] },
);
