import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { problems } from '../../shared/problem.js';
import { auditContext } from '../audit/index.js';
import {
  BotEventPage,
  BotEventsQuery,
  BotPage,
  BotParams,
  BotView,
  CreateBotBody,
  KillSwitchBody,
  KillSwitchResult,
  KillSwitchView,
  ListBotsQuery,
  Reconciliation,
  UpdateBotBody,
} from './bots.schemas.js';

const security = [{ bearerAuth: [] }];
const tags = ['bots'];

/** Bots (owner-only; another user's bot answers 404) and the kill switches. */
const botsRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.authenticate);
  const svc = () => app.botsService;

  app.post(
    '/bots',
    {
      schema: {
        tags,
        summary: 'Create a bot (stopped): a pinned strategy version on one symbol and timeframe, with sizing and risk limits',
        security,
        body: CreateBotBody,
        response: { 201: BotView, ...problems(400, 401, 404, 429) },
      },
    },
    async (request, reply) => {
      const bot = await svc().create(request.user.sub, request.body, auditContext(request));
      return reply.code(201).header('location', `/bots/${bot.id}`).send(bot);
    },
  );

  app.get(
    '/bots',
    { schema: { tags, summary: 'Your bots, newest first', security, querystring: ListBotsQuery, response: { 200: BotPage, ...problems(400, 401, 429) } } },
    async (request) => svc().list(request.user.sub, request.query),
  );

  app.get(
    '/bots/:id',
    { schema: { tags, summary: 'One of your bots', security, params: BotParams, response: { 200: BotView, ...problems(400, 401, 404, 429) } } },
    async (request) => svc().get(request.user.sub, request.params.id),
  );

  app.patch(
    '/bots/:id',
    {
      schema: {
        tags,
        summary: 'Change a bot (only while it is not running: 409 otherwise)',
        security,
        params: BotParams,
        body: UpdateBotBody,
        response: { 200: BotView, ...problems(400, 401, 404, 409, 429) },
      },
    },
    async (request) => svc().update(request.user.sub, request.params.id, request.body, auditContext(request)),
  );

  app.delete(
    '/bots/:id',
    { schema: { tags, summary: 'Delete a bot (stops it first)', security, params: BotParams, response: { 204: z.undefined(), ...problems(400, 401, 404, 429) } } },
    async (request, reply) => {
      await svc().remove(request.user.sub, request.params.id, auditContext(request));
      return reply.code(204).send();
    },
  );

  app.post(
    '/bots/:id/start',
    {
      schema: {
        tags,
        summary: 'Start a bot',
        description:
          'A bot on a real exchange needs a succeeded backtest of its strategy version (409 BACKTEST_REQUIRED; paper bots are exempt). 423 while the kill switch is engaged.',
        security,
        params: BotParams,
        response: { 200: BotView, ...problems(400, 401, 404, 409, 422, 423, 429) },
      },
    },
    async (request) => svc().start(request.user.sub, request.params.id, auditContext(request)),
  );

  app.post(
    '/bots/:id/stop',
    { schema: { tags, summary: 'Stop a bot (also clears a paused or error state)', security, params: BotParams, response: { 200: BotView, ...problems(400, 401, 404, 429) } } },
    async (request) => svc().stop(request.user.sub, request.params.id, auditContext(request)),
  );

  app.get(
    '/bots/:id/events',
    {
      schema: {
        tags,
        summary: 'Decisions, orders, fills, skips, risk trips and errors of a bot, newest first',
        security,
        params: BotParams,
        querystring: BotEventsQuery,
        response: { 200: BotEventPage, ...problems(400, 401, 404, 429) },
      },
    },
    async (request) => svc().events(request.user.sub, request.params.id, request.query),
  );

  app.get(
    '/bots/:id/reconciliation',
    {
      schema: {
        tags,
        summary: 'Replay the candles the bot saw through the engine and compare with the orders it placed',
        security,
        params: BotParams,
        response: { 200: Reconciliation, ...problems(400, 401, 404, 429) },
      },
    },
    async (request) => svc().reconciliation(request.user.sub, request.params.id),
  );

  // ---- kill switch ----------------------------------------------------------------------------------------------
  app.get(
    '/account/kill-switch',
    { schema: { tags: ['account'], summary: 'Your kill switch', security, response: { 200: KillSwitchView, ...problems(401, 429) } } },
    async (request) => svc().killSwitchStatus(request.user.sub),
  );

  app.post(
    '/account/kill-switch',
    {
      schema: {
        tags: ['account'],
        summary: 'Engage your kill switch: stop every bot, cancel open orders on every exchange, refuse new orders (423) until released',
        security,
        body: KillSwitchBody,
        response: { 200: KillSwitchResult, ...problems(400, 401, 429) },
      },
    },
    async (request) => svc().engageKillSwitch(request.user.sub, request.body?.reason, auditContext(request)),
  );

  const release = async (request: { user: { sub: string } } & Parameters<typeof auditContext>[0]) =>
    svc().releaseKillSwitch(request.user.sub, auditContext(request));
  app.delete(
    '/account/kill-switch',
    { schema: { tags: ['account'], summary: 'Release your kill switch', security, response: { 200: KillSwitchView, ...problems(401, 429) } } },
    async (request) => release(request),
  );
  app.post(
    '/account/kill-switch/release',
    { schema: { tags: ['account'], summary: 'Release your kill switch (same as DELETE)', security, response: { 200: KillSwitchView, ...problems(401, 429) } } },
    async (request) => release(request),
  );

  const admin = { preHandler: app.requireRole('admin') };
  app.get(
    '/admin/kill-switch',
    { ...admin, schema: { tags: ['admin'], summary: 'The global kill switch', security, response: { 200: KillSwitchView, ...problems(401, 403, 429) } } },
    async () => svc().globalKillSwitchStatus(),
  );
  app.post(
    '/admin/kill-switch',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        summary: 'Engage the global kill switch: every bot stops, every order is refused (423) until released',
        security,
        body: KillSwitchBody,
        response: { 200: KillSwitchResult, ...problems(400, 401, 403, 429) },
      },
    },
    async (request) => svc().engageGlobalKillSwitch(request.body?.reason, auditContext(request)),
  );
  app.delete(
    '/admin/kill-switch',
    { ...admin, schema: { tags: ['admin'], summary: 'Release the global kill switch', security, response: { 200: KillSwitchView, ...problems(401, 403, 429) } } },
    async (request) => svc().releaseGlobalKillSwitch(auditContext(request)),
  );
};

export default botsRoutes;
