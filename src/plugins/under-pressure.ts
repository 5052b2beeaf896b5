import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import underPressure from '@fastify/under-pressure';
import { serviceUnavailable } from '../errors.js';

/** Load shedding: 503 + Retry-After (problem+json) while the event loop is saturated. Probes live in the health module. */
export default fp(
  async function underPressurePlugin(app: FastifyInstance) {
    const maxDelay = app.config.maxEventLoopDelayMs;
    await app.register(underPressure, {
      maxEventLoopDelay: maxDelay,
      retryAfter: 5,
      exposeStatusRoute: false,
      pressureHandler: (_request, _reply, type, value) => {
        throw serviceUnavailable(`Server is overloaded (${type}: ${Math.round(Number(value))}); retry shortly`, 5, 'OVERLOADED');
      },
    });
  },
  { name: 'under-pressure' },
);
