import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adminEnv, build, createUser, injectAs, loginAdmin, redisUp } from '../../helper.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';


test('with a per-process auth cache, disabling a user on one instance takes effect on the next request on another', async (t) => {
  if (!(await redisUp())) return t.skip(`Redis unreachable at ${REDIS_URL}`);
  // A long TTL, so only the broadcast invalidation (not expiry) can explain the refusal.
  const env = { ...adminEnv, REDIS_URL, AUTH_CACHE_TTL_MS: '5000' };
  const one = await build(t, { env });
  const two = await build(t, { env, keepData: true });
  const user = await createUser(one);
  const admin = await loginAdmin(one);

  assert.equal((await injectAs(two, user.token, { url: '/auth/me' })).statusCode, 200, 'instance two caches the user state');
  const disabled = await injectAs(one, admin.token, { method: 'PATCH', url: `/admin/users/${user.id}`, payload: { disabled: true } });
  assert.equal(disabled.statusCode, 200);

  // Pub/sub delivery is asynchronous (milliseconds): the next request after it has arrived is refused.
  let status = 200;
  for (let i = 0; i < 20 && status === 200; i++) {
    await new Promise((r) => setTimeout(r, 10));
    status = (await injectAs(two, user.token, { url: '/auth/me' })).statusCode;
  }
  assert.equal(status, 401);
});
