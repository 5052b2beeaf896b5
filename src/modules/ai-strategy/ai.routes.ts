import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { problems } from '../../shared/problem.js';
import { auditContext } from '../audit/index.js';
import { GenerateBody, GenerateResponse, HistoryDetail, HistoryPage, HistoryParams, HistoryQuery, ModelList } from './ai.schemas.js';

const security = [{ bearerAuth: [] }];
const tags = ['ai'];

/** AI strategy generation (the original backend's `/ai_strategy/generate`), the provider's models, and the history. */
const aiRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.authenticate);
  const service = app.aiService;

  app.post(
    '/ai_strategy/generate',
    {
      schema: {
        tags,
        summary: 'Generate a strategy document from a description (optionally save it and start a backtest)',
        description:
          'The model answers in JSON mode; its document is validated with the same parser as user strategies and repaired ' +
          'by the model when invalid (at most 2 repair rounds), then returned as data. `save` stores it as an AI ' +
          'strategy with the prompt; `backtest` saves it and starts a backtest on one of your datasets. Every attempt ' +
          'counts against the daily quota (AI_DAILY_QUOTA per UTC day; 429 AI_QUOTA_EXCEEDED with Retry-After until ' +
          'midnight UTC) and is listed in GET /ai_strategy/history. Errors: 503 AI_NOT_CONFIGURED without an API key; ' +
          '422 AI_STRATEGY_INVALID (with `errors`) when still invalid after the repairs; 502 when the provider refuses our ' +
          'key or fails; 503 (+ Retry-After) when it is rate limited, overloaded or out of balance; 504 on timeout.',
        security,
        body: GenerateBody,
        response: { 200: GenerateResponse, ...problems(400, 401, 404, 409, 422, 429, 500, 502, 503, 504) },
      },
    },
    async (request, reply) => {
      // Give up on the provider when the client goes away.
      const ac = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableEnded) ac.abort();
      };
      reply.raw.once('close', onClose);
      try {
        return await service.generate(request.user.sub, request.body, auditContext(request), ac.signal);
      } finally {
        reply.raw.off('close', onClose);
      }
    },
  );

  app.get(
    '/ai_strategy/models',
    {
      schema: {
        tags,
        summary: 'Models the AI provider offers, and the configured one',
        security,
        response: { 200: ModelList, ...problems(401, 429, 502, 503, 504) },
      },
    },
    async () => service.models(),
  );

  app.get(
    '/ai_strategy/history',
    {
      schema: {
        tags,
        summary: 'Your AI generations (every attempt, with its outcome), newest first',
        security,
        querystring: HistoryQuery,
        response: { 200: HistoryPage, ...problems(400, 401, 429) },
      },
    },
    async (request) => service.history(request.user.sub, request.query),
  );

  app.get(
    '/ai_strategy/history/:id',
    {
      schema: {
        tags,
        summary: 'One of your AI generations, with the request options, the explanation and the raw answer',
        security,
        params: HistoryParams,
        response: { 200: HistoryDetail, ...problems(400, 401, 404, 429) },
      },
    },
    async (request) => service.historyEntry(request.user.sub, request.params.id),
  );
};

export default aiRoutes;
