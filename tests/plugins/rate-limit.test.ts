import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { Redis } from 'ioredis';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { build, createUser, injectAs, redisUp } from '../helper.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const randomIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;


// A route-level preHandler array shared by two routes (and by the automatic HEAD routes).
const seen: string[] = [];
const shared: preHandlerHookHandler[] = [
  (request, _reply, done) => {
    seen.push(request.method);
    done();
  },
];
const probes = (app: FastifyInstance) => {
  app.get('/probe', { preHandler: shared }, async () => ({ ok: true }));
  app.get('/probe2', { preHandler: shared }, async () => ({ ok: true }));
};

for (const backend of ['memory', 'redis'] as const) {
  test(`global limit (${backend}): per IP when anonymous, per user when authenticated; headers and 429 problem`, async (t) => {
    if (backend === 'redis' && !(await redisUp())) return t.skip(`Redis unreachable at ${REDIS_URL}`);
    const env = { MAX_EVENT_LOOP_DELAY_MS: '0', RATE_LIMIT_MAX: '3', AUTH_RATE_LIMIT_MAX: '100', REDIS_URL: backend === 'redis' ? REDIS_URL : undefined };
    const app = await build(t, { env, register: probes });

    const ip = randomIp();
    const responses = [];
    for (let i = 0; i < 4; i++) responses.push(await app.inject({ url: '/probe', remoteAddress: ip }));
    assert.deepEqual(responses.map((r) => r.statusCode), [200, 200, 200, 429]);
    assert.deepEqual(responses.slice(0, 3).map((r) => r.headers['ratelimit-remaining']), ['2', '1', '0']);
    for (const r of responses) {
      assert.equal(r.headers['ratelimit-limit'], '3');
      const reset = Number(r.headers['ratelimit-reset']);
      assert.ok(reset >= 1 && reset <= 60, `reset ${reset}`);
    }
    const limited = responses[3];
    assert.equal(limited.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(limited.headers['ratelimit-remaining'], '0');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    assert.equal(limited.json().code, 'RATE_LIMITED');
    assert.match(limited.json().detail, /Rate limit of 3 requests exceeded/);
    assert.ok(limited.headers['x-content-type-options'], 'security headers on a 429 too');
    // Another address has its own budget; the probes share it (one global limit per IP).
    const other = randomIp();
    assert.equal((await app.inject({ url: '/probe2', remoteAddress: other })).headers['ratelimit-remaining'], '2');

    // One count per request, HEAD included, whatever preHandler array the route shares.
    const third = randomIp();
    seen.length = 0;
    assert.equal((await app.inject({ method: 'HEAD', url: '/probe', remoteAddress: third })).headers['ratelimit-remaining'], '2');
    assert.equal((await app.inject({ url: '/probe2', remoteAddress: third })).headers['ratelimit-remaining'], '1');
    assert.deepEqual(seen, ['HEAD', 'GET'], 'the route preHandler runs once per request');

    // Authenticated: per user (the address does not matter), another user unaffected.
    const [u1, u2] = [await createUser(app), await createUser(app)];
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await injectAs(app, u1.token, { url: '/auth/me', remoteAddress: randomIp() })).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    assert.equal((await injectAs(app, u2.token, { url: '/auth/me', remoteAddress: ip })).statusCode, 200, 'user 2 from a limited address');

    // Exempt: health probes.
    for (let i = 0; i < 5; i++) assert.equal((await app.inject({ url: '/health/live', remoteAddress: ip })).statusCode, 200);

    if (backend === 'redis') {
      // Our keys only (any REDIS_PREFIX before `rl:`).
      const r = new Redis(REDIS_URL);
      for (const k of [`ip:${ip}`, `ip:${other}`, `ip:${third}`, `user:${u1.id}`, `user:${u2.id}`]) {
        const keys = await r.keys(`*rl:${k}`);
        if (keys.length) await r.del(...keys);
      }
      r.disconnect();
    }
  });
}
