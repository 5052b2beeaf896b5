import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from '../helper.js';

const ALLOWED = 'https://app.example.com';

test('CORS: an allowed origin gets CORS headers, a refused one none; preflight works', async (t) => {
  const app = await build(t, { env: { CORS_ORIGINS: `${ALLOWED}, https://admin.example.com` } });

  const ok = await app.inject({ url: '/health/live', headers: { origin: ALLOWED } });
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.headers['access-control-allow-origin'], ALLOWED);
  assert.match(String(ok.headers['access-control-expose-headers']), /x-request-id/);
  assert.match(String(ok.headers.vary), /origin/i);

  const refused = await app.inject({ url: '/health/live', headers: { origin: 'https://evil.example.net' } });
  assert.equal(refused.statusCode, 200, 'the request itself is served; the browser withholds it');
  assert.equal(refused.headers['access-control-allow-origin'], undefined);
  assert.equal(refused.headers['access-control-expose-headers'], undefined);

  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/auth/login',
    headers: { origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
  });
  assert.equal(preflight.statusCode, 204);
  assert.equal(preflight.headers['access-control-allow-origin'], ALLOWED);
  assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
  assert.match(String(preflight.headers['access-control-allow-headers']), /authorization/);
  assert.equal(preflight.headers['access-control-max-age'], '600');

  const badPreflight = await app.inject({
    method: 'OPTIONS',
    url: '/auth/login',
    headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' },
  });
  assert.equal(badPreflight.headers['access-control-allow-origin'], undefined);
  assert.equal(badPreflight.headers['access-control-allow-credentials'], undefined);
});

test('no CORS_ORIGINS: no cross-origin access at all', async (t) => {
  const app = await build(t);
  const res = await app.inject({ url: '/health/live', headers: { origin: ALLOWED } });
  assert.equal(res.headers['access-control-allow-origin'], undefined);
});

test('helmet security headers are on every response, errors included; the API gets the strict JSON set, /docs its own', async (t) => {
  const app = await build(t);
  for (const url of ['/health/live', '/no/such/route']) {
    const res = await app.inject({ url });
    assert.equal(res.headers['x-content-type-options'], 'nosniff', url);
    assert.equal(res.headers['x-frame-options'], 'DENY', url);
    assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/, url);
    assert.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", url);
    assert.equal(res.headers['x-powered-by'], undefined, url);
    assert.equal(res.headers['referrer-policy'], 'no-referrer', url);
  }
  const docs = await app.inject({ url: '/docs/' });
  assert.equal(docs.statusCode, 200);
  assert.match(String(docs.headers['content-security-policy']), /default-src 'self'.*img-src 'self' data: validator\.swagger\.io/);
  assert.equal(docs.headers['x-frame-options'], 'SAMEORIGIN');
});

test('the security headers are exactly those @fastify/helmet itself sends with our options (API and docs)', async (t) => {
  const { default: Fastify } = await import('fastify');
  const { default: helmet } = await import('@fastify/helmet');
  const { HELMET_OPTIONS, DOCS_HELMET_OPTIONS } = await import('../../src/plugins/security.js');
  // Reference: the plugin registered the ordinary way, running on every request.
  const reference = async (options: typeof HELMET_OPTIONS) => {
    const ref = Fastify({ logger: false });
    t.after(() => ref.close());
    await ref.register(helmet, options);
    ref.get('/*', async () => ({ status: 'ok' }));
    const headers = (await ref.inject({ url: '/x' })).headers;
    const names = Object.keys(headers).filter((n) => !['content-type', 'content-length', 'date', 'connection'].includes(n));
    return { headers, names };
  };
  const api = await reference(HELMET_OPTIONS);
  const docs = await reference(DOCS_HELMET_OPTIONS);
  assert.ok(api.names.length >= 6 && api.names.includes('content-security-policy'), `helmet sets its headers (${api.names.join(', ')})`);
  assert.ok(docs.names.length >= 10, `helmet sets its headers (${docs.names.join(', ')})`);

  const app = await build(t);
  for (const url of ['/health/live', '/no/such/route']) {
    const res = await app.inject({ url });
    for (const name of api.names) assert.equal(res.headers[name], api.headers[name], `${url} ${name}`);
    for (const name of docs.names.filter((n) => !api.names.includes(n))) assert.equal(res.headers[name], undefined, `${url} has no ${name}`);
  }
  const res = await app.inject({ url: '/docs/' });
  for (const name of docs.names) assert.equal(res.headers[name], docs.headers[name], `/docs/ ${name}`);
});

test('CORS headers are exactly those of @fastify/cors registered plainly, with and without an Origin header', async (t) => {
  const { default: Fastify } = await import('fastify');
  const { default: cors } = await import('@fastify/cors');
  const { corsOptions, registerCors } = await import('../../src/plugins/security.js');
  const origins = ['https://app.example.com'];
  const make = async (shortcut: boolean) => {
    const app = Fastify({ logger: false });
    t.after(() => app.close());
    if (shortcut) await registerCors(app, corsOptions(origins));
    else await app.register(cors, corsOptions(origins));
    app.get('/plain', async () => ({ ok: true }));
    app.get('/varied', async (_request, reply) => reply.header('vary', 'Accept-Encoding').send({ ok: true }));
    app.get('/no-cors', { config: { cors: false } as object }, async () => ({ ok: true }));
    app.addHook('onRequest', (request, reply, done) => {
      if (request.url === '/preset-vary') reply.header('vary', 'Accept');
      done();
    });
    app.get('/preset-vary', async () => ({ ok: true }));
    await app.ready();
    return app;
  };
  const ref = await make(false);
  const ours = await make(true);
  const requests = [];
  for (const url of ['/plain', '/varied', '/no-cors', '/preset-vary', '/missing']) {
    for (const headers of [{}, { origin: origins[0] }, { origin: 'https://evil.example.net' }]) requests.push({ method: 'GET' as const, url, headers });
  }
  for (const headers of [{}, { origin: origins[0], 'access-control-request-method': 'POST' }, { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' }, { 'access-control-request-method': 'POST' }]) {
    requests.push({ method: 'OPTIONS' as const, url: '/plain', headers });
  }
  for (const req of requests) {
    const a = await ref.inject(req);
    const b = await ours.inject(req);
    const strip = (h: Record<string, unknown>) => {
      const { date: _date, ...rest } = h;
      return rest;
    };
    assert.deepEqual([b.statusCode, strip(b.headers), b.body], [a.statusCode, strip(a.headers), a.body], JSON.stringify(req));
  }
});
