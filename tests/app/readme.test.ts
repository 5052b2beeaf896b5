import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { build } from '../helper.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');

test('README: starts with the run and test commands', async () => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const firstBlock = /```bash\n([\s\S]*?)```/.exec(readme)![1];
  assert.match(firstBlock.split('\n')[0], /^npm install && npm start\b/);
  assert.match(firstBlock.split('\n')[1], /^npm test\b/);
  const ci = await readFile(path.join(root, '.ci/run'), 'utf8');
  assert.match(ci, /^npm test$/m, '.ci/run runs the README test command');
});

test('README: every curl example for the health and metrics routes works against a real server', async (t) => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const app = await build(t);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const lines = readme.split('\n').filter((l) => /^curl -s http:\/\/localhost:8000\/(health|metrics)/.test(l));
  assert.ok(lines.length >= 5, 'README shows the probes');
  for (const line of lines) {
    const url = /(http:\/\/localhost:8000\S*)/.exec(line)![1].replace('http://localhost:8000', address);
    const { stdout } = await run('curl', ['-s', '-w', '\n%{http_code}', url]);
    const status = stdout.trim().split('\n').at(-1);
    assert.equal(status, '200', `${line} -> ${stdout}`);
  }
});

test('README: the configuration table is the one generated from .env.example', async () => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  // @ts-expect-error: a plain .mjs script without types
  const { envTable } = (await import('../../scripts/env-table.mjs')) as { envTable: (t: string) => string };
  const expected = envTable(await readFile(path.join(root, '.env.example'), 'utf8'));
  const m = /<!-- env-table[^>]*-->\n([\s\S]*?)\n<!-- \/env-table -->/.exec(readme);
  assert.ok(m, 'README has the env-table markers');
  assert.equal(m[1], expected, 'regenerate with `node scripts/env-table.mjs`');
});
