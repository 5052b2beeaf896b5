import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eq } from 'drizzle-orm';
import { build } from '../../helper.js';
import { refreshTokens, users } from '../../../src/db/schema/users.js';
import { PASSWORD, assertProblem, auditRows, bearer, login, register, registerAndLogin } from './util.js';

test('register → login → me → refresh → reusing the old refresh token revokes the whole family', async (t) => {
  const app = await build(t);
  const created = await register(app, '  Alice@Example.COM ');
  assert.equal(created.email, 'alice@example.com');
  assert.equal(created.role, 'user');
  assert.ok(!('passwordHash' in created));

  const s = await login(app, 'ALICE@example.com');
  const loginRes = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'alice@example.com', password: PASSWORD } });
  const loginBody = loginRes.json();
  assert.equal(loginBody.expiresIn, 900);
  assert.equal(loginBody.tokenType, 'Bearer');
  assert.equal(loginBody.user.email, 'alice@example.com');
  assert.match(loginBody.refreshToken, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  const claims = app.jwt.decode<Record<string, unknown>>(s.accessToken)!;
  assert.equal(claims.sub, created.id);
  assert.equal(claims.role, 'user');
  assert.equal(claims.ver, 0);
  assert.match(String(claims.sid), /^[0-9a-f-]{36}$/);

  const me = await app.inject({ url: '/auth/me', headers: bearer(s.accessToken) });
  assert.equal(me.statusCode, 200);
  assert.equal(me.json().id, created.id);

  // Only the sha256 of a refresh token is stored.
  const stored = await app.database.db.select().from(refreshTokens);
  assert.ok(stored.every((r) => r.tokenHash.length === 64 && r.tokenHash !== s.refreshToken));

  const r1 = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: s.refreshToken } });
  assert.equal(r1.statusCode, 200, r1.body);
  const rotated = r1.json();
  assert.notEqual(rotated.refreshToken, s.refreshToken);
  assert.equal(app.jwt.decode<Record<string, unknown>>(rotated.accessToken)!.sid, claims.sid, 'same session');
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(rotated.accessToken) })).statusCode, 200);

  // The old token again: reuse. The family is revoked: the new refresh token and the access tokens stop working.
  const reuse = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: s.refreshToken } });
  assertProblem(reuse, 401, 'INVALID_REFRESH_TOKEN');
  assertProblem(await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: rotated.refreshToken } }), 401);
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(rotated.accessToken) }), 401, 'SESSION_REVOKED');

  const reuseAudit = await auditRows(app, 'auth.refresh.reuse_detected');
  assert.equal(reuseAudit.length >= 1, true);
  assert.equal(reuseAudit[0].actorId, created.id);
  assert.equal(reuseAudit[0].targetId, claims.sid);
  assert.equal(reuseAudit[0].outcome, 'failure');
  assert.equal(reuseAudit[0].requestId, reuse.headers['x-request-id']);

  // Another session of the same user (the second login) is unaffected.
  const other = app.jwt.decode<Record<string, unknown>>(loginBody.accessToken)!;
  assert.notEqual(other.sid, claims.sid);
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(loginBody.accessToken) })).statusCode, 200);

  // An unknown refresh token is just invalid (no family to revoke).
  assertProblem(await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: 'x'.repeat(43) } }), 401, 'INVALID_REFRESH_TOKEN');
});

test('register: password length 12-256, valid email, duplicates 409 (also under a race), always a plain user', async (t) => {
  const app = await build(t);
  const short = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'a@example.com', password: 'short' } });
  assert.deepEqual(assertProblem(short, 400, 'VALIDATION_FAILED').errors.map((e: { path: string }) => e.path), ['/body/password']);
  assertProblem(await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'a@example.com', password: 'x'.repeat(257) } }), 400);
  assertProblem(await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'not-an-email', password: PASSWORD } }), 400);
  // Extra members are not a way to pick a role.
  const sneaky = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'b@example.com', password: PASSWORD, role: 'admin' } });
  assert.equal(sneaky.statusCode, 201);
  assert.equal(sneaky.json().role, 'user');

  await register(app, 'dup@example.com');
  assertProblem(await app.inject({ method: 'POST', url: '/auth/register', payload: { email: ' DUP@example.com', password: PASSWORD } }), 409, 'EMAIL_TAKEN');

  const race = await Promise.all(
    Array.from({ length: 4 }, () => app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'race@example.com', password: PASSWORD } })),
  );
  assert.deepEqual(race.map((r) => r.statusCode).sort(), [201, 409, 409, 409]);
  assert.equal((await app.database.db.select().from(users).where(eq(users.email, 'race@example.com'))).length, 1);
  // Exactly one register audit row for the email that won the race.
  const audits = (await auditRows(app, 'auth.register')).filter((r) => r.details.email === 'race@example.com');
  assert.equal(audits.length, 1);
});

