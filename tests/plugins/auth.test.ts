import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSigner } from 'fast-jwt';
import { build } from '../helper.js';
import { adminSession, assertProblem, bearer, registerAndLogin } from '../modules/auth/util.js';

const SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789'; // testConfig's JWT_SECRET
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

test('forged, tampered, foreign-algorithm and expired tokens are all 401 problems', async (t) => {
  const app = await build(t);
  const s = await registerAndLogin(app, 'mallory@example.com');
  const [h, p, sig] = s.accessToken.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  assert.equal(JSON.parse(Buffer.from(h, 'base64url').toString()).alg, 'HS256');
  const now = Math.floor(Date.now() / 1000);

  const cases: Record<string, string> = {
    'alg none, no signature': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, role: 'admin' })}.`,
    'alg none, original signature kept': `${b64({ alg: 'none', typ: 'JWT' })}.${p}.${sig}`,
    'payload changed (role admin), signature kept': `${h}.${b64({ ...claims, role: 'admin' })}.${sig}`,
    'payload changed (other user), signature kept': `${h}.${b64({ ...claims, sub: '00000000-0000-4000-8000-000000000000' })}.${sig}`,
    'signature from another secret': createSigner({ key: 'another-secret-another-secret-another-secret', algorithm: 'HS256' })(claims),
    'HS512 with our own secret (not allowed)': createSigner({ key: SECRET, algorithm: 'HS512' })({ ...claims, exp: now + 600 }),
    'HS384 with our own secret (not allowed)': createSigner({ key: SECRET, algorithm: 'HS384' })({ ...claims, exp: now + 600 }),
    'expired (signed with our key)': createSigner({ key: SECRET, algorithm: 'HS256' })({ ...claims, iat: now - 7200, exp: now - 3600 }),
    'garbage': 'not.a.jwt',
    'signature truncated': s.accessToken.slice(0, -3),
  };
  for (const [name, token] of Object.entries(cases)) {
    const res = await app.inject({ url: '/auth/me', headers: bearer(token) });
    const body = assertProblem(res, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer', name);
    assert.ok(['INVALID_TOKEN', 'TOKEN_EXPIRED'].includes(body.code), `${name}: ${body.code}`);
  }
  assert.equal(
    (await app.inject({ url: '/auth/me', headers: bearer(cases['expired (signed with our key)']) })).json().code,
    'TOKEN_EXPIRED',
  );

  // Well signed but with claims we never issue: refused before any database lookup.
  const odd = createSigner({ key: SECRET, algorithm: 'HS256' })({ sub: 'not-a-uuid', role: 'user', ver: 0, sid: claims.sid, exp: now + 600 });
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(odd) }), 401, 'INVALID_TOKEN');
  // Well signed, right user, stale token_version: refused.
  const stale = createSigner({ key: SECRET, algorithm: 'HS256' })({ ...claims, ver: claims.ver + 1, exp: now + 600 });
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(stale) }), 401, 'SESSION_REVOKED');

  // No header, other schemes, empty bearer.
  for (const authorization of [undefined, 'Basic YTpi', 'Bearer', 'Bearer ', s.accessToken]) {
    const res = await app.inject({ url: '/auth/me', headers: authorization === undefined ? {} : { authorization } });
    assertProblem(res, 401);
  }
  // And the genuine token still works.
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(s.accessToken) })).statusCode, 200);
});

test('requireRole: anonymous 401, user 403, admin 200 on the whole /admin scope', async (t) => {
  const app = await build(t);
  const user = await registerAndLogin(app, 'user@example.com');
  const admin = await adminSession(app);
  for (const url of ['/admin/users', '/admin/dashboard', '/admin/audit', `/admin/users/${user.id}`]) {
    assertProblem(await app.inject({ url }), 401, 'UNAUTHORIZED');
    assertProblem(await app.inject({ url, headers: bearer(user.accessToken) }), 403, 'FORBIDDEN');
    assert.equal((await app.inject({ url, headers: bearer(admin.accessToken) })).statusCode, 200, url);
  }
  assertProblem(await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: bearer(user.accessToken), payload: { role: 'admin' } }), 403);
  assertProblem(await app.inject({ method: 'DELETE', url: `/admin/users/${admin.id}`, headers: bearer(user.accessToken) }), 403);
});

test('assertOwner: another user’s resource is indistinguishable from a missing one', async (t) => {
  const { assertOwner } = await import('../../src/plugins/auth.js');
  const app = await build(t, {
    register: (a) => {
      a.get('/probe/:owner', { onRequest: a.authenticate }, async (request) => {
        const owner = (request.params as { owner: string }).owner;
        const resource = owner === 'none' ? null : { userId: owner, name: 'thing' };
        return assertOwner(request, resource, 'Thing', 'x1');
      });
    },
  });
  const a = await registerAndLogin(app, 'a@example.com');
  const b = await registerAndLogin(app, 'b@example.com');
  assert.equal((await app.inject({ url: `/probe/${a.id}`, headers: bearer(a.accessToken) })).statusCode, 200);
  const theirs = assertProblem(await app.inject({ url: `/probe/${b.id}`, headers: bearer(a.accessToken) }), 404, 'NOT_FOUND');
  const missing = assertProblem(await app.inject({ url: '/probe/none', headers: bearer(a.accessToken) }), 404, 'NOT_FOUND');
  assert.equal(theirs.detail, missing.detail);
});

test('verified-token cache: a repeat skips verify until exp, failures are never cached, nbf and the bound hold', async () => {
  const { createVerifiedTokenCache } = await import('../../src/plugins/auth.js');
  const { createSigner, createVerifier } = await import('fast-jwt');
  const key = 'k'.repeat(48);
  let now = 1_700_000_000_000;
  let calls = 0;
  const verify = (token: string) => {
    calls++;
    return createVerifier({ key, algorithms: ['HS256'], clockTimestamp: now })(token);
  };
  const cached = createVerifiedTokenCache(verify, 2, () => now);
  const sign = createSigner({ key, algorithm: 'HS256', clockTimestamp: now });
  const token = sign({ sub: 'a', exp: Math.floor(now / 1000) + 60 });

  assert.equal((cached(token) as { sub: string }).sub, 'a');
  assert.equal((cached(token) as { sub: string }).sub, 'a');
  assert.equal(calls, 1, 'second call served from the cache');

  now += 61_000; // past exp: the cache no longer answers, verify does (and refuses)
  assert.throws(() => cached(token), (err: { code?: string }) => err.code === 'FAST_JWT_EXPIRED');
  assert.equal(calls, 2);

  const forged = `${token.slice(0, -2)}xx`;
  assert.throws(() => cached(forged));
  assert.throws(() => cached(forged));
  assert.equal(calls, 4, 'a failing token is verified (and refused) every time');

  const later = sign({ sub: 'b', nbf: Math.floor(now / 1000) + 10, exp: Math.floor(now / 1000) + 600 });
  assert.throws(() => cached(later), (err: { code?: string }) => err.code === 'FAST_JWT_INACTIVE');
  now += 11_000;
  assert.equal((cached(later) as { sub: string }).sub, 'b');
  calls = 0;
  cached(later);
  assert.equal(calls, 0);

  const noExp = createSigner({ key, algorithm: 'HS256', noTimestamp: true })({ sub: 'c' });
  cached(noExp);
  cached(noExp);
  assert.equal(calls, 2, 'a token without exp is never cached');

  // Bound: at most 2 entries; the oldest goes first.
  const t1 = sign({ sub: 'd', exp: Math.floor(now / 1000) + 600 });
  const t2 = sign({ sub: 'e', exp: Math.floor(now / 1000) + 600 });
  cached(t1);
  cached(t2);
  calls = 0;
  cached(t2);
  cached(t1);
  cached(later);
  assert.equal(calls, 1, 'only the evicted token is verified again');
});
