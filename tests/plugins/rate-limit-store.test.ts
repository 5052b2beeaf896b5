import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { FRESH_MS, SharedRedisStore } from '../../src/plugins/rate-limit-store.js';
import { build, createUser, injectAs } from '../helper.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `rl-test-${randomBytes(4).toString('hex')}:`;

/** A Redis connection for this test (skips the test when Redis is unreachable); its test keys are deleted after. */
async function connect(t: TestContext, options: RedisOptions = {}): Promise<Redis | null> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null, enableAutoPipelining: true, ...options });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch {
    redis.disconnect();
    t.skip(`Redis is unreachable at ${REDIS_URL}`);
    return null;
  }
  t.after(async () => {
    if (redis.status === 'ready') {
      const keys = await redis.keys(`${PREFIX}*`);
      if (keys.length) await redis.del(...keys);
    }
    redis.disconnect();
  });
  return redis;
}

interface Answer {
  current: number;
  ttl: number;
  /** The callback ran before `incr` returned (answered without waiting for Redis). */
  immediate: boolean;
}

function incr(store: SharedRedisStore, key: string, max: number, timeWindow = 60_000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let returned = false;
    store.incr(
      key,
      (err, res) => (err ? reject(err) : resolve({ current: res!.current, ttl: res!.ttl, immediate: !returned })),
      timeWindow,
      max,
    );
    returned = true;
  });
}

/** Sends the stores' queued increments now and resolves once Redis has answered them (replies come back in order). */
const drain = async (redis: Redis, ...stores: SharedRedisStore[]) => {
  for (const store of stores) store.flush();
  await redis.ping();
};

test('one instance: exact counts and decisions; far from the limit it answers without waiting, from half the limit it waits', async (t) => {
  const redis = await connect(t);
  if (!redis) return;
  const store = new SharedRedisStore({ redis, prefix: PREFIX, fast: true });
  const key = `user:${randomBytes(4).toString('hex')}`;
  const max = 10;
  const answers: Answer[] = [];
  for (let i = 0; i < 13; i++) {
    answers.push(await incr(store, key, max));
    await drain(redis, store);
  }
  assert.deepEqual(answers.map((a) => a.current), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], 'the count of every request, exceeded ones included');
  // The first has no knowledge yet; 2..5 keep the count at or below max/2; from 6 on, every request waits.
  assert.deepEqual(answers.map((a) => a.immediate), [false, true, true, true, true, false, false, false, false, false, false, false, false]);
  for (const a of answers) assert.ok(a.ttl > 0 && a.ttl <= 60_000, `ttl ${a.ttl}`);
  assert.equal(Number(await redis.get(PREFIX + key)), 13, 'every request is counted in Redis');

  // Requests in flight together (no reply in between) are counted locally too.
  const burstKey = `user:${randomBytes(4).toString('hex')}`;
  await incr(store, burstKey, 100);
  await drain(redis, store);
  const burst = await Promise.all(Array.from({ length: 60 }, () => incr(store, burstKey, 100)));
  assert.deepEqual(burst.map((a) => a.current), Array.from({ length: 60 }, (_, i) => i + 2));
  assert.ok(burst.slice(0, 49).every((a) => a.immediate), 'up to half the limit');
  assert.ok(burst.slice(49).every((a) => !a.immediate), 'past half the limit every request waits for Redis');
  await drain(redis, store);
  assert.equal(Number(await redis.get(PREFIX + burstKey)), 61);
});

test('increments of unwaited requests go out together, one INCRBY per key', async (t) => {
  const redis = await connect(t);
  if (!redis) return;
  const store = new SharedRedisStore({ redis, prefix: PREFIX, fast: true });
  const key = `user:${randomBytes(4).toString('hex')}`;
  await incr(store, key, 1000);
  await drain(redis, store);
  const answers = await Promise.all(Array.from({ length: 20 }, () => incr(store, key, 1000)));
  assert.ok(answers.every((a) => a.immediate));
  // Same connection, so this GET is answered before the queued increments are even sent.
  assert.equal(await redis.get(PREFIX + key), '1');
  await drain(redis, store);
  assert.equal(await redis.get(PREFIX + key), '21');
  const ttl = await redis.pttl(PREFIX + key);
  assert.ok(ttl > 0 && ttl <= 60_000, 'the window started by the first request keeps its TTL');
});

