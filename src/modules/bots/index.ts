import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Gauge, Histogram } from 'prom-client';
import { createBotsService, type BotsService } from './bots.service.js';
import botsRoutes from './bots.routes.js';

export { botClientOrderId, legsOf } from './bots.runner.js';
export type { BotsService } from './bots.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    botsService: BotsService;
  }
}

/**
 * Auto-trading bots: CRUD and start/stop, the runners (lease per bot, resumed at start), events, reconciliation,
 * and the kill switches, installed as the trading guard the orders service checks before every exchange order.
 */
export default fp(
  async function botsModule(app: FastifyInstance) {
    const cfg = app.config.bots;
    const lag = new Histogram({
      name: 'bot_decision_lag_seconds',
      help: 'Time from a candle closing to the bot deciding on it',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [app.metrics],
    });
    const service = createBotsService({
      db: app.database.db,
      orders: app.ordersService,
      trading: app.tradingService,
      strategies: app.strategiesService,
      keys: app.keysService,
      bus: app.eventBus,
      log: app.log,
      config: {
        requireBacktest: cfg.requireBacktest,
        leaseTtlMs: cfg.leaseTtlMs,
        pollIntervalMs: cfg.pollIntervalMs,
        warmupCandles: cfg.warmupCandles,
        useStream: cfg.watch,
        paperPriceExchange: app.config.exchanges.paperPriceExchange,
        assumedFeeBps: app.config.exchanges.paperFeeBps,
        assumedSlippageBps: app.config.exchanges.paperSlippageBps,
      },
      observeLag: (s) => lag.observe(s),
    });
    app.decorate('botsService', service);
    // The kill switch: every order (API or bot) is refused with 423 while the user's or the global switch is engaged.
    app.tradingGuard.setCheck((userId) => service.guard(userId));
    app.userLifecycle.onDelete(({ userId }) => service.onUserDeleted(userId));

    new Gauge({
      name: 'bots_running',
      help: 'Bots running in this process',
      registers: [app.metrics],
      collect() {
        this.set(service.runningHere().length);
      },
    });
    new Gauge({
      name: 'orders_by_status',
      help: 'Orders in the database by status',
      labelNames: ['status'],
      registers: [app.metrics],
      async collect() {
        this.reset();
        for (const { status, n } of await service.orderCountsByStatus().catch(() => [])) this.set({ status }, n);
      },
    });
    app.diagnostics.register('bots', () => ({ instanceId: service.instanceId, runningHere: service.runningHere() }));

    app.addHook('onReady', () => app.onDatabaseReady('bots-resume', () => service.startScanning()));
    app.addHook('preClose', () => service.close());
    await app.register(botsRoutes);
  },
  { name: 'bots', dependencies: ['db', 'auth', 'account', 'trading', 'orders', 'strategies'] },
);
