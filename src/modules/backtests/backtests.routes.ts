import type { FastifyPluginAsyncZod, ZodTypeProvider } from '@fastify/type-provider-zod';
import { problems } from '../../shared/problem.js';
import { auditContext } from '../audit/index.js';
import {
  BacktestPage,
  BacktestParams,
  BacktestResult,
  BacktestSummary,
  HistoryQuery,
  ResultQuery,
  StartBacktestBody,
  StartBacktestResponse,
} from './backtests.schemas.js';

const security = [{ bearerAuth: [] }];
const tags = ['backtests'];

/** Backtests of strategies on datasets, run on the worker pool (paths of the original backend: /backtest/*). */
const backtestsRoutes: FastifyPluginAsyncZod = async (app) => {
  const service = app.backtestsService;

  app.register(async (authed) => {
    authed.addHook('onRequest', app.authenticate);
    const r = authed.withTypeProvider<ZodTypeProvider>();

    r.post(
      '/backtest/start',
      {
        schema: {
          tags,
          summary: 'Queue a backtest of a saved (`strategyId`) or inline (`strategy`) strategy on one of your datasets',
          description:
            'Everything is validated before the job is queued: strategy and params (400 listing each issue with its JSON path), ' +
            'dataset and strategy (404), dataset readiness (409). 503 with Retry-After when the queue is full. Poll the Location.',
          security,
          body: StartBacktestBody,
          response: { 202: StartBacktestResponse, ...problems(400, 401, 404, 409, 429, 503) },
        },
      },
      async (request, reply) => {
        const started = await service.start(request.user.sub, request.body, auditContext(request));
        const location = `/backtest/result/${started.id}`;
        return reply.code(202).header('location', location).send({ ...started, location });
      },
    );

    r.get(
      '/backtest/result/:id',
      {
        schema: {
          tags,
          summary: 'Status, progress and (once succeeded) the result: metrics, a page of trades, the equity curve on request',
          security,
          params: BacktestParams,
          querystring: ResultQuery,
          response: { 200: BacktestResult, ...problems(400, 401, 404, 429) },
        },
      },
      async (request) => service.result(request.user.sub, request.params.id, request.query),
    );

    r.get(
      '/backtest/history',
      {
        schema: { tags, summary: 'Your backtests, newest first', security, querystring: HistoryQuery, response: { 200: BacktestPage, ...problems(400, 401, 429) } },
      },
      async (request) => service.history(request.user.sub, request.query),
    );

    r.post(
      '/backtest/:id/cancel',
      {
        schema: {
          tags,
          summary: 'Cancel a queued or running backtest (a running one is aborted); 409 when it already finished',
          security,
          params: BacktestParams,
          response: { 200: BacktestSummary, ...problems(400, 401, 404, 409, 429) },
        },
      },
      async (request) => service.cancel(request.user.sub, request.params.id, auditContext(request)),
    );
  });
};

export default backtestsRoutes;
