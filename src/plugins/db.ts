import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createDatabase, type Database } from '../db/client.js';
import { migrateDatabase, pendingMigrations } from '../db/migrate.js';

declare module 'fastify' {
  interface FastifyInstance {
    database: Database;
  }
}

export interface DbPluginOptions {
  /** An already-open database (tests share one per file); it is then not closed by the app. */
  database?: Database;
}

/** Opens the database (postgres.js or embedded PGlite), applies migrations when configured, closes it on shutdown. */
export default fp(
  async function dbPlugin(app: FastifyInstance, opts: DbPluginOptions) {
    const { db: cfg } = app.config;
    const database = opts.database ?? (await createDatabase({ url: cfg.url, dataDir: cfg.dataDir, poolMax: cfg.poolMax }));
    app.decorate('database', database);
    if (!opts.database) app.addHook('onClose', async () => database.close());

    if (cfg.migrateOnStart) {
      try {
        await migrateDatabase(database);
      } catch (err) {
        // An unreachable database must not keep the process from starting: /health/ready reports it until it is back.
        app.log.error({ err }, 'migrations could not be applied at start');
      }
    }

    app.readiness.register('database', async () => {
      const latencyMs = await database.ping(2000);
      return { ok: true, detail: `${latencyMs.toFixed(1)} ms` };
    });
    app.readiness.register('migrations', async () => {
      const pending = await pendingMigrations(database);
      return pending.length ? { ok: false, detail: `pending: ${pending.join(', ')}` } : { ok: true };
    });
  },
  { name: 'db', dependencies: ['readiness'] },
);
