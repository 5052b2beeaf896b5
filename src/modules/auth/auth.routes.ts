import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { problems } from '../../shared/problem.js';
import { HttpProblem } from '../../errors.js';
import { ChangePasswordBody, CredentialsBody, LoginBody, LoginResponse, RefreshBody, TokenPairResponse, UserResponse } from './auth.schemas.js';
import { normaliseEmail } from './passwords.js';
import type { RequestContext } from './auth.service.js';

const ctx = (request: FastifyRequest): RequestContext => ({ ip: request.ip, requestId: String(request.id) });

/** /auth/*: public login/register/refresh (rate limited per IP and per account), authenticated me/logout/password. */
const authRoutes: FastifyPluginAsyncZod = async (app) => {
  const service = app.authService;
  const { authMax, authWindowMs } = app.config.rateLimit;

  // Per IP: the named policy, counted per route. Per account: one counter per normalised email, shared by login and
  // register (the body is parsed by the time preHandlers run). Both must pass.
  const perIp = { rateLimit: app.rateLimitPolicies.auth };
  const accountLimiter = app.createRateLimit({
    max: authMax,
    timeWindow: authWindowMs,
    keyGenerator: (r: FastifyRequest) => `auth-account:${normaliseEmail(String((r.body as { email?: unknown } | undefined)?.email ?? ''))}`,
  });
  const perAccount = async (request: FastifyRequest) => {
    const result = await accountLimiter(request);
    if (result.isAllowed || !result.isExceeded) return;
    const retryAfter = Math.max(1, result.ttlInSeconds);
    throw new HttpProblem(429, 'RATE_LIMITED', 'Too Many Requests', `Too many attempts for this account; retry in ${retryAfter} s`, {
      headers: {
        'retry-after': String(retryAfter),
        'ratelimit-limit': String(result.max),
        'ratelimit-remaining': '0',
        'ratelimit-reset': String(retryAfter),
      },
    });
  };

  app.post(
    '/register',
    {
      config: perIp,
      preHandler: perAccount,
      schema: {
        tags: ['auth'],
        summary: 'Create an account (role user)',
        body: CredentialsBody,
        response: { 201: UserResponse, ...problems(400, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      const user = await service.register(request.body, ctx(request));
      return reply.code(201).send(user);
    },
  );

  app.post(
    '/login',
    {
      config: perIp,
      preHandler: perAccount,
      schema: {
        tags: ['auth'],
        summary: 'Log in: access token, refresh token and the user',
        body: LoginBody,
        response: { 200: LoginResponse, ...problems(400, 401, 403, 429, 503) },
      },
    },
    async (request) => service.login(request.body, ctx(request)),
  );

  app.post(
    '/refresh',
    {
      config: perIp,
      schema: {
        tags: ['auth'],
        summary: 'Rotate a refresh token: new access and refresh tokens (reuse of an old one ends the session)',
        body: RefreshBody,
        response: { 200: TokenPairResponse, ...problems(400, 401, 429) },
      },
    },
    async (request) => service.refresh(request.body.refreshToken, ctx(request)),
  );

  app.post(
    '/logout',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'End this session (its refresh and access tokens stop working)',
        security: [{ bearerAuth: [] }],
        response: { 204: z.undefined(), ...problems(401, 429) },
      },
    },
    async (request, reply) => {
      await service.logout(request.user, ctx(request));
      return reply.code(204).send();
    },
  );

  app.get(
    '/me',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'The current user',
        security: [{ bearerAuth: [] }],
        response: { 200: UserResponse, ...problems(401, 429) },
      },
    },
    async (request) => service.me(request.authUser),
  );

  app.post(
    '/password',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'Change the password; every session of the user ends (log in again)',
        security: [{ bearerAuth: [] }],
        body: ChangePasswordBody,
        response: { 204: z.undefined(), ...problems(400, 401, 429, 503) },
      },
    },
    async (request, reply) => {
      await service.changePassword(request.user.sub, request.body, ctx(request));
      return reply.code(204).send();
    },
  );
};

export default authRoutes;
