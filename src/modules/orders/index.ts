import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createOrdersService, type OrdersService } from './orders.service.js';
import ordersRoutes from './orders.routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    ordersService: OrdersService;
  }
}

export default fp(
  async function ordersModule(app: FastifyInstance) {
    const service = createOrdersService({
      db: app.database.db,
      trading: app.tradingService,
      bus: app.eventBus,
      log: app.log,
      exchangeTimeoutMs: app.config.exchanges.timeoutMs,
      syncIntervalMs: app.config.exchanges.orderSyncIntervalMs,
    });
    app.decorate('ordersService', service);
    // Pending rows left by a crash or a timeout, and open orders, are reconciled from startup on.
    app.addHook('onReady', () => app.onDatabaseReady('order-reconciliation', async () => service.start()));
    app.addHook('preClose', () => service.stop());
    await app.register(ordersRoutes);
  },
  { name: 'orders', dependencies: ['db', 'auth', 'account', 'trading'] },
);
