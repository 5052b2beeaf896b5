import { and, count, desc, eq, gte, lte, type SQL } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import type { DbOrTx } from '../../db/client.js';
import { auditLog } from '../../db/schema/users.js';

/** One audit record. Never put secrets (passwords, tokens, keys) in `details`. */
export interface AuditEntry {
  /** Dotted verb, e.g. `auth.login`, `admin.user.update`, `account.key.saved`. */
  action: string;
  outcome?: 'success' | 'failure';
  /** Who did it (a user id), when known. */
  actorId?: string | null;
  targetType?: string | null;
  targetId?: string | null;
  ip?: string | null;
  requestId?: string | null;
  details?: Record<string, unknown>;
}

/** Actor, IP and request id of a request, to spread into an AuditEntry. */
export function auditContext(request: FastifyRequest): Pick<AuditEntry, 'actorId' | 'ip' | 'requestId'> {
  const user = request.user as { sub?: string } | null | undefined;
  return { actorId: user?.sub ?? null, ip: request.ip, requestId: String(request.id) };
}

/**
 * Writes one audit row on `tx`: call it inside the transaction of the action it records, so both commit or neither.
 */
export async function audit(tx: DbOrTx, entry: AuditEntry): Promise<void> {
  await tx.insert(auditLog).values({
    action: entry.action,
    outcome: entry.outcome ?? 'success',
    actorId: entry.actorId ?? null,
    targetType: entry.targetType ?? null,
    targetId: entry.targetId ?? null,
    ip: entry.ip ?? null,
    requestId: entry.requestId ?? null,
    details: entry.details ?? {},
  });
}

export interface AuditFilter {
  action?: string;
  actorId?: string;
  targetId?: string;
  from?: Date;
  to?: Date;
  limit: number;
  offset: number;
}

export type AuditRow = typeof auditLog.$inferSelect;

export function createAuditRepository(db: DbOrTx) {
  return {
    /** Same as the free function `audit`, on `tx` when given. */
    record(entry: AuditEntry, tx: DbOrTx = db) {
      return audit(tx, entry);
    },

    /** Newest first. */
    async list(filter: AuditFilter, tx: DbOrTx = db): Promise<{ items: AuditRow[]; total: number }> {
      const where: SQL[] = [];
      if (filter.action) where.push(eq(auditLog.action, filter.action));
      if (filter.actorId) where.push(eq(auditLog.actorId, filter.actorId));
      if (filter.targetId) where.push(eq(auditLog.targetId, filter.targetId));
      if (filter.from) where.push(gte(auditLog.at, filter.from));
      if (filter.to) where.push(lte(auditLog.at, filter.to));
      const cond = where.length ? and(...where) : undefined;
      const [items, [{ total }]] = await Promise.all([
        tx.select().from(auditLog).where(cond).orderBy(desc(auditLog.at), desc(auditLog.id)).limit(filter.limit).offset(filter.offset),
        tx.select({ total: count() }).from(auditLog).where(cond),
      ]);
      return { items, total };
    },
  };
}
export type AuditRepository = ReturnType<typeof createAuditRepository>;
