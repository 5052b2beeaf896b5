import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { validatorCompiler } from '@fastify/type-provider-zod';
import { serializerCompiler } from '../plugins/serializer.js';
import healthRoutes from './health/health.routes.js';
import authModule from './auth/index.js';
import adminModule from './admin/index.js';
import accountModule from './account/index.js';
import strategiesModule from './strategies/index.js';
import datasetsModule from './datasets/index.js';
import aiStrategyModule from './ai-strategy/index.js';
import tradingModule from './trading/index.js';
import ordersModule from './orders/index.js';
import marketModule from './market/index.js';
import realtimeModule from './realtime/index.js';
import backtestsModule from './backtests/index.js';
import botsModule from './bots/index.js';

/**
 * The API: every domain in this one visible list. Wrapped in fastify-plugin so domain services (app.keysService,
 * app.strategiesService, ...) are visible to the other domains and to tests at the root. That also puts the zod
 * compilers at the root: safe because the ecosystem routes we mount (swagger-ui, /metrics, /openapi.json) carry no
 * validation schemas.
 */
export default fp(async function api(app: FastifyInstance) {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(healthRoutes);
  await app.register(authModule);
  await app.register(adminModule);
  await app.register(accountModule);
  await app.register(strategiesModule);
  await app.register(datasetsModule);
  await app.register(aiStrategyModule);
  await app.register(tradingModule);
  await app.register(ordersModule);
  await app.register(marketModule);
  await app.register(realtimeModule);
  await app.register(backtestsModule);
  await app.register(botsModule);
}, { name: 'api' });
