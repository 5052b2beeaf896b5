import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { problems } from '../../shared/problem.js';
import { APP_VERSION } from '../../shared/version.js';
import { HttpProblem, serviceUnavailable } from '../../errors.js';

const CheckResult = z.object({ ok: z.boolean(), detail: z.string().optional() });

const noLimit = { rateLimit: false } as const;

/** The original backend's probe paths. None of them is rate limited. */
const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/health',
    {
      config: noLimit,
      schema: {
        tags: ['health'],
        summary: 'Service status, version and uptime',
        response: {
          200: z.object({ status: z.literal('ok'), version: z.string(), uptimeSeconds: z.number(), timestamp: z.iso.datetime() }),
        },
      },
    },
    async () => ({
      status: 'ok' as const,
      version: APP_VERSION,
      uptimeSeconds: Math.round(process.uptime() * 10) / 10,
      timestamp: new Date().toISOString(),
    }),
  );

  app.get(
    '/health/live',
    {
      config: noLimit,
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process answers (touches nothing external)',
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/health/db',
    {
      config: noLimit,
      schema: {
        tags: ['health'],
        summary: 'Database round trip with latency',
        response: {
          200: z.object({ status: z.literal('ok'), database: z.enum(['postgres', 'pglite']), latencyMs: z.number() }),
          ...problems(503),
        },
      },
    },
    async () => {
      try {
        const latencyMs = await app.database.ping(2000);
        return { status: 'ok' as const, database: app.database.kind, latencyMs: Math.round(latencyMs * 100) / 100 };
      } catch (err) {
        app.log.warn({ err: (err as Error).message }, 'database health check failed');
        throw serviceUnavailable(`Database (${app.database.kind}) is unreachable`, 5, 'DATABASE_UNAVAILABLE');
      }
    },
  );

  app.get(
    '/health/ready',
    {
      config: noLimit,
      schema: {
        tags: ['health'],
        summary: 'Readiness: database, migrations, worker pool, feeds; 503 lists the failing checks',
        response: {
          200: z.object({ status: z.literal('ready'), checks: z.record(z.string(), CheckResult) }),
          ...problems(503),
        },
      },
    },
    async () => {
      const { ready, checks } = await app.readiness.run();
      if (!ready) {
        const failing = Object.entries(checks).filter(([, c]) => !c.ok);
        const detail = `Not ready: ${failing.map(([n, c]) => `${n} (${c.detail ?? 'failed'})`).join('; ')}`;
        throw new HttpProblem(503, 'NOT_READY', 'Service Unavailable', detail, { extensions: { checks }, headers: { 'retry-after': '5' } });
      }
      return { status: 'ready' as const, checks };
    },
  );
};

export default healthRoutes;
