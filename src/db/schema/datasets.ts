import { sql } from 'drizzle-orm';
import { bigint, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

/**
 * OHLCV datasets, one row per import and per user. The bars themselves live in a columnar file
 * `<COLUMNAR_DIR>/<sha256>.bin` shared by every row with the same content (src/modules/datasets/columnar.ts); the file
 * is removed when the last row referencing its sha256 goes.
 *
 * A row is inserted with status `importing` before any byte is read; it becomes `ready` with the ingest result, is
 * deleted when the data is refused (bad CSV, too large, client gone), or is marked `failed` when the import dies
 * (unexpected error, or the process stopped: `heartbeat_at` stops moving and the start-up/periodic sweep fails it).
 *
 * `source = 'file'` rows cache the ingest of a read-only CSV in DATASETS_DIR for one user: `file_name`, `file_size`
 * and `file_mtime` tell whether the cached ingest still matches the file.
 */
export const datasets = pgTable(
  'datasets',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    source: text('source', { enum: ['upload', 'file', 'download'] }).notNull(),
    status: text('status', { enum: ['importing', 'ready', 'failed'] }).notNull().default('importing'),
    error: text('error'),
    sha256: text('sha256'),
    rows: integer('rows'),
    bytes: bigint('bytes', { mode: 'number' }),
    fromAt: timestamp('from_at', { withTimezone: true, precision: 3 }),
    toAt: timestamp('to_at', { withTimezone: true, precision: 3 }),
    timeframeMs: bigint('timeframe_ms', { mode: 'number' }),
    timeframe: text('timeframe'),
    quality: jsonb('quality').$type<Record<string, unknown>>(),
    warnings: jsonb('warnings').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    /** Columnar file name inside COLUMNAR_DIR (`<sha256>.bin`). */
    storageFile: text('storage_file'),
    /** source = 'file': the CSV's name in DATASETS_DIR, its size and modification time when it was ingested. */
    fileName: text('file_name'),
    fileSize: bigint('file_size', { mode: 'number' }),
    fileMtime: timestamp('file_mtime', { withTimezone: true, precision: 3 }),
    /** Touched while an import runs; a stale heartbeat on an `importing` row means its process is gone. */
    heartbeatAt: timestamp('heartbeat_at', { withTimezone: true }).notNull().defaultNow(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('datasets_user_created_idx').on(t.userId, t.createdAt),
    index('datasets_sha256_idx').on(t.sha256),
    index('datasets_importing_idx').on(t.heartbeatAt).where(sql`${t.status} = 'importing'`),
    index('datasets_user_file_idx').on(t.userId, t.fileName).where(sql`${t.source} = 'file'`),
  ],
);
