import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { build, createUser, injectAs } from '../../helper.js';

const examples = path.resolve(import.meta.dirname, '../../../examples/strategies');
const load = async (name: string) => JSON.parse(await readFile(path.join(examples, name), 'utf8')) as Record<string, any>;

test('create, get, update (new version; old stays readable), list, versions, delete', async (t) => {
  const app = await build(t);
  const user = await createUser(app);
  const doc = await load('sma-cross.json');
  const created = await injectAs(app, user.token, { method: 'POST', url: '/strategies', payload: { document: doc } });
  assert.equal(created.statusCode, 201, created.body);
  const s = created.json();
  assert.equal(s.name, 'SMA cross');
  assert.equal(s.version, 1);
  assert.equal(s.origin, 'user');

  const v2doc = { ...doc, params: { ...doc.params, fast: { ...doc.params.fast, default: 12 } } };
  const updated = await injectAs(app, user.token, { method: 'PUT', url: `/strategies/${s.id}`, payload: { document: v2doc, name: 'SMA 12/30' } });
  assert.equal(updated.statusCode, 200, updated.body);
  assert.equal(updated.json().version, 2);
  assert.equal(updated.json().name, 'SMA 12/30');

  const latest = (await injectAs(app, user.token, { url: `/strategies/${s.id}` })).json();
  assert.equal(latest.version, 2);
  assert.equal(latest.document.params.fast.default, 12);
  const v1 = (await injectAs(app, user.token, { url: `/strategies/${s.id}?version=1` })).json();
  assert.equal(v1.document.params.fast.default, 10);
  assert.equal((await injectAs(app, user.token, { url: `/strategies/${s.id}?version=3` })).statusCode, 404);

  const versions = (await injectAs(app, user.token, { url: `/strategies/${s.id}/versions` })).json();
  assert.deepEqual(versions.items.map((v: { version: number }) => v.version), [1, 2]);

  const list = (await injectAs(app, user.token, { url: '/strategies' })).json();
  assert.equal(list.items.length, 1);
  assert.equal(list.items[0].latestVersion, 2);

  assert.equal((await injectAs(app, user.token, { method: 'DELETE', url: `/strategies/${s.id}` })).statusCode, 204);
  assert.equal((await injectAs(app, user.token, { url: `/strategies/${s.id}` })).statusCode, 404);
});

test('an invalid document answers 400 listing each issue with its JSON path; nothing is saved', async (t) => {
  const app = await build(t);
  const user = await createUser(app);
  const doc = await load('sma-cross.json');
  doc.indicators.fastMa.period = { param: 'nope' };
  doc.rules.long.entry.left = { indicator: 'missing' };
  const res = await injectAs(app, user.token, { method: 'POST', url: '/strategies', payload: { document: doc } });
  assert.equal(res.statusCode, 400);
  const body = res.json();
  assert.equal(body.code, 'INVALID_STRATEGY');
  const paths: string[] = body.errors.map((e: { path: string }) => e.path);
  assert.ok(paths.some((p) => p.startsWith('/body/document/indicators/fastMa/period')), paths.join());
  assert.ok(paths.some((p) => p.startsWith('/body/document/rules/long/entry/left')), paths.join());
  assert.deepEqual((await injectAs(app, user.token, { url: '/strategies' })).json().items, []);

  const structural = { ...(await load('sma-cross.json')), sizing: { type: 'fraction' }, extra: true };
  const res2 = await injectAs(app, user.token, { method: 'POST', url: '/strategies', payload: { document: structural } });
  assert.equal(res2.statusCode, 400);
  const paths2: string[] = res2.json().errors.map((e: { path: string }) => e.path);
  assert.ok(paths2.some((p) => p.startsWith('/body/document/sizing')), paths2.join());
  assert.ok(paths2.some((p) => p === '/body/document' || p.startsWith('/body/document/extra')), paths2.join());

  const check = await injectAs(app, user.token, { method: 'POST', url: '/strategies/validate', payload: { document: doc } });
  assert.equal(check.json().valid, false);
  assert.equal(check.json().issues.length, 2);
});

test('every example strategy is accepted; the JSON Schema is public', async (t) => {
  const app = await build(t);
  const user = await createUser(app);
  for (const f of ['sma-cross.json', 'rsi-mean-reversion.json', 'breakout-atr.json']) {
    const res = await injectAs(app, user.token, { method: 'POST', url: '/strategies', payload: { document: await load(f) } });
    assert.equal(res.statusCode, 201, `${f}: ${res.body}`);
  }
  const schema = await app.inject({ url: '/strategies/schema' });
  assert.equal(schema.statusCode, 200);
  assert.ok(JSON.stringify(schema.json()).includes('crossesAbove'));
});

test("another user's strategy answers 404 for read, update and delete; pages are stable under inserts", async (t) => {
  const app = await build(t);
  const a = await createUser(app);
  const b = await createUser(app);
  const doc = await load('sma-cross.json');
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    ids.push((await injectAs(app, b.token, { method: 'POST', url: '/strategies', payload: { document: doc, name: `s${i}` } })).json().id);
  }
  for (const req of [{ url: `/strategies/${ids[0]}` }, { method: 'PUT' as const, url: `/strategies/${ids[0]}`, payload: { document: doc } }, { method: 'DELETE' as const, url: `/strategies/${ids[0]}` }]) {
    assert.equal((await injectAs(app, a.token, req)).statusCode, 404);
  }
  assert.deepEqual((await injectAs(app, a.token, { url: '/strategies' })).json().items, []);

  const first = (await injectAs(app, b.token, { url: '/strategies?limit=2' })).json();
  assert.deepEqual(first.items.map((s: { name: string }) => s.name), ['s4', 's3']);
  await injectAs(app, b.token, { method: 'POST', url: '/strategies', payload: { document: doc, name: 'new' } });
  const second = (await injectAs(app, b.token, { url: `/strategies?limit=2&cursor=${first.nextCursor}` })).json();
  assert.deepEqual(second.items.map((s: { name: string }) => s.name), ['s2', 's1']);
  const third = (await injectAs(app, b.token, { url: `/strategies?limit=2&cursor=${second.nextCursor}` })).json();
  assert.deepEqual(third.items.map((s: { name: string }) => s.name), ['s0']);
  assert.equal(third.nextCursor, null);
  assert.equal((await injectAs(app, b.token, { url: '/strategies?cursor=garbage' })).json().code, 'INVALID_CURSOR');
});