test('login: unknown email and wrong password answer alike; both run one argon2 verification; failures are recorded', async (t) => {
  const app = await build(t);
  const alice = await register(app, 'alice@example.com');
  const verify = t.mock.method(app.passwords, 'verify');
  const dummy = await app.passwords.dummyHash();

  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'alice@example.com', password: 'not the password!' } });
  const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'nobody@example.com', password: 'not the password!' } });
  const a = assertProblem(wrong, 401, 'INVALID_CREDENTIALS');
  const b = assertProblem(unknown, 401, 'INVALID_CREDENTIALS');
  assert.equal(a.detail, b.detail);
  assert.equal(a.title, b.title);

  // One verification each; the unknown email was verified against the dummy hash, not skipped.
  assert.equal(verify.mock.callCount(), 2);
  assert.notEqual(verify.mock.calls[0].arguments[0], dummy);
  assert.equal(verify.mock.calls[1].arguments[0], dummy);
  assert.equal(verify.mock.calls[1].arguments[1], 'not the password!');

  const [row] = await app.database.db.select().from(users).where(eq(users.id, alice.id));
  assert.equal(row.failedLogins, 1);
  const failures = (await auditRows(app, 'auth.login')).filter((r) => r.outcome === 'failure');
  assert.deepEqual(failures.map((f) => f.details.reason).sort(), ['unknown_email', 'wrong_password']);
  assert.ok(failures.every((f) => f.ip && f.requestId));

  // A good login resets the counter and is audited as a success.
  await login(app, 'alice@example.com');
  const [after] = await app.database.db.select().from(users).where(eq(users.id, alice.id));
  assert.equal(after.failedLogins, 0);
  assert.ok(after.lastLoginAt);
  assert.equal((await auditRows(app, 'auth.login')).filter((r) => r.outcome === 'success').length, 1);
});

test('logout ends this session at once (access and refresh token), other sessions live on', async (t) => {
  const app = await build(t);
  const s1 = await registerAndLogin(app, 'bob@example.com');
  const s2 = await login(app, 'bob@example.com');
  const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(s1.accessToken) });
  assert.equal(out.statusCode, 204);
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(s1.accessToken) }), 401, 'SESSION_REVOKED');
  assertProblem(await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: s1.refreshToken } }), 401);
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(s2.accessToken) })).statusCode, 200);
  assert.equal((await auditRows(app, 'auth.logout')).length, 1);
  assertProblem(await app.inject({ method: 'POST', url: '/auth/logout' }), 401);
});

test('password change: needs the current password, then every session of the user ends', async (t) => {
  const app = await build(t);
  const s1 = await registerAndLogin(app, 'carol@example.com');
  const s2 = await login(app, 'carol@example.com');
  const NEW = 'a brand new passphrase';

  const bad = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(s1.accessToken), payload: { currentPassword: 'wrong wrong wrong', newPassword: NEW } });
  assertProblem(bad, 400, 'CURRENT_PASSWORD_INCORRECT');
  assertProblem(await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(s1.accessToken), payload: { currentPassword: PASSWORD, newPassword: 'short' } }), 400, 'VALIDATION_FAILED');

  const ok = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(s1.accessToken), payload: { currentPassword: PASSWORD, newPassword: NEW } });
  assert.equal(ok.statusCode, 204, ok.body);

  for (const s of [s1, s2]) {
    assertProblem(await app.inject({ url: '/auth/me', headers: bearer(s.accessToken) }), 401, 'SESSION_REVOKED');
    assertProblem(await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: s.refreshToken } }), 401);
  }
  assertProblem(await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'carol@example.com', password: PASSWORD } }), 401);
  const fresh = await login(app, 'carol@example.com', NEW);
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(fresh.accessToken) })).statusCode, 200);
  const audits = await auditRows(app, 'auth.password.change');
  assert.deepEqual(audits.map((a) => a.outcome).sort(), ['failure', 'success']);
});

