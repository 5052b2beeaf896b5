/**
 * Public market data (no keys) through the exchanges module's adapters, cached briefly in-process
 * (MARKET_CACHE_TTL_MS) so bursts of identical requests cost one exchange call. Unknown symbols answer 400.
 */
import { badRequest } from '../../errors.js';
import type { ExchangeId, Market, MarketType } from '../exchanges/index.js';
import { marketTypeOf, type TradingService } from '../trading/index.js';

export function createMarketService(deps: { trading: TradingService }) {
  const { trading } = deps;

  async function marketFor(exchange: ExchangeId, symbol: string) {
    const marketType = marketTypeOf(symbol);
    const adapter = await trading.publicAdapter(exchange, marketType);
    const market = adapter.markets()[symbol] ?? (await adapter.loadMarkets())[symbol];
    if (!market) {
      throw badRequest(`${exchange} has no ${marketType} market ${symbol}`, 'UNKNOWN_SYMBOL', {
        extensions: { errors: [{ path: '/symbol', message: 'unknown symbol' }] },
      });
    }
    return { adapter, market };
  }

  const view = (m: Market) => ({
    symbol: m.symbol,
    id: m.id,
    base: m.base,
    quote: m.quote,
    settle: m.settle ?? null,
    type: m.type,
    active: m.active,
    contractSize: m.contractSize ?? null,
    precision: m.precision,
    limits: m.limits,
  });

  return {
    async symbols(exchange: ExchangeId, marketType: MarketType) {
      const adapter = await trading.publicAdapter(exchange, marketType);
      const markets = Object.values(adapter.markets());
      const list = markets.length > 0 ? markets : Object.values(await adapter.loadMarkets());
      return { exchange, marketType, items: list.map(view).sort((a, b) => a.symbol.localeCompare(b.symbol)) };
    },

    async ticker(exchange: ExchangeId, symbol: string) {
      const { market } = await marketFor(exchange, symbol);
      const t = await trading.ticker(exchange, market.type, symbol);
      return {
        exchange,
        symbol,
        timestamp: t.timestamp ?? null,
        last: t.last ?? null,
        bid: t.bid ?? null,
        ask: t.ask ?? null,
        high: t.high ?? null,
        low: t.low ?? null,
        baseVolume: t.baseVolume ?? null,
        quoteVolume: t.quoteVolume ?? null,
      };
    },

    async ohlcv(exchange: ExchangeId, symbol: string, timeframe: string, range: { since?: number; limit: number }) {
      const { adapter } = await marketFor(exchange, symbol);
      const key = `ohlcv:${exchange}:${symbol}:${timeframe}:${range.since ?? ''}:${range.limit}`;
      const candles = await trading.marketData.get(key, () => adapter.fetchOHLCV(symbol, timeframe, range));
      return { exchange, symbol, timeframe, candles };
    },
  };
}

export type MarketService = ReturnType<typeof createMarketService>;
