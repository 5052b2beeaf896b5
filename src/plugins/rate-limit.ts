import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
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

/** The store class @fastify/rate-limit instantiates (`new Store(globalParams)`); `created` sees the instance. */
function sharedStore(redis: Redis, created: (store: SharedRedisStore) => void): RateLimitOptions['store'] {
  return class GlobalSharedStore extends SharedRedisStore {
    constructor(params: RateLimitOptions) {
      super({ redis, prefix: 'rl:', fast: true, continueExceeding: params.continueExceeding, exponentialBackoff: params.exponentialBackoff });
      created(this);
    }
  } as unknown as RateLimitOptions['store'];
}

/**
 * @fastify/rate-limit with counters in Redis when REDIS_URL is set (several API instances share one limit), in memory
 * otherwise. Every 429 is a problem+json with Retry-After and RateLimit headers. Health probes and /metrics opt out.
 */
export default fp(
  async function rateLimitPlugin(app: FastifyInstance) {
    const cfg = app.config.rateLimit;
    let redis: Redis | undefined;
    let store: SharedRedisStore | undefined;
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
      app.addHook('onClose', async () => {
        store?.flush(); // increments not sent yet go out before QUIT
        await redis?.quit().catch(() => redis?.disconnect());
      });
      app.readiness.register('redis', async () => {
        await redis!.ping();
        return { ok: true };
      });
    }

    await app.register(rateLimit, {
      global: true,
      hook: 'preHandler',
      max: cfg.max,
      timeWindow: cfg.windowMs,
      keyGenerator: rateLimitKey,
      // Redis: our store (same keys, commands and counters as the library's RedisStore) answers requests far from the
      // global limit without waiting for Redis; route policies (auth, account, not found) always wait. See
      // rate-limit-store.ts for the exact rule and the cross-instance bound.
      store: redis ? sharedStore(redis, (s) => (store = s)) : undefined,
      skipOnError: false,
      enableDraftSpec: true,
      errorResponseBuilder: (_request, context) => {
        const retryAfter = Math.max(1, Math.ceil(context.ttl / 1000));
        const err = tooManyRequests(`Rate limit of ${context.max} requests exceeded; retry in ${retryAfter} s`, retryAfter);
        return err;
      },
    });

    app.decorate('rateLimitPolicies', {
      auth: { max: cfg.authMax, timeWindow: cfg.authWindowMs, keyGenerator: (r: FastifyRequest) => `auth-ip:${r.ip}` },
      notFound: { max: cfg.notFoundMax, timeWindow: cfg.windowMs },
    });
  },
  { name: 'rate-limit', dependencies: ['readiness'] },
);
