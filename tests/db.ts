import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { createDatabase, type Database } from '../src/db/client.js';
import { migrateDatabase } from '../src/db/migrate.js';

/**
 * One database per test file (node:test runs each file in its own process): an in-memory PGlite, or, when
 * TEST_DATABASE_URL is set, a fresh database created on that PostgreSQL server and dropped when the file ends.
 * Tests truncate between cases (see truncateAll).
 */
let shared: Promise<{ database: Database; url?: string }> | undefined;
const cleanups: (() => Promise<void>)[] = [];

// Registered while the test file's module graph is evaluated, so it belongs to the file's root (not to one test).
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

export const usingPostgres = Boolean(process.env.TEST_DATABASE_URL);

/** URL of a fresh database on the test server (created now, dropped when the file ends). */
export async function createTestPgDatabase(): Promise<string> {
  const adminUrl = process.env.TEST_DATABASE_URL!;
  const name = `t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  cleanups.push(async () => {
    const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await a.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
    await a.end();
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export function testDatabase(): Promise<{ database: Database; url?: string }> {
  shared ??= (async () => {
    const url = usingPostgres ? await createTestPgDatabase() : undefined;
    const database = await createDatabase({ url, poolMax: 5 });
    await migrateDatabase(database);
    cleanups.push(() => database.close());
    return { database, url };
  })();
  return shared;
}

export async function truncateAll(database: Database): Promise<void> {
  const result = (await database.db.execute(
    sql`select tablename from pg_tables where schemaname = 'public'`,
  )) as unknown as { rows?: { tablename: string }[] } | { tablename: string }[];
  const rows = Array.isArray(result) ? result : (result.rows ?? []);
  if (rows.length === 0) return;
  const list = rows.map((r) => `"public"."${r.tablename}"`).join(', ');
  await database.db.execute(sql.raw(`truncate table ${list} restart identity cascade`));
}

/** Every row of every table in public, as text: what a database dump would reveal (secret-leak tests). */
export async function dumpAllTables(database: Database): Promise<string> {
  const result = (await database.db.execute(sql`select tablename from pg_tables where schemaname = 'public'`)) as unknown as
    | { rows?: { tablename: string }[] }
    | { tablename: string }[];
  const tables = (Array.isArray(result) ? result : (result.rows ?? [])).map((r) => r.tablename);
  let out = '';
  for (const t of tables) {
    const rows = (await database.db.execute(sql.raw(`select row_to_json(x)::text as j from "public"."${t}" x`))) as unknown as
      | { rows?: { j: string }[] }
      | { j: string }[];
    for (const r of Array.isArray(rows) ? rows : (rows.rows ?? [])) out += `${t}: ${r.j}\n`;
  }
  return out;
}
