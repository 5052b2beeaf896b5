import type { TestContext } from 'node:test';
import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildApp } from '../src/app.js';
import { testConfig } from '../src/config.js';
import { testDatabase, truncateAll } from './db.js';

export interface BuildOptions {
  /** Environment overrides on top of the test config (same variable names as .env.example). */
  env?: Record<string, string | undefined>;
  /** Keep the rows of earlier tests (default: truncate every table first). */
  keepData?: boolean;
  /** Extra routes/plugins registered before the app is ready (probe routes for error-path tests). */
  register?: (app: FastifyInstance) => Promise<void> | void;
}

export interface TestApp extends FastifyInstance {
  /** Every log line the app wrote, parsed (for secret-leak and redaction assertions). */
  logs: Record<string, unknown>[];
  rawLogs: () => string;
}

/** Builds the app on this file's shared test database; closed after the test. */
export async function build(t: TestContext, opts: BuildOptions = {}): Promise<TestApp> {
  const { database } = await testDatabase();
  if (!opts.keepData) await truncateAll(database);
  const chunks: string[] = [];
  const logStream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const config = testConfig({ LOG_LEVEL: 'info', DB_MIGRATE_ON_START: 'false', ...opts.env });
  const app = (await buildApp(config, { database, logStream })) as TestApp;
  Object.defineProperty(app, 'logs', {
    get: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  });
  app.rawLogs = () => chunks.join('');
  t.after(() => app.close());
  await opts.register?.(app);
  await app.ready();
  return app;
}

/** `inject` with a bearer token. */
export function injectAs(app: FastifyInstance, token: string, opts: InjectOptions) {
  return app.inject({ ...opts, headers: { ...opts.headers, authorization: `Bearer ${token}` } });
}

export interface TestUser {
  id: string;
  email: string;
  password: string;
  token: string;
  refreshToken: string;
}

let userSeq = 0;
/** Registers and logs in a fresh user through the public routes. */
export async function createUser(app: FastifyInstance, email = `user${++userSeq}-${process.pid}@example.com`): Promise<TestUser> {
  const password = 'correct horse battery staple';
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } });
  if (reg.statusCode !== 201) throw new Error(`register failed: ${reg.statusCode} ${reg.body}`);
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.statusCode} ${login.body}`);
  const body = login.json();
  return { id: body.user.id, email, password, token: body.accessToken, refreshToken: body.refreshToken };
}

/** An admin: created at boot from ADMIN_EMAIL/ADMIN_PASSWORD (build the app with `adminEnv`), then logged in. */
export const adminEnv = { ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: 'admin password 12345' };
export async function loginAdmin(app: FastifyInstance): Promise<TestUser> {
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: adminEnv.ADMIN_EMAIL, password: adminEnv.ADMIN_PASSWORD } });
  if (login.statusCode !== 200) throw new Error(`admin login failed: ${login.statusCode} ${login.body}`);
  const body = login.json();
  return { id: body.user.id, email: adminEnv.ADMIN_EMAIL, password: adminEnv.ADMIN_PASSWORD, token: body.accessToken, refreshToken: body.refreshToken };
}

/** The Redis tests use (TEST_REDIS_URL, else the local default); `redisUp()` tells whether it answers. */
export const TEST_REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export async function redisUp(url = TEST_REDIS): Promise<boolean> {
  const { Redis } = await import('ioredis');
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
