import type { FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from '@fastify/type-provider-zod';
import healthRoutes from './health/health.routes.js';
import authModule from './auth/index.js';
import adminModule from './admin/index.js';
import accountModule from './account/index.js';

/**
 * The API scope: zod compilers live here (not at the root) so ecosystem routes with plain JSON schema keep theirs.
 * Every domain is registered in this one visible list.
 */
export default async function api(app: FastifyInstance) {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(healthRoutes);
  await app.register(authModule);
  await app.register(adminModule);
  await app.register(accountModule);
}