test('two instances share one limit: past half of it every decision is Redis\'s own', async (t) => {
  const r1 = await connect(t);
  const r2 = await connect(t);
  if (!r1 || !r2) return;
  const a = new SharedRedisStore({ redis: r1, prefix: PREFIX, fast: true });
  const b = new SharedRedisStore({ redis: r2, prefix: PREFIX, fast: true });
  const key = `user:${randomBytes(4).toString('hex')}`;
  const max = 6;
  const seen: Array<{ on: string; current: number; immediate: boolean }> = [];
  for (let i = 0; i < 10; i++) {
    const [name, store] = i % 2 === 0 ? ['a', a] : ['b', b];
    const res = await incr(store as SharedRedisStore, key, max);
    seen.push({ on: name as string, current: res.current, immediate: res.immediate });
    await Promise.all([drain(r1, a), drain(r2, b)]);
  }
  // Exceeded (> max) exactly from the 7th request on, whichever instance answers.
  const exceeded = seen.map((s) => s.current > max);
  assert.deepEqual(exceeded, [false, false, false, false, false, false, true, true, true, true], JSON.stringify(seen));
  for (const s of seen.filter((x) => x.immediate)) assert.ok(s.current * 2 <= max, `answered without waiting only below half: ${JSON.stringify(s)}`);
  assert.equal(Number(await r1.get(PREFIX + key)), 10);
});

test('stale knowledge, an ended window or a Redis error: the next request waits for Redis', async (t) => {
  const redis = await connect(t);
  if (!redis) return;
  let now = Date.now();
  const store = new SharedRedisStore({ redis, prefix: PREFIX, fast: true, now: () => now });
  const key = `user:${randomBytes(4).toString('hex')}`;
  await incr(store, key, 100);
  await drain(redis, store);
  assert.equal((await incr(store, key, 100)).immediate, true);
  await drain(redis, store);
  now += FRESH_MS;
  assert.equal((await incr(store, key, 100)).immediate, false, 'knowledge older than FRESH_MS');
  await drain(redis, store);
  assert.equal((await incr(store, key, 100)).immediate, true);
  await drain(redis, store);

  // A short window: once it has ended, the next request waits and starts the new window in Redis.
  const shortKey = `user:${randomBytes(4).toString('hex')}`;
  await incr(store, shortKey, 100, 1000);
  await drain(redis, store);
  now += 1000;
  await new Promise((r) => setTimeout(r, 1100)); // Redis expires the key in its own time
  const fresh = await incr(store, shortKey, 100, 1000);
  assert.deepEqual([fresh.immediate, fresh.current], [false, 1]);

  // A failing Redis: the unwaited INCR fails in the background, and the next request waits and gets the error.
  const failing = await connect(t, { enableOfflineQueue: false });
  if (!failing) return;
  const s2 = new SharedRedisStore({ redis: failing, prefix: PREFIX, fast: true, now: () => now });
  const k2 = `user:${randomBytes(4).toString('hex')}`;
  await incr(s2, k2, 100);
  await drain(failing, s2);
  failing.disconnect();
  assert.equal((await incr(s2, k2, 100)).immediate, true, 'still fresh: answered, its INCR fails');
  s2.flush();
  for (let i = 0; i < 100 && s2.size > 0; i++) await new Promise((r) => setImmediate(r));
  assert.equal(s2.size, 0, 'the failed INCRBY dropped what the store knew');
  await assert.rejects(incr(s2, k2, 100), 'the failure dropped what the store knew: this request waits and fails');
});

test('route policies (child stores) always wait for Redis and keep @fastify/rate-limit key names', async (t) => {
  const redis = await connect(t);
  if (!redis) return;
  const store = new SharedRedisStore({ redis, prefix: PREFIX, fast: true });
  const child = store.child({ routeInfo: { method: 'POST', url: '/auth/login' } });
  const key = `auth-ip:${randomBytes(4).toString('hex')}`;
  const answers = [];
  for (let i = 0; i < 4; i++) {
    answers.push(await incr(child, key, 100));
    await drain(redis, store);
  }
  assert.deepEqual(answers.map((a) => [a.current, a.immediate]), [[1, false], [2, false], [3, false], [4, false]]);
  assert.equal(Number(await redis.get(`${PREFIX}POST/auth/login-${key}`)), 4);
});

test('app: the per-user limit is shared by two instances through Redis (429 problem with headers)', async (t) => {
  const probe = await connect(t);
  if (!probe) return;
  const env = { MAX_EVENT_LOOP_DELAY_MS: '0', REDIS_URL, RATE_LIMIT_MAX: '4', AUTH_RATE_LIMIT_MAX: '100' };
  const a = await build(t, { env });
  const b = await build(t, { env, keepData: true });
  const user = await createUser(a);
  const statuses = [];
  let last;
  for (const app of [a, b, a, b, a, b]) {
    last = await injectAs(app, user.token, { url: '/auth/me' });
    statuses.push(last.statusCode);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
  assert.equal(last!.headers['content-type'], 'application/problem+json; charset=utf-8');
  assert.equal(last!.headers['ratelimit-limit'], '4');
  assert.equal(last!.headers['ratelimit-remaining'], '0');
  assert.ok(Number(last!.headers['retry-after']) >= 1);
  // The key may carry a deployment prefix (REDIS_PREFIX) before `rl:`.
  const keys = await probe.keys(`*rl:user:${user.id}`);
  assert.equal(keys.length, 1, keys.join(', '));
  assert.equal(Number(await probe.get(keys[0])), 6);
  await probe.del(...keys);
});
