import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiClient } from '../../src/sdk/client.js';
import { build } from '../helper.js';

/** A real server on a free port, spoken to only through the generated client: register → login → me → refresh. */
test('SDK: register → login → me → refresh → logout against the real server', async (t) => {
  const app = await build(t);
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const anon = createApiClient({ baseUrl });
  const credentials = { email: 'sdk-user@example.com', password: 'sdk user password 42' };

  const reg = await anon.POST('/auth/register', { body: credentials });
  assert.equal(reg.response.status, 201);
  assert.equal(reg.data?.email, credentials.email);
  assert.equal(reg.data?.role, 'user');

  const dup = await anon.POST('/auth/register', { body: credentials });
  assert.equal(dup.response.status, 409);
  assert.equal(dup.error?.code, 'EMAIL_TAKEN');
  assert.match(dup.response.headers.get('content-type') ?? '', /application\/problem\+json/);

  const login = await anon.POST('/auth/login', { body: credentials });
  assert.equal(login.response.status, 200);
  assert.ok(login.data);
  let token = login.data.accessToken;
  assert.equal(login.data.user.email, credentials.email);

  // The client reads the current token through a function, so a refresh is picked up.
  const api = createApiClient({ baseUrl, token: () => token });
  const me = await api.GET('/auth/me');
  assert.equal(me.response.status, 200);
  assert.equal(me.data?.id, reg.data?.id);

  const refreshed = await anon.POST('/auth/refresh', { body: { refreshToken: login.data.refreshToken } });
  assert.equal(refreshed.response.status, 200);
  assert.ok(refreshed.data);
  assert.notEqual(refreshed.data.refreshToken, login.data.refreshToken);
  token = refreshed.data.accessToken;
  assert.equal((await api.GET('/auth/me')).data?.email, credentials.email);

  const forbidden = await api.GET('/admin/users', { params: { query: { limit: 10 } } });
  assert.equal(forbidden.response.status, 403);
  assert.equal(forbidden.error?.code, 'FORBIDDEN');

  const out = await api.POST('/auth/logout');
  assert.equal(out.response.status, 204);
  const after = await api.GET('/auth/me');
  assert.equal(after.response.status, 401);
  assert.equal(after.error?.code, 'SESSION_REVOKED');
});
