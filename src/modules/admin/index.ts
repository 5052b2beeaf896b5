import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { APP_VERSION } from '../../shared/version.js';
import { createAuditRepository } from '../audit/audit.repository.js';
import { createAuthRepository } from '../auth/auth.repository.js';
import { createAdminRepository } from './admin.repository.js';
import { createAdminService, type AdminService } from './admin.service.js';
import adminRoutes from './admin.routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    adminService: AdminService;
  }
}

/** The admin domain under /admin (users, audit log, dashboard); every route requires the admin role. */
export default fp(
  async function adminModule(app: FastifyInstance) {
    const db = app.database.db;
    app.decorate(
      'adminService',
      createAdminService({
        db,
        repo: createAdminRepository(db),
        authRepo: createAuthRepository(db),
        auditRepo: createAuditRepository(db),
        lifecycle: app.userLifecycle,
        log: app.log,
        invalidateUser: (userId) => app.authStateCache.invalidate(userId),
        status: {
          databaseKind: app.database.kind,
          ping: (timeoutMs) => app.database.ping(timeoutMs),
          readiness: () => app.readiness.run(),
          diagnostics: app.diagnostics,
          version: APP_VERSION,
        },
      }),
    );
    await app.register(adminRoutes, { prefix: '/admin' });
  },
  { name: 'admin-module', dependencies: ['auth', 'db', 'diagnostics'] },
);
