import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/client.js';
import { conflict, notFound } from '../../errors.js';
import { audit, type AuditRepository, type AuditFilter } from '../audit/audit.repository.js';
import type { AuthRepository, Role } from '../auth/auth.repository.js';
import { toPublicUser, type PublicUser, type RequestContext } from '../auth/auth.service.js';
import type { UserLifecycle } from '../../plugins/auth.js';
import type { AdminRepository } from './admin.repository.js';
import type { Diagnostics } from './diagnostics.js';

export interface AdminServiceDeps {
  db: Db;
  repo: AdminRepository;
  authRepo: Pick<AuthRepository, 'revokeAllForUser'>;
  auditRepo: Pick<AuditRepository, 'list'>;
  lifecycle: Pick<UserLifecycle, 'runDelete'>;
  log: FastifyBaseLogger;
  /** Called after a committed change to a user (drops the per-process auth state cache). */
  invalidateUser: (userId: string) => void;
  status: {
    databaseKind: 'postgres' | 'pglite';
    ping: (timeoutMs?: number) => Promise<number>;
    readiness: () => Promise<{ ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> }>;
    diagnostics: Pick<Diagnostics, 'collect' | 'recentErrors'>;
    version: string;
  };
}

const LAST_ADMIN = (what: string) => conflict(`Cannot ${what} the last active admin`, 'LAST_ADMIN');

/** User administration. Every change is audited in its own transaction; the last active admin is protected. */
export function createAdminService(deps: AdminServiceDeps) {
  const { db, repo } = deps;

  return {
    async listUsers(q: { limit: number; offset: number; email?: string }) {
      const { items, total } = await repo.listUsers(q);
      return { items: items.map(toPublicUser), total, limit: q.limit, offset: q.offset };
    },

    async getUser(id: string): Promise<PublicUser> {
      const user = await repo.findById(id);
      if (!user) throw notFound('User', id);
      return toPublicUser(user);
    },

    /**
     * Changes role and/or disabled. A real change bumps token_version and revokes the user's refresh tokens, so it
     * takes effect on their next request. Demoting or disabling the last active admin is a 409.
     */
    async updateUser(id: string, patch: { role?: Role; disabled?: boolean }, ctx: RequestContext): Promise<PublicUser> {
      const updated = await db.transaction(async (tx) => {
        const activeAdmins = await repo.lockActiveAdmins(tx);
        const user = await repo.lockUser(id, tx);
        if (!user) throw notFound('User', id);
        const changes: { role?: Role; disabled?: boolean } = {};
        if (patch.role !== undefined && patch.role !== user.role) changes.role = patch.role;
        if (patch.disabled !== undefined && patch.disabled !== user.disabled) changes.disabled = patch.disabled;
        if (changes.role === undefined && changes.disabled === undefined) return user;

        const staysActiveAdmin = (changes.role ?? user.role) === 'admin' && !(changes.disabled ?? user.disabled);
        if (activeAdmins.includes(user.id) && !staysActiveAdmin && activeAdmins.length <= 1) {
          throw LAST_ADMIN(changes.role === 'user' ? 'demote' : 'disable');
        }
        const row = await repo.updateAccess(user.id, changes, tx);
        const revoked = await deps.authRepo.revokeAllForUser(user.id, tx);
        await audit(tx, {
          action: 'admin.user.update',
          actorId: ctx.actorId,
          targetType: 'user',
          targetId: user.id,
          ip: ctx.ip,
          requestId: ctx.requestId,
          details: {
            before: { role: user.role, disabled: user.disabled },
            after: { role: row.role, disabled: row.disabled },
            revokedTokens: revoked,
          },
        });
        return row;
      });
      deps.invalidateUser(updated.id);
      return toPublicUser(updated);
    },

    /**
     * Deletes a user and, by ON DELETE CASCADE, everything they own. Lifecycle hooks (e.g. stopping bots) run first
     * inside the same transaction: a failing hook aborts the deletion and its audit row.
     */
    async deleteUser(id: string, ctx: RequestContext & { log?: FastifyBaseLogger }): Promise<void> {
      await db.transaction(async (tx) => {
        const activeAdmins = await repo.lockActiveAdmins(tx);
        const user = await repo.lockUser(id, tx);
        if (!user) throw notFound('User', id);
        if (activeAdmins.includes(user.id) && activeAdmins.length <= 1) throw LAST_ADMIN('delete');
        await deps.lifecycle.runDelete({ userId: user.id, tx, log: ctx.log ?? deps.log });
        await repo.deleteUser(user.id, tx);
        await audit(tx, {
          action: 'admin.user.delete',
          actorId: ctx.actorId,
          targetType: 'user',
          targetId: user.id,
          ip: ctx.ip,
          requestId: ctx.requestId,
          details: { email: user.email, role: user.role },
        });
      });
      deps.invalidateUser(id);
    },

    async listAudit(filter: AuditFilter) {
      const { items, total } = await deps.auditRepo.list(filter);
      return {
        items: items.map((r) => ({ ...r, at: r.at.toISOString() })),
        total,
        limit: filter.limit,
        offset: filter.offset,
      };
    },

    /** One look at the whole service: users, database, readiness, process, recent 5xx, registered subsystems. */
    async dashboard() {
      const { status } = deps;
      const [users, database, readiness, subsystems] = await Promise.all([
        repo.counts().catch(() => null),
        status
          .ping(2000)
          .then((ms) => ({ kind: status.databaseKind, ok: true, latencyMs: Math.round(ms * 100) / 100 }))
          .catch((err: Error) => ({ kind: status.databaseKind, ok: false, error: err.message })),
        status.readiness(),
        status.diagnostics.collect(),
      ]);
      const mem = process.memoryUsage();
      return {
        users,
        database,
        readiness,
        process: {
          pid: process.pid,
          node: process.version,
          uptimeSeconds: Math.round(process.uptime() * 10) / 10,
          memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal, externalBytes: mem.external },
        },
        version: status.version,
        errors: { last5xxLastHour: status.diagnostics.recentErrors(3_600_000) },
        subsystems,
        generatedAt: new Date().toISOString(),
      };
    },
  };
}
export type AdminService = ReturnType<typeof createAdminService>;
