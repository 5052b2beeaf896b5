import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import argon2 from 'argon2';
import { build } from '../../helper.js';
import { createTestPgDatabase, usingPostgres } from '../../db.js';
import { createDatabase } from '../../../src/db/client.js';
import { refreshTokens, users } from '../../../src/db/schema/users.js';
import { PASSWORD, adminSession, assertProblem, auditRows, bearer, login, registerAndLogin } from '../auth/util.js';

const root = path.resolve(import.meta.dirname, '..', '..', '..');

test('users: list with pagination and email search, get, 404 for an unknown id', async (t) => {
  const app = await build(t);
  const admin = await adminSession(app);
  for (const name of ['ann', 'ben', 'cat', 'dan_x']) await registerAndLogin(app, `${name}@example.com`);
  const h = bearer(admin.accessToken);

  const page1 = (await app.inject({ url: '/admin/users?limit=2&offset=0', headers: h })).json();
  const page2 = (await app.inject({ url: '/admin/users?limit=2&offset=2', headers: h })).json();
  const page3 = (await app.inject({ url: '/admin/users?limit=2&offset=4', headers: h })).json();
  assert.equal(page1.total, 5);
  assert.deepEqual([page1.items.length, page2.items.length, page3.items.length], [2, 2, 1]);
  const ids = [...page1.items, ...page2.items, ...page3.items].map((u: { id: string }) => u.id);
  assert.equal(new Set(ids).size, 5, 'pages do not overlap');
  assert.ok(page1.items.every((u: Record<string, unknown>) => !('passwordHash' in u) && !('tokenVersion' in u)));

  const search = (await app.inject({ url: '/admin/users?email=BEN@', headers: h })).json();
  assert.deepEqual(search.items.map((u: { email: string }) => u.email), ['ben@example.com']);
  // LIKE wildcards in the search are literal.
  assert.deepEqual((await app.inject({ url: '/admin/users?email=_x', headers: h })).json().items.map((u: { email: string }) => u.email), ['dan_x@example.com']);
  assert.equal((await app.inject({ url: '/admin/users?email=%25', headers: h })).json().total, 0);

  const one = await app.inject({ url: `/admin/users/${ids[0]}`, headers: h });
  assert.equal(one.statusCode, 200);
  assert.equal(one.json().id, ids[0]);
  assertProblem(await app.inject({ url: '/admin/users/00000000-0000-4000-8000-000000000000', headers: h }), 404);
  assertProblem(await app.inject({ url: '/admin/users/not-a-uuid', headers: h }), 400);
  assertProblem(await app.inject({ url: '/admin/users?limit=1000', headers: h }), 400);
});

test('role change and disabling take effect on the next request and are audited', async (t) => {
  const app = await build(t);
  const admin = await adminSession(app);
  const user = await registerAndLogin(app, 'promote@example.com');
  const h = bearer(admin.accessToken);
  assertProblem(await app.inject({ url: '/admin/dashboard', headers: bearer(user.accessToken) }), 403);

  const promoted = await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: h, payload: { role: 'admin' } });
  assert.equal(promoted.statusCode, 200, promoted.body);
  assert.equal(promoted.json().role, 'admin');
  // The old token (role user) is refused outright; its refresh tokens are revoked; a new login carries the new role.
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(user.accessToken) }), 401, 'SESSION_REVOKED');
  assertProblem(await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: user.refreshToken } }), 401);
  const again = await login(app, 'promote@example.com');
  assert.equal((await app.inject({ url: '/admin/dashboard', headers: bearer(again.accessToken) })).statusCode, 200);

  // Demote back: effective on the very next request.
  await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: h, payload: { role: 'user' } });
  assertProblem(await app.inject({ url: '/admin/dashboard', headers: bearer(again.accessToken) }), 401);

  const relog = await login(app, 'promote@example.com');
  const disabled = await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: h, payload: { disabled: true } });
  assert.equal(disabled.json().disabled, true);
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(relog.accessToken) }), 401);
  assertProblem(await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'promote@example.com', password: PASSWORD } }), 403, 'ACCOUNT_DISABLED');

  // A no-op patch changes nothing (no version bump, no audit row); an empty one is a 400.
  const before = (await auditRows(app, 'admin.user.update')).length;
  assert.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: h, payload: { disabled: true } })).statusCode, 200);
  assert.equal((await auditRows(app, 'admin.user.update')).length, before);
  assertProblem(await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: h, payload: {} }), 400);
  assertProblem(await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: h, payload: { role: 'root' } }), 400);

  const updates = await auditRows(app, 'admin.user.update');
  assert.equal(updates.length, 3);
  const first = updates.find((u) => (u.details.after as { role: string }).role === 'admin')!;
  assert.equal(first.actorId, admin.id);
  assert.equal(first.targetId, user.id);
  assert.deepEqual(first.details.before, { role: 'user', disabled: false });
  assert.equal(first.requestId, promoted.headers['x-request-id']);
  assert.equal(first.ip, '127.0.0.1');
});

