import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { problems } from '../../shared/problem.js';
import { UserResponse } from '../auth/auth.schemas.js';
import type { RequestContext } from '../auth/auth.service.js';
import { AuditList, AuditQuery, DashboardResponse, ListUsersQuery, UpdateUserBody, UserIdParams, UserList } from './admin.schemas.js';

const ctx = (request: FastifyRequest): RequestContext => ({ actorId: request.user.sub, ip: request.ip, requestId: String(request.id) });
const security = [{ bearerAuth: [] }];

/** /admin/*: the whole scope requires an authenticated admin (401 without a valid token, 403 for other roles). */
const adminRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.authenticate);
  app.addHook('onRequest', app.requireRole('admin'));
  const service = app.adminService;

  app.get(
    '/users',
    {
      schema: {
        tags: ['admin'],
        summary: 'List users (newest first), optionally by email substring',
        security,
        querystring: ListUsersQuery,
        response: { 200: UserList, ...problems(400, 401, 403, 429) },
      },
    },
    async (request) => service.listUsers(request.query),
  );

  app.get(
    '/users/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'One user',
        security,
        params: UserIdParams,
        response: { 200: UserResponse, ...problems(400, 401, 403, 404, 429) },
      },
    },
    async (request) => service.getUser(request.params.id),
  );

  app.patch(
    '/users/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Change role and/or disabled (effective on the user’s next request; the last active admin is protected)',
        security,
        params: UserIdParams,
        body: UpdateUserBody,
        response: { 200: UserResponse, ...problems(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request) => service.updateUser(request.params.id, request.body, ctx(request)),
  );

  app.delete(
    '/users/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Delete a user and everything they own (the last active admin is protected)',
        security,
        params: UserIdParams,
        response: { 204: z.undefined(), ...problems(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      await service.deleteUser(request.params.id, { ...ctx(request), log: request.log });
      return reply.code(204).send();
    },
  );

  app.get(
    '/audit',
    {
      schema: {
        tags: ['admin'],
        summary: 'Audit log (newest first), filterable by action, actor, target and time range',
        security,
        querystring: AuditQuery,
        response: { 200: AuditList, ...problems(400, 401, 403, 429) },
      },
    },
    async (request) => {
      const { from, to, ...rest } = request.query;
      return service.listAudit({ ...rest, from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined });
    },
  );

  app.get(
    '/dashboard',
    {
      schema: {
        tags: ['admin'],
        summary: 'Users, database latency, readiness, process, recent 5xx and subsystem state',
        security,
        response: { 200: DashboardResponse, ...problems(401, 403, 429) },
      },
    },
    async () => service.dashboard(),
  );
};

export default adminRoutes;
