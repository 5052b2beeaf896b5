import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { EnvSchema, loadConfig } from '../../src/config.js';

const root = path.resolve(import.meta.dirname, '..', '..');

test('.env.example lists every configuration variable with a comment, and loads as a valid configuration', async () => {
  const text = await readFile(path.join(root, '.env.example'), 'utf8');
  const lines = text.split('\n');
  const vars = new Map<string, string>();
  lines.forEach((line, i) => {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) return;
    vars.set(m[1], m[2]);
    let j = i - 1;
    while (j >= 0 && /^[A-Z0-9_]+=/.test(lines[j])) j--; // a group of related variables shares one comment
    assert.match(lines[j] ?? '', /^#/, `${m[1]} has a comment above it`);
  });
  const schemaKeys = Object.keys(EnvSchema.shape).sort();
  assert.deepEqual([...vars.keys()].sort(), schemaKeys);
  const env = Object.fromEntries([...vars].map(([k, v]) => [k, v === '' ? undefined : v]));
  const { config } = loadConfig(env);
  assert.equal(config.port, 8000);
});
