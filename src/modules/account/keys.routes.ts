import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { problems } from '../../shared/problem.js';
import { auditContext } from '../audit/index.js';
import { ExchangeKey, KeyIdParams, SaveKeysBody } from './keys.schemas.js';

const security = [{ bearerAuth: [] }];

/** The exchange-key vault (the original backend's `/account/save_keys`, plus list and delete). */
const keysRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.authenticate);

  app.post(
    '/account/save_keys',
    {
      schema: {
        tags: ['account'],
        summary: 'Verify and store an exchange credential set (encrypted; never returned)',
        description:
          'The keys are verified with a signed call to the exchange first; keys that can withdraw funds are refused (422 KEY_CAN_WITHDRAW) where the exchange reports it.',
        security,
        body: SaveKeysBody,
        response: { 201: ExchangeKey, ...problems(400, 401, 422, 429, 502, 503, 504) },
      },
    },
    async (request, reply) => {
      const key = await app.keysService.save(request.user.sub, request.body, auditContext(request));
      return reply.code(201).header('location', `/account/keys/${key.id}`).send(key);
    },
  );

  app.get(
    '/account/keys',
    {
      schema: {
        tags: ['account'],
        summary: 'List your exchange keys (masked)',
        security,
        response: { 200: z.object({ items: z.array(ExchangeKey) }), ...problems(401, 429) },
      },
    },
    async (request) => ({ items: await app.keysService.list(request.user.sub) }),
  );

  app.get(
    '/account/keys/:id',
    {
      schema: {
        tags: ['account'],
        summary: 'One of your exchange keys (masked)',
        security,
        params: KeyIdParams,
        response: { 200: ExchangeKey, ...problems(400, 401, 404, 429) },
      },
    },
    async (request) => app.keysService.get(request.user.sub, request.params.id),
  );

  app.delete(
    '/account/keys/:id',
    {
      schema: {
        tags: ['account'],
        summary: 'Delete one of your exchange keys',
        security,
        params: KeyIdParams,
        response: { 204: z.undefined(), ...problems(400, 401, 404, 429) },
      },
    },
    async (request, reply) => {
      await app.keysService.remove(request.user.sub, request.params.id, auditContext(request));
      return reply.code(204).send();
    },
  );

  app.post(
    '/admin/keys/rotate',
    {
      preHandler: app.requireRole('admin'),
      schema: {
        tags: ['admin'],
        summary: 'Re-encrypt every stored credential with the newest ENCRYPTION_KEY entry',
        description: 'Same as `npm run keys:rotate`; safe while the service runs (compare-and-set per row).',
        security,
        response: { 200: z.object({ scanned: z.number().int(), rotated: z.number().int() }), ...problems(401, 403, 429) },
      },
    },
    async () => app.keysService.rotateAll(),
  );
};

export default keysRoutes;
