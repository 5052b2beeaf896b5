import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'node:http';
import { createTestPgDatabase, usingPostgres } from '../db.js';

const root = path.resolve(import.meta.dirname, '..', '..');

interface Started {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `src/server.ts` exactly as `npm start` does (through tsx), on a free port. */
function startServer(env: Record<string, string>, waitForListen = true): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    if (!waitForListen) return resolve({ child, port: 0, output: () => out, exited });
    const timer = setInterval(() => {
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearInterval(timer);
        resolve({ child, port: Number(m[1]), output: () => out, exited });
      }
    }, 50);
    exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
}

function get(port: number, urlPath: string, delayBodyMs = 0): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: urlPath, method: delayBodyMs ? 'POST' : 'GET', headers: delayBodyMs ? { 'content-type': 'application/json', 'content-length': '2' } : {} }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    if (delayBodyMs) {
      req.write('{');
      setTimeout(() => req.end('}'), delayBodyMs);
    } else req.end();
  });
}

test('npm start on a bare machine: embedded database, SIGTERM closes everything and exits 0', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'srv-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const server = await startServer({ DATA_DIR: dataDir });
  assert.match(server.output(), /JWT_SECRET is not set/);
  const ready = await get(server.port, '/health/ready');
  assert.equal(ready.status, 200, ready.body);
  await stat(path.join(dataDir, 'LOCK'));

  // A second process on the same data directory refuses to start and touches nothing.
  const second = await startServer({ DATA_DIR: dataDir }, false);
  assert.equal(await second.exited, 75);
  assert.match(second.output(), /in use by another process \(pid \d+\)/);
  assert.equal((await get(server.port, '/health/db')).status, 200, 'the first process is unaffected');

  // SIGTERM while a request is in flight (its body still arriving): the request completes, then the process exits 0.
  const inflight = get(server.port, '/health/live-post', 600);
  await new Promise((r) => setTimeout(r, 150));
  server.child.kill('SIGTERM');
  const res = await inflight;
  assert.equal(res.status, 404, 'the in-flight request got its answer');
  assert.equal(await server.exited, 0, server.output());
  assert.match(server.output(), /shutting down/);
  await assert.rejects(stat(path.join(dataDir, 'LOCK')), /ENOENT/, 'lock released on shutdown');
});

test('a bad configuration value exits non-zero naming the variable', async () => {
  const server = await startServer({ PORT: 'abc' }, false);
  assert.equal(await server.exited, 78);
  assert.match(server.output(), /PORT/);
  const prod = await startServer({ NODE_ENV: 'production', JWT_SECRET: 'short', CORS_ORIGINS: '*' }, false);
  assert.equal(await prod.exited, 78);
  assert.match(prod.output(), /JWT_SECRET: must be at least 32 characters/);
  assert.match(prod.output(), /CORS_ORIGINS: must not be \*/);
});

test('real PostgreSQL through DATABASE_URL', { skip: !usingPostgres && 'TEST_DATABASE_URL not set' }, async () => {
  const url = await createTestPgDatabase();
  const server = await startServer({ DATABASE_URL: url });
  const db = await get(server.port, '/health/db');
  assert.equal(db.status, 200);
  assert.equal(JSON.parse(db.body).database, 'postgres');
  assert.equal((await get(server.port, '/health/ready')).status, 200);
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0);
});
