import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { renderSdk } from '../../scripts/sdk-render.js';
import { createApiClient } from '../../src/sdk/client.js';
import { build } from '../helper.js';

const root = path.resolve(import.meta.dirname, '..', '..');

test('the generated client is in sync with the OpenAPI document (run `npm run sdk:generate`)', async () => {
  const { spec, schemaTs } = await renderSdk();
  assert.equal(await readFile(path.join(root, 'src/sdk/openapi.json'), 'utf8'), spec, 'src/sdk/openapi.json is stale');
  assert.equal(await readFile(path.join(root, 'src/sdk/schema.ts'), 'utf8'), schemaTs, 'src/sdk/schema.ts is stale');
});

test('the OpenAPI document is 3.1 and every route has tags, a summary and responses', async () => {
  const spec = JSON.parse(await readFile(path.join(root, 'src/sdk/openapi.json'), 'utf8'));
  assert.equal(spec.openapi, '3.1.0');
  for (const [p, item] of Object.entries<Record<string, any>>(spec.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      assert.ok(op.tags?.length, `${method} ${p} has tags`);
      assert.ok(op.summary, `${method} ${p} has a summary`);
      assert.ok(Object.keys(op.responses ?? {}).some((s) => s.startsWith('2')), `${method} ${p} documents its success response`);
    }
  }
  // The zod transform names request-side twins `<Id>Input`; an id that itself ends in Input would collide.
  for (const id of Object.keys(spec.components?.schemas ?? {})) assert.doesNotMatch(id.replace(/Input$/, ''), /Input$/, `schema id ${id}`);
});

/** A real server on a free port, spoken to only through the generated client. Later features extend this test. */
test('SDK round trip against the real server', async (t) => {
  const app = await build(t);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const api = createApiClient({ baseUrl: address });

  const health = await api.GET('/health');
  assert.equal(health.response.status, 200);
  assert.equal(health.data?.status, 'ok');

  const ready = await api.GET('/health/ready');
  assert.equal(ready.data?.status, 'ready');

  const db = await api.GET('/health/db');
  assert.ok((db.data?.latencyMs ?? -1) >= 0);

  const docs = await fetch(`${address}/docs`, { redirect: 'follow' });
  assert.equal(docs.status, 200);
  assert.match(await docs.text(), /swagger/i);
});
