import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createStrategiesService, type StrategiesService } from './strategies.service.js';
import strategiesRoutes from './strategies.routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    strategiesService: StrategiesService;
  }
}

export default fp(
  async function strategiesModule(app: FastifyInstance) {
    app.decorate('strategiesService', createStrategiesService({ db: app.database.db }));
    await app.register(strategiesRoutes);
  },
  { name: 'strategies', dependencies: ['db', 'auth'] },
);