test('a login rehashes a password hashed with older argon2 parameters', async (t) => {
  const app = await build(t);
  const { createPasswordHasher } = await import('../../../src/modules/auth/passwords.js');
  const old = createPasswordHasher({ memoryCost: 2048, timeCost: 2, parallelism: 1 });
  const alice = await register(app, 'old@example.com');
  await app.database.db.update(users).set({ passwordHash: await old.hash(PASSWORD) }).where(eq(users.id, alice.id));
  await login(app, 'old@example.com');
  const [row] = await app.database.db.select().from(users).where(eq(users.id, alice.id));
  assert.match(row.passwordHash, /^\$argon2id\$v=19\$m=1024,p=1,t=1\$/);
  assert.equal(app.passwords.needsRehash(row.passwordHash), false);
});

test('disabled account: its valid token is refused at once, and login is refused', async (t) => {
  // The rows are changed behind the app's back (as another instance would): no per-process cache for this test.
  const app = await build(t, { env: { AUTH_CACHE_TTL_MS: '0' } });
  const s = await registerAndLogin(app, 'dave@example.com');
  await app.database.db.update(users).set({ disabled: true }).where(eq(users.id, s.id));
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(s.accessToken) }), 401, 'SESSION_REVOKED');
  assertProblem(await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: s.refreshToken } }), 401);
  assertProblem(await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'dave@example.com', password: PASSWORD } }), 403, 'ACCOUNT_DISABLED');
  // Deleted user: the token is refused too.
  const e = await registerAndLogin(app, 'erin@example.com');
  await app.database.db.delete(users).where(eq(users.id, e.id));
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(e.accessToken) }), 401, 'SESSION_REVOKED');
});

test('passwords and tokens never reach the logs', async (t) => {
  const app = await build(t, { env: { LOG_LEVEL: 'trace' } });
  const s = await registerAndLogin(app, 'frank@example.com');
  const r = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: s.refreshToken } });
  const rotated = r.json();
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: s.refreshToken } }); // reuse: logged as a warning
  await app.inject({ url: '/auth/me', headers: bearer(rotated.accessToken) });
  await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(s.accessToken), payload: { currentPassword: PASSWORD, newPassword: 'another long secret' } });
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'frank@example.com', password: 'wrong but secret 123' } });
  const logs = app.rawLogs();
  assert.ok(app.logs.length > 5, 'the app logged the requests');
  assert.match(logs, /refresh token reuse detected/);
  for (const secret of [PASSWORD, 'another long secret', 'wrong but secret 123', s.refreshToken, rotated.refreshToken, s.accessToken, rotated.accessToken, s.accessToken.split('.')[2]]) {
    assert.equal(logs.includes(secret), false, `a secret leaked into the logs: ${secret.slice(0, 6)}...`);
  }
});

test('auth state cache: reused within its TTL, invalidated at once by changes made through this process', async (t) => {
  const app = await build(t, { env: { AUTH_CACHE_TTL_MS: '5000' } });
  const s = await registerAndLogin(app, 'cached@example.com');
  const s2 = await login(app, 'cached@example.com');
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(s.accessToken) })).statusCode, 200);
  assert.equal(app.authStateCache.size, 1);

  // A change behind the app's back (another instance) is seen only after the TTL: the documented trade-off.
  await app.database.db.update(users).set({ disabled: true }).where(eq(users.id, s.id));
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(s.accessToken) })).statusCode, 200);
  app.authStateCache.invalidate(s.id);
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(s.accessToken) }), 401, 'SESSION_REVOKED');
  await app.database.db.update(users).set({ disabled: false }).where(eq(users.id, s.id));
  app.authStateCache.clear();

  // Changes through this process take effect on the very next request despite the long TTL.
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(s.accessToken) })).statusCode, 200);
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(s2.accessToken) })).statusCode, 200);
  assert.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(s.accessToken) })).statusCode, 204);
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(s.accessToken) }), 401, 'SESSION_REVOKED');
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(s2.accessToken) })).statusCode, 200);
  const ok = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(s2.accessToken), payload: { currentPassword: PASSWORD, newPassword: 'cache test new password' } });
  assert.equal(ok.statusCode, 204);
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(s2.accessToken) }), 401, 'SESSION_REVOKED');
});
