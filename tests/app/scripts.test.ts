import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDatabase } from '../../src/db/client.js';
import { users } from '../../src/db/schema/users.js';
import { exchangeKeys } from '../../src/db/schema/exchange-keys.js';
import { createVault } from '../../src/modules/account/vault.js';
import { createTestPgDatabase, usingPostgres } from '../db.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');

/** A database the scripts can open: a fresh PostgreSQL database, or an embedded one in a temp DATA_DIR. */
async function target(t: import('node:test').TestContext): Promise<Record<string, string>> {
  if (usingPostgres) return { DATABASE_URL: await createTestPgDatabase() };
  const dir = await mkdtemp(path.join(tmpdir(), 'scripts-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { DATA_DIR: dir };
}

const script = (file: string, env: Record<string, string>) =>
  run(process.execPath, ['--import', 'tsx', file], { cwd: root, env: { PATH: process.env.PATH, LOG_LEVEL: 'silent', ...env } });

test('npm run db:migrate applies every migration once, then reports up to date', async (t) => {
  const env = await target(t);
  const first = await script('src/db/migrate-cli.ts', env);
  assert.match(first.stdout, /^applied: 0000_init, 0001_exchange_keys/);
  const second = await script('src/db/migrate-cli.ts', env);
  assert.equal(second.stdout.trim(), 'up to date');
});

test('npm run keys:rotate re-encrypts every credential to the newest key; all stay readable', async (t) => {
  const env = await target(t);
  await script('src/db/migrate-cli.ts', env);
  const old = `k1:${randomBytes(32).toString('base64')}`;
  const ring = `k2:${randomBytes(32).toString('base64')},${old}`;
  const database = await createDatabase({ url: env.DATABASE_URL, dataDir: env.DATA_DIR });
  const vault = createVault(old);
  const [user] = await database.db.insert(users).values({ email: 'rot@example.com', passwordHash: 'x' }).returning();
  for (let i = 0; i < 3; i++) {
    const id = randomUUID();
    const ctx = (field: string) => ({ userId: user.id, recordId: id, field });
    await database.db.insert(exchangeKeys).values({
      id,
      userId: user.id,
      exchange: 'binance',
      label: `k${i}`,
      apiKeyLast4: '1234',
      apiKeyEnc: vault.encrypt(`api-${i}`, ctx('apiKey')),
      secretEnc: vault.encrypt(`secret-${i}`, ctx('secret')),
    });
  }
  await database.close(); // the embedded database belongs to one process at a time

  const out = await script('scripts/keys-rotate.ts', { ...env, ENCRYPTION_KEY: ring });
  assert.match(out.stdout, /3 of 3 credential sets re-encrypted to key k2/);

  const after = await createDatabase({ url: env.DATABASE_URL, dataDir: env.DATA_DIR });
  t.after(() => after.close());
  const rows = await after.db.select().from(exchangeKeys);
  const newest = createVault(ring.split(',')[0]); // the old key is no longer needed
  for (const row of rows) {
    assert.match(row.secretEnc, /^v1\.k2\./);
    assert.match(newest.decrypt(row.secretEnc, { userId: row.userId, recordId: row.id, field: 'secret' }), /^secret-\d$/);
  }
});
