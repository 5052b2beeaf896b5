#!/usr/bin/env node
// Runs the whole suite (node:test through tsx) on the embedded database, then again on real PostgreSQL when
// TEST_DATABASE_URL is set (e.g. postgres://postgres@127.0.0.1:5432/test). Extra arguments narrow the files:
//   npm test -- tests/app            (a folder)    npm test -- tests/app/health.test.ts (a file)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const roots = args.length ? args : ['tests'];
const files = [];
const walk = (p) => {
  if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) walk(path.join(p, e));
  else if (p.endsWith('.test.ts')) files.push(p);
};
roots.forEach(walk);
if (!files.length) {
  console.error(`no test files under ${roots.join(', ')}`);
  process.exit(1);
}

const passes = [{ name: 'embedded PGlite', env: { TEST_DATABASE_URL: '' } }];
if (process.env.TEST_DATABASE_URL) passes.push({ name: `PostgreSQL (${process.env.TEST_DATABASE_URL})`, env: {} });
else console.log('TEST_DATABASE_URL is not set: running on the embedded database only.');

let failed = false;
for (const pass of passes) {
  console.log(`\n=== test pass: ${pass.name} (${files.length} files) ===`);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
    { stdio: 'inherit', env: { ...process.env, ...pass.env, NODE_ENV: 'test' } },
  );
  if (r.status !== 0) {
    failed = true;
    console.error(`=== test pass failed: ${pass.name} ===`);
  }
}
process.exit(failed ? 1 : 0);
