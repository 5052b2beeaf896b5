import path from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createMarketService, type MarketService } from './market.service.js';
import { createDownloadService, type DownloadService } from './download.service.js';
import marketRoutes from './market.routes.js';
import downloadRoutes from './download.routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    marketService: MarketService;
    downloadService: DownloadService;
  }
}

/** Public market data, and exchange history downloads into datasets. */
export default fp(
  async function marketModule(app: FastifyInstance) {
    app.decorate('marketService', createMarketService({ trading: app.tradingService }));
    const downloads = createDownloadService({
      db: app.database.db,
      trading: app.tradingService,
      datasets: app.datasetsService,
      bus: app.eventBus,
      log: app.log,
      dir: path.join(app.config.db.dataDir, 'downloads'),
    });
    app.decorate('downloadService', downloads);
    // Jobs an earlier process left unfinished continue (launched before the app reports ready).
    app.addHook('onReady', () => app.onDatabaseReady('dataset-download-resume', () => downloads.resumeAll()));
    app.addHook('preClose', () => downloads.stop());
    await app.register(marketRoutes);
    await app.register(downloadRoutes);
  },
  { name: 'market', dependencies: ['trading', 'datasets'] },
);
