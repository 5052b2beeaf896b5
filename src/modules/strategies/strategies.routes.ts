import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { problems } from '../../shared/problem.js';
import { auditContext } from '../audit/index.js';
import {
  CreateStrategyBody,
  ListStrategiesQuery,
  Strategy,
  StrategyPage,
  StrategyParams,
  UpdateStrategyBody,
  ValidateBody,
  ValidateResponse,
  VersionList,
  VersionQuery,
} from './strategies.schemas.js';

const security = [{ bearerAuth: [] }];
const tags = ['strategies'];

/** Per-user strategy documents in the JSON DSL, versioned. */
const strategiesRoutes: FastifyPluginAsyncZod = async (app) => {
  const service = app.strategiesService;

  // Public: the DSL's JSON Schema (for editors, SDK users and the AI prompt).
  app.get(
    '/strategies/schema',
    {
      schema: { tags, summary: 'JSON Schema of the strategy DSL (version 1)', response: { 200: z.record(z.string(), z.unknown()) } },
    },
    async () => service.jsonSchema(),
  );

  app.register(async (authed) => {
    authed.addHook('onRequest', app.authenticate);
    const r = authed.withTypeProvider<import('@fastify/type-provider-zod').ZodTypeProvider>();

    r.post(
      '/strategies/validate',
      {
        schema: { tags, summary: 'Check a document without saving it', security, body: ValidateBody, response: { 200: ValidateResponse, ...problems(400, 401, 429) } },
      },
      async (request) => service.check(request.body.document),
    );

    r.post(
      '/strategies',
      {
        schema: {
          tags,
          summary: 'Create a strategy (version 1); invalid documents answer 400 listing each issue with its JSON path',
          security,
          body: CreateStrategyBody,
          response: { 201: Strategy, ...problems(400, 401, 429) },
        },
      },
      async (request, reply) => {
        const created = await service.create(request.user.sub, request.body, auditContext(request));
        return reply.code(201).header('location', `/strategies/${created.id}`).send(created);
      },
    );

    r.get(
      '/strategies',
      { schema: { tags, summary: 'Your strategies, newest first', security, querystring: ListStrategiesQuery, response: { 200: StrategyPage, ...problems(400, 401, 429) } } },
      async (request) => service.list(request.user.sub, request.query),
    );

    r.get(
      '/strategies/:id',
      {
        schema: { tags, summary: 'A strategy with its document (latest or `?version=`)', security, params: StrategyParams, querystring: VersionQuery, response: { 200: Strategy, ...problems(400, 401, 404, 429) } },
      },
      async (request) => service.get(request.user.sub, request.params.id, request.query.version),
    );

    r.get(
      '/strategies/:id/versions',
      { schema: { tags, summary: 'The versions of a strategy', security, params: StrategyParams, response: { 200: VersionList, ...problems(400, 401, 404, 429) } } },
      async (request) => service.versions(request.user.sub, request.params.id),
    );

    r.put(
      '/strategies/:id',
      {
        schema: { tags, summary: 'Update a strategy: adds a new version; old versions stay readable', security, params: StrategyParams, body: UpdateStrategyBody, response: { 200: Strategy, ...problems(400, 401, 404, 429) } },
      },
      async (request) => service.update(request.user.sub, request.params.id, request.body, auditContext(request)),
    );

    r.delete(
      '/strategies/:id',
      { schema: { tags, summary: 'Delete a strategy and its versions', security, params: StrategyParams, response: { 204: z.undefined(), ...problems(400, 401, 404, 429) } } },
      async (request, reply) => {
        await service.remove(request.user.sub, request.params.id, auditContext(request));
        return reply.code(204).send();
      },
    );
  });
};

export default strategiesRoutes;
