import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { serializerCompiler, validatorCompiler } from '@fastify/type-provider-zod';
import { build } from '../helper.js';

const PROBLEM = /^application\/problem\+json/;

function assertProblem(res: { statusCode: number; headers: Record<string, unknown>; json: () => any }, status: number) {
  assert.equal(res.statusCode, status);
  assert.match(String(res.headers['content-type']), PROBLEM);
  const body = res.json();
  for (const k of ['type', 'title', 'status', 'detail', 'instance', 'requestId']) assert.ok(k in body, `problem has ${k}`);
  assert.equal(body.status, status);
  assert.equal(body.requestId, res.headers['x-request-id']);
  return body;
}

test('unknown route: 404 problem with instance and request id', async (t) => {
  const app = await build(t);
  const res = await app.inject({ url: '/does/not/exist?x=1' });
  const body = assertProblem(res, 404);
  assert.equal(body.instance, '/does/not/exist');
  assert.equal(body.type, 'urn:problem:not-found');
});

test('unknown routes are rate limited (route enumeration is throttled)', async (t) => {
  const app = await build(t, { env: { NOT_FOUND_RATE_LIMIT_MAX: '3' } });
  const codes = [];
  for (let i = 0; i < 5; i++) codes.push((await app.inject({ url: `/probe-${i}` })).statusCode);
  assert.deepEqual(codes, [404, 404, 404, 429, 429]);
  const limited = await app.inject({ url: '/probe-x' });
  const body = assertProblem(limited, 429);
  assert.equal(body.code, 'RATE_LIMITED');
  assert.ok(Number(limited.headers['retry-after']) >= 1);
});

test('x-request-id is echoed; a safe incoming id is kept, an unsafe one replaced', async (t) => {
  const app = await build(t);
  const mine = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'client-abc-123' } });
  assert.equal(mine.headers['x-request-id'], 'client-abc-123');
  const evil = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'bad id\nwith newline' } });
  assert.match(String(evil.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  const logged = app.logs.filter((l) => l.reqId === 'client-abc-123');
  assert.ok(logged.length >= 1, 'request id appears in the log lines');
});

test('validation errors list every failing field with JSON pointer paths; malformed JSON and oversized bodies are problems', async (t) => {
  // Throwaway zod routes in a child scope exercise validation and 5xx handling through the real error handler.
  const probe: FastifyPluginAsyncZod = async (s) => {
    s.setValidatorCompiler(validatorCompiler);
    s.setSerializerCompiler(serializerCompiler);
    s.post(
      '/probe',
      { schema: { body: z.object({ name: z.string().min(2), qty: z.number().int().positive(), nested: z.object({ side: z.enum(['buy', 'sell']) }) }) } },
      async () => ({ ok: true }),
    );
    s.get('/boom', async () => {
      throw new Error('secret internals: password=hunter2 at /srv/app.js:42');
    });
  };
  const app2 = await build(t, { env: { BODY_LIMIT_BYTES: '2048' }, register: async (app) => { await app.register(probe); } });

  const bad = await app2.inject({ method: 'POST', url: '/probe', payload: { name: 'x', qty: -1, nested: { side: 'hold' } } });
  const body = assertProblem(bad, 400);
  assert.equal(body.code, 'VALIDATION_FAILED');
  const paths = body.errors.map((e: { path: string }) => e.path).sort();
  assert.deepEqual(paths, ['/body/name', '/body/nested/side', '/body/qty']);

  const malformed = await app2.inject({ method: 'POST', url: '/probe', headers: { 'content-type': 'application/json' }, payload: '{"name": "ab",' });
  assertProblem(malformed, 400);

  const big = await app2.inject({ method: 'POST', url: '/probe', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'a'.repeat(5000) }) });
  const bigBody = assertProblem(big, 413);
  assert.equal(bigBody.code, 'BODY_TOO_LARGE');

  const unsupported = await app2.inject({ method: 'POST', url: '/probe', headers: { 'content-type': 'application/x-unknown' }, payload: 'x' });
  assertProblem(unsupported, 415);

  const boom = await app2.inject({ url: '/boom' });
  const boomBody = assertProblem(boom, 500);
  assert.doesNotMatch(boom.body, /hunter2|secret internals|app\.js|at /);
  assert.equal(boomBody.code, 'INTERNAL');
});

test('under pressure: a blocked event loop sheds load with a 503 problem and Retry-After', async (t) => {
  const app = await build(t, { env: { MAX_EVENT_LOOP_DELAY_MS: '50' } });
  // Block the loop well past the threshold, then let under-pressure's sampler observe it.
  const until = Date.now() + 400;
  while (Date.now() < until) {
    /* busy */
  }
  let res = await app.inject({ url: '/health' });
  for (let i = 0; i < 20 && res.statusCode !== 503; i++) {
    await new Promise((r) => setImmediate(r));
    const spin = Date.now() + 200;
    while (Date.now() < spin) {
      /* busy */
    }
    res = await app.inject({ url: '/health' });
  }
  assert.equal(res.statusCode, 503);
  assert.match(String(res.headers['content-type']), /application\/problem\+json/);
  assert.equal(res.json().code, 'OVERLOADED');
  assert.equal(res.headers['retry-after'], '5');
});
