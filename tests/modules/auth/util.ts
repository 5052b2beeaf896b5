import assert from 'node:assert/strict';
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { auditLog, users } from '../../../src/db/schema/users.js';

export const PASSWORD = 'correct horse battery staple';

export interface Session {
  id: string;
  email: string;
  accessToken: string;
  refreshToken: string;
}

export async function register(app: FastifyInstance, email: string, password = PASSWORD) {
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } });
  assert.equal(res.statusCode, 201, res.body);
  return res.json() as { id: string; email: string; role: string };
}

export async function login(app: FastifyInstance, email: string, password = PASSWORD): Promise<Session> {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  return { id: body.user.id, email: body.user.email, accessToken: body.accessToken, refreshToken: body.refreshToken };
}

export async function registerAndLogin(app: FastifyInstance, email: string, password = PASSWORD): Promise<Session> {
  await register(app, email, password);
  return login(app, email, password);
}

/** A logged-in admin (registered as a user, promoted in the database, then logged in). */
export async function adminSession(app: FastifyInstance, email = 'admin@example.com'): Promise<Session> {
  await register(app, email);
  await app.database.db.update(users).set({ role: 'admin' }).where(eq(users.email, email));
  return login(app, email);
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export async function auditRows(app: FastifyInstance, action?: string) {
  const q = app.database.db.select().from(auditLog);
  return action ? q.where(eq(auditLog.action, action)) : q;
}

export function assertProblem(res: { statusCode: number; headers: Record<string, unknown>; json: () => any }, status: number, code?: string) {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()));
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(body.status, status);
  assert.equal(body.requestId, res.headers['x-request-id']);
  if (code) assert.equal(body.code, code);
  return body;
}
