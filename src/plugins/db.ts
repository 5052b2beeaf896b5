import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createDatabase, type Database } from '../db/client.js';
import { migrateDatabase, pendingMigrations } from '../db/migrate.js';

declare module 'fastify' {
  interface FastifyInstance {
    database: Database;
    /**
     * Runs start-up work that needs the database (recovery sweeps, reconciliation, bootstrap rows). When the database
     * answers at boot the task runs now and the returned promise waits for it; when it does not, the service still
     * starts (probes report the outage) and the task runs as soon as the database answers again. Errors are logged.
     */
    onDatabaseReady(name: string, task: () => Promise<unknown>, opts?: { fatal?: boolean }): Promise<void>;
  }
}

const RETRY_MS = 5000;

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

    let reachable = await database.ping(2000).then(
      () => true,
      () => false,
    );
    const deferred: { name: string; task: () => Promise<unknown> }[] = [];
    const run = async (name: string, task: () => Promise<unknown>) => {
      try {
        await task();
      } catch (err) {
        app.log.error({ err, task: name }, 'start-up task failed');
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const retry = () => {
      timer = setTimeout(async () => {
        reachable = await database.ping(2000).then(() => true, () => false);
        if (!reachable) return retry();
        if (cfg.migrateOnStart) await run('migrations', () => migrateDatabase(database));
        for (const { name, task } of deferred.splice(0)) await run(name, task);
      }, RETRY_MS);
      timer.unref();
    };
    app.addHook('onClose', async () => clearTimeout(timer));
    if (!reachable) {
      app.log.error('database unreachable at start: serving probes; start-up tasks wait for it');
      retry();
    }
    app.decorate('onDatabaseReady', async (name: string, task: () => Promise<unknown>, opts: { fatal?: boolean } = {}) => {
      if (!reachable) deferred.push({ name, task });
      else if (opts.fatal) await task(); // e.g. a key ring that cannot decrypt stored credentials stops the boot
      else await run(name, task);
    });

    if (cfg.migrateOnStart && reachable) {
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