test('the last active admin cannot be demoted, disabled or deleted (409); with two admins one can go', async (t) => {
  const app = await build(t);
  const admin = await adminSession(app, 'root@example.com');
  const h = bearer(admin.accessToken);
  for (const payload of [{ role: 'user' }, { disabled: true }, { role: 'user', disabled: true }]) {
    assertProblem(await app.inject({ method: 'PATCH', url: `/admin/users/${admin.id}`, headers: h, payload }), 409, 'LAST_ADMIN');
  }
  assertProblem(await app.inject({ method: 'DELETE', url: `/admin/users/${admin.id}`, headers: h }), 409, 'LAST_ADMIN');

  // A disabled admin does not count as an active one.
  const second = await registerAndLogin(app, 'second@example.com');
  await app.database.db.update(users).set({ role: 'admin', disabled: true }).where(eq(users.id, second.id));
  assertProblem(await app.inject({ method: 'PATCH', url: `/admin/users/${admin.id}`, headers: h, payload: { role: 'user' } }), 409);

  // Two active admins: concurrent demotions of both, only one may succeed.
  await app.database.db.update(users).set({ disabled: false }).where(eq(users.id, second.id));
  const both = await Promise.all([
    app.inject({ method: 'PATCH', url: `/admin/users/${admin.id}`, headers: h, payload: { role: 'user' } }),
    app.inject({ method: 'PATCH', url: `/admin/users/${second.id}`, headers: h, payload: { role: 'user' } }),
  ]);
  assert.deepEqual(both.map((r) => r.statusCode).sort(), [200, 409]);
  const admins = await app.database.db.select().from(users).where(eq(users.role, 'admin'));
  assert.equal(admins.length, 1);
  assert.equal((await auditRows(app, 'admin.user.update')).length, 1, 'the refused change wrote no audit row');
});

test('delete cascades to the user’s data, runs lifecycle hooks, and is audited; a failing hook rolls everything back', async (t) => {
  const app = await build(t);
  const admin = await adminSession(app);
  const victim = await registerAndLogin(app, 'victim@example.com');
  const h = bearer(admin.accessToken);
  const seen: string[] = [];
  let fail = true;
  app.userLifecycle.onDelete(async ({ userId, tx }) => {
    // Hooks run inside the deleting transaction and can read the user's rows.
    const rows = await tx.select().from(refreshTokens).where(eq(refreshTokens.userId, userId));
    seen.push(`${userId}:${rows.length}`);
    if (fail) throw new Error('bots would not stop');
  });

  const failed = await app.inject({ method: 'DELETE', url: `/admin/users/${victim.id}`, headers: h });
  assertProblem(failed, 500, 'INTERNAL');
  assert.equal((await app.database.db.select().from(users).where(eq(users.id, victim.id))).length, 1, 'user kept');
  assert.equal((await auditRows(app, 'admin.user.delete')).length, 0, 'no audit row for a rolled back deletion');
  assert.equal((await app.inject({ url: '/auth/me', headers: bearer(victim.accessToken) })).statusCode, 200);

  fail = false;
  const ok = await app.inject({ method: 'DELETE', url: `/admin/users/${victim.id}`, headers: h });
  assert.equal(ok.statusCode, 204);
  assert.deepEqual(seen, [`${victim.id}:1`, `${victim.id}:1`]);
  assert.equal((await app.database.db.select().from(users).where(eq(users.id, victim.id))).length, 0);
  assert.equal((await app.database.db.select().from(refreshTokens).where(eq(refreshTokens.userId, victim.id))).length, 0, 'cascaded');
  assertProblem(await app.inject({ url: '/auth/me', headers: bearer(victim.accessToken) }), 401);
  const [row] = await auditRows(app, 'admin.user.delete');
  assert.equal(row.actorId, admin.id);
  assert.equal(row.targetId, victim.id);
  assert.equal(row.details.email, 'victim@example.com');
  assertProblem(await app.inject({ method: 'DELETE', url: `/admin/users/${victim.id}`, headers: h }), 404);
});

