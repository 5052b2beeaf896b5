import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { Redis } from 'ioredis';
import { build } from '../../helper.js';
import { PASSWORD, assertProblem } from './util.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
// Exact status sequences are asserted: load shedding (503 when the event loop lags on a busy machine) is switched off.
const NO_SHEDDING = { MAX_EVENT_LOOP_DELAY_MS: '0' };
const randomIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
const loginAs = (email: string, remoteAddress: string) => ({
  method: 'POST' as const,
  url: '/auth/login',
  remoteAddress,
  payload: { email, password: 'wrong password 123' },
});

function assertLimited(res: Parameters<typeof assertProblem>[0] & { headers: Record<string, unknown> }) {
  const body = assertProblem(res, 429, 'RATE_LIMITED');
  const retryAfter = Number(res.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${res.headers['retry-after']}`);
  assert.equal(res.headers['ratelimit-limit'], '3');
  assert.equal(res.headers['ratelimit-remaining'], '0');
  assert.ok(Number(res.headers['ratelimit-reset']) >= 1);
  return body;
}

test('login is limited per IP (any emails) and per account (any IPs); 429 is a problem with Retry-After', async (t) => {
  const app = await build(t, { env: { ...NO_SHEDDING, AUTH_RATE_LIMIT_MAX: '3', RATE_LIMIT_MAX: '1000' } });

  // Per IP: three different emails from one address, the fourth attempt is refused.
  const ip = randomIp();
  const codes = [];
  for (let i = 0; i < 3; i++) codes.push((await app.inject(loginAs(`u${i}@example.com`, ip))).statusCode);
  assert.deepEqual(codes, [401, 401, 401]);
  const limited = await app.inject(loginAs('u9@example.com', ip));
  assertLimited(limited);
  assert.equal(limited.headers['x-request-id'] !== undefined, true);

  // Per account: one email from four addresses; the fourth is refused, whatever the case/spacing of the email.
  const emails = ['victim@example.com', 'VICTIM@example.com', ' victim@example.com', 'Victim@Example.com'];
  const statuses = [];
  for (const e of emails) statuses.push(await app.inject(loginAs(e, randomIp())));
  assert.deepEqual(statuses.slice(0, 3).map((r) => r.statusCode), [401, 401, 401]);
  const body = assertLimited(statuses[3]);
  assert.match(body.detail, /this account/);
  // Register counts against the same account budget.
  assertLimited(await app.inject({ method: 'POST', url: '/auth/register', remoteAddress: randomIp(), payload: { email: 'victim@example.com', password: PASSWORD } }));

  // Another account from a fresh address is unaffected.
  assert.equal((await app.inject(loginAs('someone-else@example.com', randomIp()))).statusCode, 401);
});

test('refresh is limited per IP; health probes are never limited', async (t) => {
  const app = await build(t, { env: { ...NO_SHEDDING, AUTH_RATE_LIMIT_MAX: '3', RATE_LIMIT_MAX: '2' } });
  const ip = randomIp();
  const codes = [];
  for (let i = 0; i < 4; i++) {
    codes.push((await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: ip, payload: { refreshToken: `nope-${i}` } })).statusCode);
  }
  assert.deepEqual(codes, [401, 401, 401, 429]);
  for (let i = 0; i < 20; i++) assert.equal((await app.inject({ url: '/health/live', remoteAddress: ip })).statusCode, 200);
});

test('limits are shared by two app instances through Redis', async (t) => {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
  } catch {
    probe.disconnect();
    t.skip(`Redis is unreachable at ${REDIS_URL}: shared rate limits not tested`);
    return;
  }
  const ip = randomIp();
  const tag = randomBytes(6).toString('hex');
  t.after(async () => {
    // Only our keys: the unique address and the unique account tag.
    for (const pattern of [`*rl:*auth-ip:${ip}`, `*rl:*${tag}*`]) {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await probe.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      if (keys.length) await probe.del(...keys);
    }
    probe.disconnect();
  });

  const env = { ...NO_SHEDDING, REDIS_URL, AUTH_RATE_LIMIT_MAX: '3', RATE_LIMIT_MAX: '1000' };
  const a = await build(t, { env });
  const b = await build(t, { env, keepData: true });

  // Per IP: 2 attempts on A, 1 on B, the 4th (on either) is refused.
  assert.equal((await a.inject(loginAs(`a1-${tag}@example.com`, ip))).statusCode, 401);
  assert.equal((await a.inject(loginAs(`a2-${tag}@example.com`, ip))).statusCode, 401);
  assert.equal((await b.inject(loginAs(`b1-${tag}@example.com`, ip))).statusCode, 401);
  assertLimited(await b.inject(loginAs(`b2-${tag}@example.com`, ip)));
  assertLimited(await a.inject(loginAs(`a3-${tag}@example.com`, ip)));

  // Per account, from different addresses, alternating instances.
  const account = `acct-${tag}@example.com`;
  const results = [];
  for (const app of [a, b, a, b]) results.push(await app.inject(loginAs(account, randomIp())));
  assert.deepEqual(results.slice(0, 3).map((r) => r.statusCode), [401, 401, 401]);
  assertLimited(results[3]);

  const keys = await probe.keys(`*rl:*${tag}*`);
  assert.ok(keys.length >= 1, 'the counters live in Redis');
});
