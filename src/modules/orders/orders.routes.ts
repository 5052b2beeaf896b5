import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { problems } from '../../shared/problem.js';
import { auditContext } from '../audit/index.js';
import {
  AccountQuery,
  BalanceView,
  OrderGetQuery,
  OrderHistoryQuery,
  OrderIdParams,
  OrderPage,
  OrderView,
  PositionsView,
  SubmitOrderBody,
  TradePage,
  TradesQuery,
} from './orders.schemas.js';

const security = [{ bearerAuth: [] }];
/** What an exchange call can answer besides success (see src/modules/exchanges/README.md). */
const exchangeProblems = problems(400, 401, 404, 422, 429, 502, 503, 504);

/** Balances, positions, idempotent orders, order history and trades, for saved keys and the paper account. */
const ordersRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.authenticate);
  const svc = app.ordersService;

  app.get(
    '/account/balance',
    {
      schema: {
        tags: ['trading'],
        summary: 'Balances of a saved key or the paper account (decimal strings)',
        security,
        querystring: AccountQuery,
        response: { 200: BalanceView, ...exchangeProblems },
      },
    },
    async (request) => svc.balance(request.user.sub, request.query.keyId, request.query.marketType),
  );

  app.get(
    '/account/positions',
    {
      schema: {
        tags: ['trading'],
        summary: 'Open swap positions of a saved key (spot keys have none) or the paper swap account',
        security,
        querystring: AccountQuery.pick({ keyId: true }),
        response: { 200: PositionsView, ...exchangeProblems },
      },
    },
    async (request) => svc.positions(request.user.sub, request.query.keyId),
  );

  app.post(
    '/order/submit',
    {
      schema: {
        tags: ['trading'],
        summary: 'Place an order (idempotent per clientOrderId)',
        description:
          'Validated against the market precision and limits first (422 ORDER_LIMIT_VIOLATION naming the limit). The order row is written before the exchange is called; the same clientOrderId returns the existing order (200) and never places a second one. 201: placed now. 202: the exchange did not answer in time; the order stays `pending` and is reconciled in the background by its client order id within seconds. 423 while the kill switch is engaged.',
        security,
        body: SubmitOrderBody,
        response: { 200: OrderView, 201: OrderView, 202: OrderView, ...exchangeProblems, ...problems(409, 423) },
      },
    },
    async (request, reply) => {
      const { order, status } = await svc.submit(request.user.sub, request.body, auditContext(request));
      if (status === 201) reply.header('location', `/order/${order.id}`);
      return reply.code(status).send(order);
    },
  );

  app.get(
    '/order/history',
    {
      schema: {
        tags: ['trading'],
        summary: 'Your orders, newest first (cursor pagination, filters)',
        security,
        querystring: OrderHistoryQuery,
        response: { 200: OrderPage, ...problems(400, 401, 429) },
      },
    },
    async (request) => svc.history(request.user.sub, request.query),
  );

  app.get(
    '/order/:id',
    {
      schema: {
        tags: ['trading'],
        summary: 'One of your orders (`sync=true` refreshes it from the exchange)',
        security,
        params: OrderIdParams,
        querystring: OrderGetQuery,
        response: { 200: OrderView, ...exchangeProblems },
      },
    },
    async (request) => svc.get(request.user.sub, request.params.id, { sync: request.query.sync }),
  );

  app.post(
    '/order/:id/cancel',
    {
      schema: {
        tags: ['trading'],
        summary: 'Cancel one of your open orders',
        security,
        params: OrderIdParams,
        response: { 200: OrderView, ...exchangeProblems, ...problems(409) },
      },
    },
    async (request) => svc.cancel(request.user.sub, request.params.id, auditContext(request)),
  );

  app.get(
    '/trades',
    {
      schema: {
        tags: ['trading'],
        summary: 'Your fills, newest first (cursor pagination, filters)',
        security,
        querystring: TradesQuery,
        response: { 200: TradePage, ...problems(400, 401, 429) },
      },
    },
    async (request) => svc.trades(request.user.sub, request.query),
  );
};

export default ordersRoutes;
