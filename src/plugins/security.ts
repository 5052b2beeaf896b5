import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import helmet from '@fastify/helmet';
import cors from '@fastify/cors';

/** Security headers (helmet) and a CORS allow-list from CORS_ORIGINS: a disallowed origin gets no CORS headers. */
export default fp(
  async function securityPlugin(app: FastifyInstance) {
    await app.register(helmet, {
      // Swagger UI at /docs needs inline styles/scripts of its own; the API itself serves only JSON.
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'", "'unsafe-inline'"],
          styleSrc: ["'self'", "'unsafe-inline'"],
          imgSrc: ["'self'", 'data:', 'validator.swagger.io'],
        },
      },
    });
    const allowed = new Set(app.config.corsOrigins);
    const any = allowed.has('*');
    await app.register(cors, {
      origin: (origin, cb) => cb(null, origin !== undefined && (any || allowed.has(origin))),
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      allowedHeaders: ['authorization', 'content-type', 'x-request-id', 'idempotency-key'],
      exposedHeaders: ['x-request-id', 'retry-after', 'ratelimit', 'ratelimit-policy', 'location'],
      credentials: false,
      maxAge: 600,
    });
  },
  { name: 'security' },
);
