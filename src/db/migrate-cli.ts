// `npm run db:migrate`: applies the SQL migrations in drizzle/ to DATABASE_URL, or to the embedded database in DATA_DIR
// (which must not be in use by a running server: the data-dir lock refuses a second process).
import { ConfigError, loadConfig } from '../config.js';
import { createDatabase } from './client.js';
import { DataDirLockedError } from './lock.js';
import { migrateDatabase, pendingMigrations } from './migrate.js';

async function main() {
  const { config } = loadConfig();
  const database = await createDatabase({ url: config.db.url, dataDir: config.db.dataDir, poolMax: 1 });
  try {
    const pending = await pendingMigrations(database);
    await migrateDatabase(database);
    process.stdout.write(pending.length ? `applied: ${pending.join(', ')}\n` : 'up to date\n');
  } finally {
    await database.close();
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof DataDirLockedError) {
    process.stderr.write(`db:migrate: ${err.message}\n`);
    process.exit(err instanceof ConfigError ? 78 : 75);
  }
  process.stderr.write(`db:migrate failed: ${(err as Error).message}\n`);
  process.exit(1);
});
