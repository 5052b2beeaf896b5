import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from '../helper.js';

test('/metrics exposes request counts and durations by route template and status, event loop lag, and module metrics', async (t) => {
  const app = await build(t);
  await app.inject({ url: '/health/live' });
  await app.inject({ url: '/health/live' });
  await app.inject({ url: '/no/such/route/123' });
  const res = await app.inject({ url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /text\/plain/);
  assert.match(res.body, /http_requests_total\{method="GET",route="\/health\/live",status="200"\} 2/);
  assert.match(res.body, /http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/health\/live",status="200"\}/);
  assert.doesNotMatch(res.body, /no\/such\/route\/123/, 'raw URLs never become labels');
  assert.match(res.body, /nodejs_eventloop_lag_seconds/);
  assert.match(res.body, /^bots_running 0$/m); // registered by the bots module
});

test('logs are JSON with the request id, and credentials are redacted', async (t) => {
  const app = await build(t);
  const token = 'eyJhbGciOiJIUzI1NiJ9.super-secret-token-value.sig';
  await app.inject({ url: '/health/live', headers: { authorization: `Bearer ${token}`, cookie: 'session=cookie-secret-value', 'x-request-id': 'log-test-1' } });
  app.log.info({ user: { password: 'hunter2-password', apiKey: 'AKIA-api-key-value', secret: 'exchange-secret-value' } }, 'service log line');
  const raw = app.rawLogs();
  for (const secret of ['super-secret-token-value', 'cookie-secret-value', 'hunter2-password', 'AKIA-api-key-value', 'exchange-secret-value']) {
    assert.ok(!raw.includes(secret), `${secret} is not in the logs`);
  }
  const line = app.logs.find((l) => l.reqId === 'log-test-1' && (l.req as { headers?: unknown } | undefined));
  assert.ok(line, 'request log line carries the request id');
  assert.match(raw, /\[redacted\]/);
});

test('a credential in a query string never reaches the logs', async (t) => {
  const app = await build(t);
  await app.inject({ url: '/health/live?token=eyJ-url-token-value&x=1&apiKey=url-api-key-value' });
  const raw = app.rawLogs();
  assert.ok(!raw.includes('eyJ-url-token-value'));
  assert.ok(!raw.includes('url-api-key-value'));
  assert.match(raw, /\/health\/live\?token=\[redacted\]&x=1&apiKey=\[redacted\]/);
});
