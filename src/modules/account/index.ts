import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createVault, type Vault } from './vault.js';
import { ConfigError } from '../../config.js';
import { createKeysService, type KeyVerifier, type KeysService } from './keys.service.js';
import keysRoutes from './keys.routes.js';
import { createCcxtAdapter, parseExchangeUrls } from '../exchanges/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    vault: Vault;
    keysService: KeysService;
  }
}

/** Verifies credentials against the exchange itself (or the URL override of EXCHANGE_URLS) with a signed call. */
export function ccxtKeyVerifier(app: FastifyInstance): KeyVerifier {
  const urls = parseExchangeUrls(app.config.exchanges.urls);
  return async (c) => {
    const adapter = createCcxtAdapter({
      exchange: c.exchange,
      credentials: { apiKey: c.apiKey, secret: c.secret, passphrase: c.passphrase },
      sandbox: c.sandbox,
      marketType: c.marketType,
      urls: urls[c.exchange],
      timeoutMs: app.config.exchanges.timeoutMs,
    });
    try {
      return await adapter.verifyCredentials();
    } finally {
      await adapter.close();
    }
  };
}

export default fp(
  async function accountModule(app: FastifyInstance) {
    const vault = createVault(app.config.encryptionKey);
    app.decorate('vault', vault);
    const service = createKeysService({ db: app.database.db, vault, verify: ccxtKeyVerifier(app), log: app.log });
    app.decorate('keysService', service);
    await app.onDatabaseReady(
      'key-ring-check',
      async () => {
        const problems = await service.checkRing().catch((err: Error) => {
          app.log.warn({ err: err.message }, 'stored credentials not checked against ENCRYPTION_KEY (schema not migrated yet?)');
          return [];
        });
        if (problems.length) throw new ConfigError(problems.map((p) => `ENCRYPTION_KEY cannot decrypt stored exchange keys: ${p}`));
      },
      { fatal: true },
    );
    await app.register(keysRoutes);
  },
  { name: 'account', dependencies: ['db', 'auth'] },
);