test('audit log: paginated, filtered by action, actor, target and time range', async (t) => {
  const app = await build(t);
  const admin = await adminSession(app);
  const u = await registerAndLogin(app, 'audited@example.com');
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'audited@example.com', password: 'wrong password!!' } });
  await app.inject({ method: 'PATCH', url: `/admin/users/${u.id}`, headers: bearer(admin.accessToken), payload: { disabled: true } });
  const h = bearer(admin.accessToken);
  const get = async (qs: string) => {
    const res = await app.inject({ url: `/admin/audit${qs}`, headers: h });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };

  const all = await get('');
  // register ×2, login ×2 (admin, user), failed login, update
  assert.equal(all.total, 6);
  const times = all.items.map((i: { at: string }) => Date.parse(i.at));
  assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
  assert.equal(all.items[0].action, 'admin.user.update');

  const logins = await get('?action=auth.login');
  assert.equal(logins.total, 3);
  assert.equal(logins.items.filter((i: { outcome: string }) => i.outcome === 'failure').length, 1);
  assert.equal((await get(`?actorId=${admin.id}`)).total, 3);
  assert.equal((await get(`?targetId=${u.id}&action=admin.user.update`)).items[0].details.after.disabled, true);
  const paged = await get('?limit=4&offset=4');
  assert.equal(paged.items.length, 2);
  assert.equal(paged.total, 6);
  const future = new Date(Date.now() + 60_000).toISOString();
  assert.equal((await get(`?from=${encodeURIComponent(future)}`)).total, 0);
  assert.equal((await get(`?to=${encodeURIComponent(future)}`)).total, 6);
  assertProblem(await app.inject({ url: '/admin/audit?from=yesterday', headers: h }), 400);
});

test('dashboard: user counts, database latency, readiness, process, version, recent 5xx and registered diagnostics', async (t) => {
  const app = await build(t, {
    register: (a) => {
      a.get('/boom', async () => {
        throw new Error('kaboom');
      });
      a.diagnostics.register('job-queue', () => ({ waiting: 3, active: 1 }));
      a.diagnostics.register('flaky', () => {
        throw new Error('unavailable');
      });
    },
  });
  const admin = await adminSession(app);
  const u = await registerAndLogin(app, 'x@example.com');
  await app.database.db.update(users).set({ disabled: true }).where(eq(users.id, u.id));
  const before = (await app.inject({ url: '/admin/dashboard', headers: bearer(admin.accessToken) })).json();
  assert.equal(before.errors.last5xxLastHour, 0);
  await app.inject({ url: '/boom' });
  await app.inject({ url: '/boom' });

  const res = await app.inject({ url: '/admin/dashboard', headers: bearer(admin.accessToken) });
  assert.equal(res.statusCode, 200, res.body);
  const d = res.json();
  assert.deepEqual(d.users, { total: 2, admins: 1, disabled: 1 });
  assert.equal(d.database.ok, true);
  assert.equal(d.database.kind, usingPostgres ? 'postgres' : 'pglite');
  assert.ok(d.database.latencyMs >= 0);
  assert.equal(d.readiness.ready, true);
  assert.equal(d.readiness.checks.database.ok, true);
  assert.ok(d.process.memory.rssBytes > 0);
  assert.ok(d.process.uptimeSeconds >= 0);
  assert.match(d.version, /^\d+\.\d+\.\d+/);
  assert.equal(d.errors.last5xxLastHour, 2);
  assert.deepEqual(d.subsystems['job-queue'], { waiting: 3, active: 1 });
  assert.deepEqual(d.subsystems.flaky, { error: 'unavailable' });
  assert.equal(d.subsystems.auth.passwordHashing.running, 0);
  assert.ok(d.subsystems.auth.passwordHashing.concurrency >= 1);
  assert.ok(d.subsystems.auth.cachedUsers >= 1, 'the admin’s state is cached');
});

