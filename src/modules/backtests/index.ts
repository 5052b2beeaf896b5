import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import jobQueue from '../../plugins/job-queue.js';
import { createBacktestsService, HEARTBEAT_MS, STALE_JOB_MS, type BacktestsService } from './backtests.service.js';
import backtestsRoutes from './backtests.routes.js';

export { createBacktestsService, type BacktestsService } from './backtests.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    backtestsService: BacktestsService;
  }
}

/**
 * Backtests domain: `app.backtestsService`, the /backtest/* routes and the job queue (`app.backtestQueue`, in process
 * or Redis). At start, jobs a stopped process left queued or running are queued again (bounded attempts) or failed:
 * all of them on the embedded database (one process owns it), on PostgreSQL those whose heartbeat is stale (other
 * instances keep theirs; a periodic sweep catches instances that die later). On shutdown the running jobs are
 * aborted and put back to queued, to be resumed.
 */
export default fp(
  async function backtestsModule(app: FastifyInstance) {
    await app.register(jobQueue);
    const service = createBacktestsService({
      db: app.database.db,
      pool: app.workerPool,
      poolQueueMax: app.config.backtest.queueMax,
      queue: app.backtestQueue,
      queueMax: app.config.backtest.queueMax,
      datasets: app.datasetsService,
      strategies: app.strategiesService,
      eventBus: app.eventBus,
      log: app.log,
    });
    app.decorate('backtestsService', service);

    const staleMs = app.database.kind === 'pglite' ? 0 : STALE_JOB_MS;
    const sweep = async (ms: number) => {
      const { requeued, failed } = await service.recover(ms);
      if (requeued.length || failed.length) app.log.warn({ requeued, failed }, 'recovered interrupted backtests');
    };
    await app.onDatabaseReady('backtest-recovery', () => sweep(staleMs));
    app.backtestQueue.start((job, signal) => service.runJob(job, signal));

    const heartbeat = setInterval(() => {
      service.heartbeat().catch((err: Error) => app.log.warn({ err: err.message }, 'backtest heartbeat failed'));
      if (staleMs > 0) sweep(staleMs).catch((err: Error) => app.log.warn({ err: err.message }, 'backtest sweep failed'));
    }, HEARTBEAT_MS);
    heartbeat.unref();
    // Before the pool and the database close: abort running jobs as "shutdown" so they are requeued, not failed.
    app.addHook('preClose', async () => {
      clearInterval(heartbeat);
      await app.backtestQueue.close();
    });
    await app.register(backtestsRoutes);
  },
  { name: 'backtests', dependencies: ['db', 'auth', 'event-bus', 'worker-pool', 'datasets', 'strategies'] },
);
