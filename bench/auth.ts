/**
 * Login benchmark: `npx tsx bench/auth.ts [seconds=5] [rounds=3]`.
 *
 * With the configured argon2 parameters (ARGON2_* from the environment; default OWASP 19 MiB, t=2, p=1), against one
 * server process, interleaved, medians of the rounds:
 *   live          GET /health/live alone (the "hello" route of our app)
 *   logins        POST /auth/login alone (correct password: one argon2id verification + session insert)
 *   live+logins   both at once: the cheap route's throughput while logins run (target: keeps ≥ 0.5× of alone),
 *                 and the logins/s achieved meanwhile.
 * Database: PostgreSQL when BENCH_DATABASE_URL is set (a fresh database, dropped after), else embedded PGlite.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { benchDatabase, load, median, postJson, startServer, type LoadResult } from './lib.js';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);
const db = await benchDatabase(process.env.BENCH_DATABASE_URL);
const argon2 = {
  ARGON2_MEMORY_KIB: process.env.ARGON2_MEMORY_KIB ?? '19456',
  ARGON2_TIME_COST: process.env.ARGON2_TIME_COST ?? '2',
  ARGON2_PARALLELISM: process.env.ARGON2_PARALLELISM ?? '1',
};
const server = await startServer('app', {
  DATABASE_URL: db.url,
  DATA_DIR: db.url ? undefined : await mkdtemp(path.join(tmpdir(), 'bench-auth-')),
  JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123456789',
  ENCRYPTION_KEY: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
  RATE_LIMIT_MAX: '1000000000',
  AUTH_RATE_LIMIT_MAX: '1000000000',
  MAX_EVENT_LOOP_DELAY_MS: '0',
  ...argon2,
});
try {
  const creds = { email: 'bench-login@example.com', password: 'bench password 1234' };
  const reg = await postJson(`${server.url}/auth/register`, creds);
  if (reg.status !== 201) throw new Error(`register: ${reg.status}`);
  const loginOpts = {
    url: `${server.url}/auth/login`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(creds),
    connections: 8,
  };
  const live = (s: number) => load({ url: `${server.url}/health/live`, seconds: s });
  const logins = (s: number) => load({ ...loginOpts, seconds: s });

  console.log(
    `bench/auth: argon2id m=${argon2.ARGON2_MEMORY_KIB} KiB t=${argon2.ARGON2_TIME_COST} p=${argon2.ARGON2_PARALLELISM}, ` +
      `${seconds} s × ${rounds} rounds, database ${db.url ? 'PostgreSQL' : 'PGlite'}`,
  );
  await live(1);
  await logins(1);

  const alone: LoadResult[] = [];
  const loginsAlone: LoadResult[] = [];
  const during: LoadResult[] = [];
  const loginsDuring: LoadResult[] = [];
  for (let r = 0; r < rounds; r++) {
    alone.push(await live(seconds));
    loginsAlone.push(await logins(seconds));
    const [l, g] = await Promise.all([live(seconds), logins(seconds)]);
    during.push(l);
    loginsDuring.push(g);
    process.stderr.write(
      `  round ${r + 1}/${rounds}: live ${Math.round(alone[r].rps)}/s, logins ${loginsAlone[r].rps.toFixed(1)}/s, ` +
        `live during logins ${Math.round(l.rps)}/s (logins meanwhile ${g.rps.toFixed(1)}/s)\n`,
    );
  }
  const med = (xs: LoadResult[], k: 'rps' | 'p99') => median(xs.map((x) => x[k]));
  const ratio = med(during, 'rps') / med(alone, 'rps');
  const bad = [...loginsAlone, ...loginsDuring].reduce((n, x) => n + x.non2xx + x.errors, 0);
  console.log(`logins/s alone:                 ${med(loginsAlone, 'rps').toFixed(1)} (p99 ${med(loginsAlone, 'p99')} ms)`);
  console.log(`logins/s while live is loaded:  ${med(loginsDuring, 'rps').toFixed(1)}`);
  console.log(`live req/s alone:               ${med(alone, 'rps').toFixed(0)} (p99 ${med(alone, 'p99')} ms)`);
  console.log(`live req/s during logins:       ${med(during, 'rps').toFixed(0)} (p99 ${med(during, 'p99')} ms)`);
  console.log(`ratio live during/alone:        ${ratio.toFixed(2)}× (target ≥ 0.5× ${ratio >= 0.5 ? 'ok' : 'MISSED'})`);
  if (bad) console.log(`non-2xx or errors on logins: ${bad}`);
} finally {
  await server.stop();
  await db.drop();
}
