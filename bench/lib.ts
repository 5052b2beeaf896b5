/**
 * Small HTTP benchmark harness shared by bench/http.ts and bench/auth.ts.
 *
 * Servers run in child processes (`tsx bench/lib.ts serve <kind>`), the load generator (autocannon) in the parent:
 * on a 2-core machine this gives the server one core and autocannon the other, and no competitor pays for the load
 * generator's event loop. Competitors are interleaved round by round and the median of the rounds is reported.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

export type ServerKind = 'hello' | 'app';

export interface StartedServer {
  url: string;
  child: ChildProcess;
  stop: () => Promise<void>;
}

/** Starts a server child process on a free port and resolves once it prints its address. */
export function startServer(kind: ServerKind, env: Record<string, string | undefined> = {}, nodeArgs: string[] = []): Promise<StartedServer> {
  // nodeArgs: e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] to profile the server under load.
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(here, 'lib.ts'), 'serve', kind], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /BENCH_LISTENING (\S+)/.exec(out);
      if (!m) return;
      clearInterval(timer);
      resolve({
        url: m[1],
        child,
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      });
    }, 50);
    exited.then(() => {
      clearInterval(timer);
      reject(new Error(`bench server (${kind}) exited: ${out}`));
    });
  });
}

export interface LoadOptions {
  url: string;
  seconds: number;
  connections?: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadResult {
  rps: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/** Runs autocannon against one URL; req/s is the mean over the run, p99 latency in ms. */
export async function load(opts: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: opts.url,
    duration: opts.seconds,
    connections: opts.connections ?? 10,
    method: opts.method ?? 'GET',
    headers: opts.headers,
    body: opts.body,
  });
  return { rps: result.requests.average, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors + result.timeouts };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export interface Competitor {
  name: string;
  run: () => Promise<LoadResult>;
}

export interface Row {
  name: string;
  rps: number[];
  p99: number[];
  non2xx: number;
}

/** Runs every competitor once per round, interleaved, `rounds` times. */
export async function interleave(competitors: Competitor[], rounds: number, log = (s: string) => process.stderr.write(s)): Promise<Row[]> {
  const rows: Row[] = competitors.map((c) => ({ name: c.name, rps: [], p99: [], non2xx: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of competitors.entries()) {
      const res = await c.run();
      rows[i].rps.push(res.rps);
      rows[i].p99.push(res.p99);
      rows[i].non2xx += res.non2xx + res.errors;
      log(`  round ${r + 1}/${rounds} ${c.name}: ${Math.round(res.rps)} req/s, p99 ${res.p99} ms${res.non2xx + res.errors ? `, ${res.non2xx} non-2xx, ${res.errors} errors` : ''}\n`);
    }
  }
  return rows;
}

/** Prints medians and each row's ratio to the baseline (the first row unless named), with an optional target. */
export function printTable(rows: Row[], targets: Record<string, number> = {}, baseline = rows[0].name) {
  const base = median(rows.find((r) => r.name === baseline)!.rps);
  const lines = [['competitor', 'req/s (median)', 'p99 ms (median)', `ratio vs ${baseline}`, 'target', 'runs (req/s)', 'non-2xx']];
  for (const r of rows) {
    const rps = median(r.rps);
    const ratio = rps / base;
    const target = targets[r.name];
    lines.push([
      r.name,
      rps.toFixed(0),
      median(r.p99).toFixed(1),
      `${ratio.toFixed(2)}×`,
      target === undefined ? '' : `≥ ${target}× ${ratio >= target ? 'ok' : 'MISSED'}`,
      r.rps.map((x) => x.toFixed(0)).join(' / '),
      String(r.non2xx),
    ]);
  }
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  for (const [i, l] of lines.entries()) {
    console.log(l.map((c, j) => c.padEnd(widths[j])).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

/** A fresh PostgreSQL database for one benchmark run (dropped by the returned function), or undefined for PGlite. */
export async function benchDatabase(adminUrl: string | undefined): Promise<{ url?: string; drop: () => Promise<void> }> {
  if (!adminUrl) return { url: undefined, drop: async () => {} };
  const { default: postgres } = await import('postgres');
  const name = `bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      await a.end();
    },
  };
}

/** JSON request helper for setting up a benchmark (register, login). */
export async function postJson(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json().catch(() => null) };
}

// ---- server side: `tsx bench/lib.ts serve hello|app` ----
async function serve(kind: ServerKind) {
  if (kind === 'hello') {
    const { default: Fastify } = await import('fastify');
    const app = Fastify({ logger: false });
    app.get('/hello', async () => ({ hello: 'world' }));
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    process.stdout.write(`BENCH_LISTENING ${address}\n`);
    process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
    return;
  }
  const { loadConfig } = await import('../src/config.js');
  const { buildApp } = await import('../src/app.js');
  const { config } = loadConfig({ ...process.env, HOST: '127.0.0.1', PORT: '0' });
  const app = await buildApp(config);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`BENCH_LISTENING ${address}\n`);
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

if (process.argv[2] === 'serve') {
  serve(process.argv[3] as ServerKind).catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
