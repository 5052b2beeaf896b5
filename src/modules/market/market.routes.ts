import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { problems } from '../../shared/problem.js';
import type { TIMEFRAMES } from './market.schemas.js';
import { OhlcvQuery, OhlcvView, SymbolsQuery, SymbolsView, TickerQuery, TickerView } from './market.schemas.js';

const upstream = problems(400, 422, 429, 502, 503, 504);

/** Public market data: no authentication (rate limited per IP like every anonymous call). */
const marketRoutes: FastifyPluginAsyncZod = async (app) => {
  const svc = app.marketService;

  app.get(
    '/market/symbols',
    {
      schema: {
        tags: ['market'],
        summary: 'Markets of an exchange (precision and limits)',
        querystring: SymbolsQuery,
        response: { 200: SymbolsView, ...upstream },
      },
    },
    async (request) => svc.symbols(request.query.exchange, request.query.marketType),
  );

  app.get(
    '/market/ticker',
    {
      schema: {
        tags: ['market'],
        summary: 'Latest ticker of a symbol (cached a few seconds)',
        querystring: TickerQuery,
        response: { 200: TickerView, ...upstream },
      },
    },
    async (request) => svc.ticker(request.query.exchange, request.query.symbol),
  );

  app.get(
    '/market/ohlcv',
    {
      schema: {
        tags: ['market'],
        summary: 'Candles of a symbol (cached a few seconds)',
        querystring: OhlcvQuery,
        response: { 200: OhlcvView, ...upstream },
      },
    },
    async (request) => {
      const q = request.query;
      const out = await svc.ohlcv(q.exchange, q.symbol, q.timeframe, { since: q.since, limit: q.limit });
      return { ...out, timeframe: out.timeframe as (typeof TIMEFRAMES)[number] };
    },
  );
};

export default marketRoutes;
