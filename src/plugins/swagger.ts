import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, jsonSchemaTransformObject } from '@fastify/type-provider-zod';
import { APP_VERSION } from '../shared/version.js';
import { DOCS_PREFIX } from './security.js';

/**
 * The zod transform emits an `<Id>Input` twin of every registered schema; keep only the twins something references,
 * so the SDK does not grow types nobody uses.
 */
function dropUnusedInputVariants<T>(doc: T): T {
  const d = doc as { components?: { schemas?: Record<string, unknown> } };
  const schemas = d.components?.schemas;
  if (!schemas) return doc;
  const text = JSON.stringify({ ...d, components: { ...d.components, schemas: Object.fromEntries(Object.entries(schemas).filter(([k]) => !k.endsWith('Input'))) } });
  for (const name of Object.keys(schemas)) {
    if (name.endsWith('Input') && !text.includes(`"#/components/schemas/${name}"`)) delete schemas[name];
  }
  return doc;
}

/** OpenAPI 3.1 generated from the zod route schemas, served at /openapi.json; Swagger UI at /docs. */
export default fp(
  async function swaggerPlugin(app: FastifyInstance) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Auto-trader API',
          version: APP_VERSION,
          description:
            'Crypto auto-trading backend: accounts, encrypted exchange keys, orders on Binance/Bitget/OKX and a paper exchange, ' +
            'backtests, bots and AI strategy generation. Every error is RFC 9457 application/problem+json.',
        },
        components: {
          securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        },
        tags: [
          { name: 'health', description: 'Liveness, readiness and diagnostics' },
          { name: 'auth', description: 'Accounts and sessions' },
          { name: 'account', description: 'Exchange keys, balances, positions, kill switch' },
          { name: 'admin', description: 'Administration (admin role)' },
          { name: 'strategies', description: 'Strategy documents (JSON DSL)' },
          { name: 'datasets', description: 'OHLCV datasets for backtests' },
          { name: 'backtest', description: 'Backtest jobs' },
          { name: 'orders', description: 'Orders and trade records' },
          { name: 'market', description: 'Public market data' },
          { name: 'bots', description: 'Auto-trading bots' },
          { name: 'ai', description: 'AI strategy generation' },
        ],
      },
      transform: jsonSchemaTransform,
      transformObject: (documentObject) => dropUnusedInputVariants(jsonSchemaTransformObject(documentObject)),
    });
    await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, uiConfig: { docExpansion: 'list', deepLinking: true } });
    app.get('/openapi.json', { schema: { hide: true }, config: { rateLimit: false } }, async () => app.swagger());
  },
  { name: 'swagger' },
);
