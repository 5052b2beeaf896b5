import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createAuthRepository } from './auth.repository.js';
import { createAuthService, type AuthService } from './auth.service.js';
import { Password } from './auth.schemas.js';
import authRoutes from './auth.routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    authService: AuthService;
  }
}

/** The auth domain: service + routes under /auth, and the bootstrap admin from ADMIN_EMAIL/ADMIN_PASSWORD. */
export default fp(
  async function authModule(app: FastifyInstance) {
    const passwords = app.passwords;
    const service = createAuthService({
      db: app.database.db,
      repo: createAuthRepository(app.database.db),
      passwords,
      signAccessToken: (claims) => app.jwt.sign(claims),
      accessTtlSeconds: app.config.auth.accessTtlSeconds,
      refreshTtlSeconds: app.config.auth.refreshTtlSeconds,
      log: app.log,
      invalidateUser: (userId) => app.authStateCache.invalidate(userId),
    });
    app.decorate('authService', service);

    const { adminEmail, adminPassword } = app.config.auth;
    if (adminEmail && adminPassword) {
      app.addHook('onReady', async () => {
        const checked = Password.safeParse(adminPassword);
        if (!checked.success) {
          app.log.error('ADMIN_PASSWORD is refused (12-256 characters): bootstrap admin not created');
          return;
        }
        // A database that is down at boot does not keep the process from starting: this runs once it answers.
        await app.onDatabaseReady('bootstrap-admin', async () => {
          const { created, user } = await service.ensureAdmin({ email: adminEmail, password: adminPassword });
          if (created) app.log.info({ userId: user.id }, 'bootstrap admin created from ADMIN_EMAIL');
        });
      });
    }
    // Warm the dummy hash so the first unknown-email login costs what every other login costs.
    app.addHook('onReady', async () => {
      await passwords.dummyHash();
    });

    await app.register(authRoutes, { prefix: '/auth' });
  },
  { name: 'auth-module', dependencies: ['auth', 'db'] },
);