test('bootstrap admin from ADMIN_EMAIL + ADMIN_PASSWORD at first boot; an existing user is left alone', async (t) => {
  const env = { ADMIN_EMAIL: ' Boss@Example.com ', ADMIN_PASSWORD: 'bootstrap admin password' };
  const app = await build(t, { env });
  const boss = await login(app, 'boss@example.com', 'bootstrap admin password');
  const me = (await app.inject({ url: '/auth/me', headers: bearer(boss.accessToken) })).json();
  assert.equal(me.role, 'admin');
  assert.equal((await auditRows(app, 'admin.bootstrap')).length, 1);
  assert.doesNotMatch(app.rawLogs(), /bootstrap admin password/);

  // Second boot on the same data (password changed meanwhile): nothing is recreated or reset.
  await app.database.db.update(users).set({ role: 'user' }).where(eq(users.email, 'boss@example.com'));
  const app2 = await build(t, { env, keepData: true });
  const [row] = await app2.database.db.select().from(users).where(eq(users.email, 'boss@example.com'));
  assert.equal(row.role, 'user');
  assert.equal((await app2.database.db.select().from(users)).length, 1);
});

/** Runs `npm run admin:create` (the script through tsx) with the password on stdin. */
function adminCreate(args: string[], stdin: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/admin-create.ts', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, NODE_ENV: 'test', LOG_LEVEL: 'silent', ARGON2_MEMORY_KIB: '1024', ARGON2_TIME_COST: '1', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
    child.stdin.end(stdin);
  });
}

test('admin:create script: password from stdin, creates an admin once, refuses bad input', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'admin-create-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const env: Record<string, string> = usingPostgres ? { DATABASE_URL: await createTestPgDatabase() } : { DATA_DIR: dataDir };
  const pw = 'script admin password 1';

  const created = await adminCreate(['--email', 'Ops@Example.com'], `${pw}\n`, env);
  assert.equal(created.code, 0, created.out);
  assert.match(created.out, /admin created: ops@example\.com/);
  assert.equal(created.out.includes(pw), false, 'the password is never printed');

  const again = await adminCreate(['--email', 'ops@example.com'], pw, env);
  assert.equal(again.code, 2);
  assert.match(again.out, /already exists \(role admin\); nothing changed/);

  const short = await adminCreate(['--email', 'x@example.com'], 'short', env);
  assert.equal(short.code, 64);
  assert.match(short.out, /at least 12/);
  const noEmail = await adminCreate([], pw, env);
  assert.equal(noEmail.code, 64);
  assert.match(noEmail.out, /usage/);

  const database = await createDatabase(usingPostgres ? { url: env.DATABASE_URL } : { dataDir });
  try {
    const rows = await database.db.select().from(users);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].email, 'ops@example.com');
    assert.equal(rows[0].role, 'admin');
    assert.match(rows[0].passwordHash, /^\$argon2id\$/);
    assert.equal(await argon2.verify(rows[0].passwordHash, pw), true);
  } finally {
    await database.close();
  }
});
