import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createMarketService, type MarketService } from './market.service.js';
import marketRoutes from './market.routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    marketService: MarketService;
  }
}

export default fp(
  async function marketModule(app: FastifyInstance) {
    app.decorate('marketService', createMarketService({ trading: app.tradingService }));
    await app.register(marketRoutes);
  },
  { name: 'market', dependencies: ['trading'] },
);
