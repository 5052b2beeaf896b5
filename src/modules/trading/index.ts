import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createTradingService, type TradingGuard, type TradingService } from './trading.service.js';

export { PAPER_KEY_ID, marketTypeOf, isExchangeId, type ResolvedAccount, type TradingGuard, type TradingService } from './trading.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    tradingService: TradingService;
    /** Kill-switch hook point: `await app.tradingGuard.assertAllowed(userId)` before any order is written. */
    tradingGuard: TradingGuard;
  }
}

/** Shared adapter resolution (saved keys, paper accounts, public market data) for the orders and market domains. */
export default fp(
  async function tradingModule(app: FastifyInstance) {
    const service = createTradingService({ db: app.database.db, config: app.config, keys: app.keysService, log: app.log });
    app.decorate('tradingService', service);
    app.decorate('tradingGuard', service.guard);
    app.addHook('onClose', () => service.close());
  },
  { name: 'trading', dependencies: ['db', 'account'] },
);
