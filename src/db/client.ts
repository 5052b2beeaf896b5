import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import * as schema from './schema/index.js';
import { lockDataDir } from './lock.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** What a repository receives: the database or a transaction on it. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  /** Round trip to the database; resolves with the latency in ms or rejects (after `timeoutMs`). */
  ping(timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url?: string;
  /** Embedded database directory; `undefined` with no url = in-memory (tests). */
  dataDir?: string;
  poolMax?: number;
  connectTimeoutSeconds?: number;
}

async function timed(run: () => Promise<unknown>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`database did not answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return performance.now() - started;
}

/** postgres.js when a URL is given, otherwise embedded PGlite (its data directory locked to this process). */
export async function createDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    const client = postgres(opts.url, {
      max: opts.poolMax ?? 10,
      connect_timeout: opts.connectTimeoutSeconds ?? 5,
      idle_timeout: 30,
      onnotice: () => {},
    });
    const db = drizzle(client, { schema }) as unknown as Db;
    return {
      db,
      kind: 'postgres',
      ping: (timeoutMs = 2000) => timed(() => db.execute(sql`select 1`), timeoutMs),
      close: () => client.end({ timeout: 5 }),
    };
  }

  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const dataDir = opts.dataDir ? path.resolve(opts.dataDir) : undefined;
  const release = dataDir ? await lockDataDir(dataDir) : async () => {};
  let client: InstanceType<typeof PGlite>;
  try {
    client = dataDir ? new PGlite(path.join(dataDir, 'pgdata')) : new PGlite();
    await client.waitReady;
  } catch (err) {
    await release();
    throw err;
  }
  const db = drizzle(client, { schema }) as unknown as Db;
  let closed = false;
  return {
    db,
    kind: 'pglite',
    ping: async (timeoutMs = 2000) => {
      if (closed) throw new Error('embedded database is closed');
      return timed(() => db.execute(sql`select 1`), timeoutMs);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        await release();
      }
    },
  };
}
