import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createDatasetsService, STALE_IMPORT_MS, type DatasetsService } from './datasets.service.js';
import datasetsRoutes from './datasets.routes.js';

export { FILE_REF_PREFIX, decimalString, parseDatasetRef, type DatasetsService, type OpenedDataset } from './datasets.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    datasetsService: DatasetsService;
  }
}

/**
 * Datasets domain: `app.datasetsService` (open() for backtests) and the /datasets routes. At start, imports left
 * `importing` by a stopped process are marked failed (all of them on the embedded database, which one process owns;
 * on PostgreSQL those whose heartbeat is older than a minute, so other running instances keep theirs); a periodic
 * sweep catches the rest.
 */
export default fp(
  async function datasetsModule(app: FastifyInstance) {
    const { maxBytes, cacheBytes, filesDir, columnarDir } = app.config.datasets;
    const service = createDatasetsService({ db: app.database.db, maxBytes, cacheBytes, filesDir, columnarDir, eventBus: app.eventBus, log: app.log });
    app.decorate('datasetsService', service);
    await app.onDatabaseReady('dataset-import-recovery', () => service.recoverInterrupted(app.database.kind === 'pglite' ? 0 : STALE_IMPORT_MS));
    service.start();
    app.addHook('onClose', async () => service.stop());
    await app.register(datasetsRoutes);
  },
  { name: 'datasets', dependencies: ['db', 'auth', 'event-bus'] },
);
