/**
 * HTTP benchmark: `npx tsx bench/http.ts [seconds=5] [rounds=3]`.
 *
 * Side by side, interleaved, medians of the rounds (each server in its own process, autocannon here, 10 connections):
 *   hello          bare Fastify, GET /hello (the ceiling)
 *   live           our app, GET /health/live (whole plugin stack, no auth)
 *   auth-me        our app, GET /auth/me with a bearer token: JWT verify + one indexed select of user/session state
 *                  + the in-memory per-user rate limiter (the app always has one) + the user read
 *   auth-me+redis  the full production stack: the same with the rate-limit counters in Redis (REDIS_URL)
 * Targets: auth-me ≥ 0.45× hello, auth-me+redis ≥ 0.33× hello.
 * Database: PostgreSQL when BENCH_DATABASE_URL is set (a fresh database is created and dropped), else embedded PGlite.
 */
import { benchDatabase, interleave, load, median, postJson, printTable, startServer, type StartedServer } from './lib.js';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const dbAdminUrl = process.env.BENCH_DATABASE_URL;

const db = await benchDatabase(dbAdminUrl);
const servers: StartedServer[] = [];
try {
  const appEnv: Record<string, string | undefined> = {
    DATABASE_URL: db.url,
    DATA_DIR: undefined,
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123456789',
    ENCRYPTION_KEY: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
    RATE_LIMIT_MAX: '1000000000',
    AUTH_RATE_LIMIT_MAX: '1000000',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    REDIS_URL: undefined,
  };
  if (!db.url) {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    appEnv.DATA_DIR = await mkdtemp(path.join(tmpdir(), 'bench-http-'));
  }
  const hello = await startServer('hello');
  servers.push(hello);
  const app = await startServer('app', appEnv);
  servers.push(app);
  // The Redis variant shares the database (PostgreSQL) or gets its own data dir (PGlite locks its directory).
  const redisEnv: Record<string, string | undefined> = { ...appEnv, REDIS_URL: redisUrl };
  if (!db.url) {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    redisEnv.DATA_DIR = await mkdtemp(path.join(tmpdir(), 'bench-http-redis-'));
  }
  const appRedis = await startServer('app', redisEnv);
  servers.push(appRedis);

  const token = async (base: string) => {
    const creds = { email: `bench-${Math.random().toString(36).slice(2)}@example.com`, password: 'bench password 1234' };
    const reg = await postJson(`${base}/auth/register`, creds);
    if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.json)}`);
    const login = await postJson(`${base}/auth/login`, creds);
    if (login.status !== 200) throw new Error(`login: ${login.status} ${JSON.stringify(login.json)}`);
    return login.json.accessToken as string;
  };
  const t1 = await token(app.url);
  const t2 = await token(appRedis.url);

  console.log(`bench/http: ${seconds} s × ${rounds} rounds per competitor, database ${db.url ? 'PostgreSQL' : 'PGlite'}, Redis ${redisUrl}`);
  // Warm-up (JIT, connection pools), not recorded.
  await load({ url: `${hello.url}/hello`, seconds: 1 });
  await load({ url: `${app.url}/auth/me`, seconds: 1, headers: { authorization: `Bearer ${t1}` } });
  await load({ url: `${appRedis.url}/auth/me`, seconds: 1, headers: { authorization: `Bearer ${t2}` } });

  const rows = await interleave(
    [
      { name: 'hello', run: () => load({ url: `${hello.url}/hello`, seconds }) },
      { name: 'live', run: () => load({ url: `${app.url}/health/live`, seconds }) },
      { name: 'auth-me', run: () => load({ url: `${app.url}/auth/me`, seconds, headers: { authorization: `Bearer ${t1}` } }) },
      { name: 'auth-me+redis', run: () => load({ url: `${appRedis.url}/auth/me`, seconds, headers: { authorization: `Bearer ${t2}` } }) },
    ],
    rounds,
  );
  printTable(rows, { 'auth-me': 0.45, 'auth-me+redis': 0.33 });
  // What authentication itself costs: the same app's unauthenticated probe as the baseline.
  const live = median(rows[1].rps);
  console.log(`\nvs live (same app, no auth): auth-me ${(median(rows[2].rps) / live).toFixed(2)}×, auth-me+redis ${(median(rows[3].rps) / live).toFixed(2)}×`);
} finally {
  for (const s of servers) await s.stop();
  await db.drop();
}
