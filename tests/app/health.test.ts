import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from '../helper.js';
import { buildApp } from '../../src/app.js';
import { testConfig } from '../../src/config.js';
import { createDatabase } from '../../src/db/client.js';

test('GET /health answers status, version and uptime', async (t) => {
  const app = await build(t);
  const res = await app.inject({ url: '/health' });
  assert.equal(res.statusCode, 200);
  const body = res.json();
  assert.equal(body.status, 'ok');
  assert.match(body.version, /^\d+\.\d+\.\d+/);
  assert.equal(typeof body.uptimeSeconds, 'number');
  assert.ok(!Number.isNaN(Date.parse(body.timestamp)));
});

test('GET /health/live touches nothing external', async (t) => {
  const app = await build(t);
  const res = await app.inject({ url: '/health/live' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok' });
});

test('GET /health/db reports a round trip with latency', async (t) => {
  const app = await build(t);
  const res = await app.inject({ url: '/health/db' });
  assert.equal(res.statusCode, 200);
  const body = res.json();
  assert.equal(body.status, 'ok');
  assert.equal(body.database, process.env.TEST_DATABASE_URL ? 'postgres' : 'pglite');
  assert.ok(body.latencyMs >= 0);
});

test('GET /health/ready lists passing checks', async (t) => {
  const app = await build(t);
  const res = await app.inject({ url: '/health/ready' });
  assert.equal(res.statusCode, 200);
  const body = res.json();
  assert.equal(body.status, 'ready');
  assert.equal(body.checks.database.ok, true);
  assert.equal(body.checks.migrations.ok, true);
});

test('readiness is a registry: a failing subsystem check makes /health/ready 503', async (t) => {
  const app = await build(t);
  // registered after ready() on purpose: subsystems may come up late
  app.readiness.register('market-feed', () => ({ ok: false, detail: 'silent for 90 s' }));
  const res = await app.inject({ url: '/health/ready' });
  assert.equal(res.statusCode, 503);
  assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
  const body = res.json();
  assert.equal(body.code, 'NOT_READY');
  assert.equal(body.checks['market-feed'].ok, false);
  assert.equal(body.checks.database.ok, true);
  assert.match(body.detail, /market-feed \(silent for 90 s\)/);
});

test('database down: /health/db and /health/ready answer 503, other routes a problem, nothing crashes', async (t) => {
  // A PostgreSQL URL on a port nobody listens on: the app must still boot (migrations fail and are reported).
  const database = await createDatabase({ url: 'postgres://postgres@127.0.0.1:1/none', connectTimeoutSeconds: 1, poolMax: 1 });
  const app = await buildApp(testConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }), { database });
  t.after(async () => {
    await app.close();
    await database.close();
  });
  const db = await app.inject({ url: '/health/db' });
  assert.equal(db.statusCode, 503);
  assert.equal(db.json().code, 'DATABASE_UNAVAILABLE');
  assert.equal(db.headers['retry-after'], '5');

  const ready = await app.inject({ url: '/health/ready' });
  assert.equal(ready.statusCode, 503);
  const body = ready.json();
  assert.equal(body.checks.database.ok, false);
  assert.equal(body.checks.migrations.ok, false);
  assert.doesNotMatch(ready.body, /ECONNREFUSED.*at /s, 'no stack traces');

  const live = await app.inject({ url: '/health/live' });
  assert.equal(live.statusCode, 200);
});

test('pending migrations make /health/ready 503', async (t) => {
  // A fresh, unmigrated database on the same kind of server as the suite.
  const { createTestPgDatabase, usingPostgres } = await import('../db.js');
  const url = usingPostgres ? await createTestPgDatabase() : undefined;
  const database = await createDatabase({ url, poolMax: 2 });
  const app = await buildApp(testConfig({ DB_MIGRATE_ON_START: 'false' }), { database });
  t.after(async () => {
    await app.close();
    await database.close();
  });
  const res = await app.inject({ url: '/health/ready' });
  assert.equal(res.statusCode, 503);
  assert.equal(res.json().checks.migrations.ok, false);
  assert.match(res.json().checks.migrations.detail, /pending: 0000_init/);
});

test('readiness fails while shutting down', async (t) => {
  const app = await build(t);
  const closing = app.close();
  await new Promise((resolve) => setImmediate(resolve));
  const { ready, checks } = await app.readiness.run();
  await closing;
  assert.equal(ready, false);
  assert.deepEqual(checks.shutdown, { ok: false, detail: 'server is shutting down' });
});
