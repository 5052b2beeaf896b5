import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import type { Config } from './config.js';
import type { Database } from './db/client.js';
import { loggerOptions } from './logger.js';
import { deferredChildLoggerFactory } from './plugins/request-logger.js';
import readiness from './plugins/readiness.js';
import metrics from './plugins/metrics.js';
import db from './plugins/db.js';
import auth from './plugins/auth.js';
import diagnostics from './modules/admin/diagnostics.js';
import security from './plugins/security.js';
import rateLimit from './plugins/rate-limit.js';
import swagger from './plugins/swagger.js';
import underPressure from './plugins/under-pressure.js';
import eventBus from './plugins/event-bus.js';
import workerPool from './plugins/worker-pool.js';
import errorHandler, { sendProblem } from './plugins/error-handler.js';
import api from './modules/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
  }
}

export interface BuildOverrides {
  /** An open database to use instead of opening one from config (tests share one per file). */
  database?: Database;
  /** Where logs go (tests capture them); defaults to stdout. */
  logStream?: NodeJS.WritableStream;
  /** Worker file for the pool instead of workers/backtest.worker (tests: a worker that throws or exits). */
  workerFile?: string;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the application, ready for `inject` or `listen`. Never listens itself (src/server.ts does). */
export async function buildApp(config: Config, overrides: BuildOverrides = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config, overrides.logStream),
    // A caller's x-request-id is kept when it is a safe token (so a proxy's or client's id correlates); otherwise ours.
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    // Each request's child logger (request id binding) is built on its first enabled log line, not up front.
    childLoggerFactory: deferredChildLoggerFactory,
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    return503OnClosing: true,
    // Opening an embedded database on a loaded machine can take well over Fastify's default 10 s.
    pluginTimeout: 60_000,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<ZodTypeProvider>();

  app.decorate('config', config);
  // Synchronous: an async hook costs a promise and a microtask turn on every request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  await app.register(errorHandler);
  await app.register(readiness);
  await app.register(metrics);
  await app.register(diagnostics);
  await app.register(db, { database: overrides.database });
  await app.register(eventBus);
  await app.register(auth);
  await app.register(security);
  await app.register(rateLimit);
  await app.register(swagger);
  await app.register(underPressure);
  await app.register(workerPool, { filename: overrides.workerFile });

  app.setNotFoundHandler(
    { preHandler: app.rateLimit(app.rateLimitPolicies.notFound) },
    (request, reply) => sendProblem(request, reply, 404, 'NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`),
  );

  await app.register(api);
  return app;
}
