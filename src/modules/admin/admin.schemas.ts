import { z } from 'zod';
import { Role, UserResponse } from '../auth/auth.schemas.js';

export const Pagination = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

export const ListUsersQuery = Pagination.extend({
  email: z.string().trim().min(1).max(254).optional().describe('Case-insensitive substring of the email'),
});

export const UserIdParams = z.object({ id: z.uuid() });

export const UserList = z.object({
  items: z.array(UserResponse),
  total: z.number().int(),
  limit: z.number().int(),
  offset: z.number().int(),
});

export const UpdateUserBody = z
  .object({ role: Role.optional(), disabled: z.boolean().optional() })
  .strict()
  .refine((b) => b.role !== undefined || b.disabled !== undefined, 'role or disabled is required');

export const AuditQuery = Pagination.extend({
  action: z.string().trim().min(1).max(100).optional(),
  actorId: z.uuid().optional(),
  targetId: z.string().trim().min(1).max(200).optional(),
  from: z.iso.datetime({ offset: true }).optional().describe('Inclusive lower bound (ISO 8601)'),
  to: z.iso.datetime({ offset: true }).optional().describe('Inclusive upper bound (ISO 8601)'),
});

export const AuditEntry = z
  .object({
    id: z.uuid(),
    at: z.iso.datetime(),
    action: z.string(),
    outcome: z.enum(['success', 'failure']),
    actorId: z.string().nullable(),
    targetType: z.string().nullable(),
    targetId: z.string().nullable(),
    ip: z.string().nullable(),
    requestId: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });

export const AuditList = z.object({
  items: z.array(AuditEntry),
  total: z.number().int(),
  limit: z.number().int(),
  offset: z.number().int(),
});

const Check = z.object({ ok: z.boolean(), detail: z.string().optional() });

export const DashboardResponse = z.object({
  users: z.object({ total: z.number().int(), admins: z.number().int(), disabled: z.number().int() }).nullable(),
  database: z.object({ kind: z.enum(['postgres', 'pglite']), ok: z.boolean(), latencyMs: z.number().optional(), error: z.string().optional() }),
  readiness: z.object({ ready: z.boolean(), checks: z.record(z.string(), Check) }),
  process: z.object({
    pid: z.number().int(),
    node: z.string(),
    uptimeSeconds: z.number(),
    memory: z.object({ rssBytes: z.number(), heapUsedBytes: z.number(), heapTotalBytes: z.number(), externalBytes: z.number() }),
  }),
  version: z.string(),
  errors: z.object({ last5xxLastHour: z.number().int().describe('5xx responses of this process in the last hour') }),
  subsystems: z.record(z.string(), z.record(z.string(), z.unknown())).describe('State registered through app.diagnostics'),
  generatedAt: z.iso.datetime(),
});
