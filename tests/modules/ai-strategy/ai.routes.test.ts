import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build, createUser, injectAs, type TestApp, type TestUser } from '../../helper.js';
import { dumpAllTables, testDatabase } from '../../db.js';
import { startFakeDeepSeek, type FakeDeepSeek } from '../../fakes/fake-deepseek.js';
import { aiGenerations } from '../../../src/db/schema/ai.js';
import { createAiService } from '../../../src/modules/ai-strategy/ai.service.js';
import { createStrategyGenerator } from '../../../src/modules/ai-strategy/deepseek.client.js';
import { loadExampleStrategies, validateStrategy } from '../../../src/modules/ai-strategy/index.js';
import { strategyJsonSchema } from '../../../workers/engine/dsl.js';
import { HttpProblem } from '../../../src/errors.js';

const SMA = JSON.parse(readFileSync(new URL('../../../examples/strategies/sma-cross.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const VALID = { ...SMA, name: 'Generated SMA cross' };
const answer = (strategy: unknown, explanation = 'Follows the trend with two moving averages.') => JSON.stringify({ strategy, explanation });
/** Passes JSON.parse but not the DSL: unknown indicator type and no rules. */
const SCHEMA_VIOLATION = answer({ version: 1, name: 'Broken', indicators: { x: { type: 'magic', period: 5 } } });
/** Load shedding (under-pressure) is not what these tests are about, and a loaded CI machine trips it: off. */
const NO_SHEDDING = { MAX_EVENT_LOOP_DELAY_MS: '0' };
const PROMPT = 'Trend following on BTC: buy when the fast average crosses above the slow one.';

interface Ctx {
  app: TestApp;
  fake: FakeDeepSeek;
  user: TestUser;
}

async function setup(t: TestContext, env: Record<string, string> = {}, fakeOpts: Parameters<typeof startFakeDeepSeek>[0] = {}): Promise<Ctx> {
  const fake = await startFakeDeepSeek(fakeOpts);
  t.after(() => fake.close());
  const app = await build(t, {
    env: { ...NO_SHEDDING, DEEPSEEK_API_KEY: fake.apiKey, DEEPSEEK_BASE_URL: fake.baseURL, DEEPSEEK_TIMEOUT_MS: '10000', ...env },
  });
  const user = await createUser(app);
  return { app, fake, user };
}

const generate = (c: Ctx, payload: Record<string, unknown> = { prompt: PROMPT }, user = c.user) =>
  injectAs(c.app, user.token, { method: 'POST', url: '/ai_strategy/generate', payload });

const history = async (c: Ctx, user = c.user) => {
  const res = await injectAs(c.app, user.token, { method: 'GET', url: '/ai_strategy/history' });
  assert.equal(res.statusCode, 200);
  return res.json().items as Array<Record<string, any>>;
};

const historyEntry = async (c: Ctx, id: string, user = c.user) => {
  const res = await injectAs(c.app, user.token, { method: 'GET', url: `/ai_strategy/history/${id}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Record<string, any>;
};

function assertProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()));
  assert.match(String(res.headers['content-type']), /application\/problem\+json/);
  const body = res.json();
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(typeof body.detail, 'string');
  return body;
}

describe('POST /ai_strategy/generate: scripted model answers', () => {
  test('a valid answer → 200 with the document, explanation, model, usage, latency; recorded as succeeded', async (t) => {
    const c = await setup(t, { DEEPSEEK_MODEL: 'deepseek-reasoner', DEEPSEEK_MAX_TOKENS: '4096' });
    c.fake.script(answer(VALID));
    const res = await generate(c, { prompt: PROMPT, symbol: 'BTC/USDT', timeframe: '4h', risk: 'low', constraints: ['no shorts over 2x', 'max 3 indicators'] });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(body.strategy, VALID);
    assert.equal(body.explanation, 'Follows the trend with two moving averages.');
    assert.equal(body.model, 'deepseek-reasoner');
    assert.equal(body.rounds, 1);
    assert.ok(body.usage.promptTokens > 0 && body.usage.completionTokens > 0);
    assert.equal(body.usage.totalTokens, body.usage.promptTokens + body.usage.completionTokens);
    assert.ok(Number.isInteger(body.latencyMs) && body.latencyMs >= 0);
    assert.equal(body.strategyId, undefined);
    assert.equal(body.backtestId, undefined);

    // What went to the provider: configured model and max_tokens, JSON mode, the options in the user message.
    const [sent] = c.fake.chatRequests();
    assert.equal(sent.body.model, 'deepseek-reasoner');
    assert.equal(sent.body.max_tokens, 4096);
    assert.deepEqual(sent.body.response_format, { type: 'json_object' });
    const userMsg = sent.body.messages.find((m: any) => m.role === 'user').content as string;
    for (const s of [PROMPT, 'BTC/USDT', '4h', 'low', 'no shorts over 2x']) assert.ok(userMsg.includes(s), s);
    // The system prompt carries the DSL's JSON Schema and the examples.
    const system = sent.body.messages[0].content as string;
    assert.ok(system.includes('"crossesAbove"') && system.includes('RSI mean reversion'));

    const [h] = await history(c);
    assert.equal(h.id, body.generationId);
    assert.equal(h.outcome, 'succeeded');
    assert.equal(h.prompt, PROMPT);
    assert.equal(h.model, 'deepseek-reasoner');
    assert.deepEqual(h.usage, body.usage);
    assert.equal(h.rounds, 1);
    assert.equal(h.errorCode, null);
    const d = await historyEntry(c, h.id);
    assert.equal(d.rawAnswer, answer(VALID));
    assert.equal(d.explanation, body.explanation);
    assert.deepEqual(d.request, { symbol: 'BTC/USDT', timeframe: '4h', risk: 'low', constraints: ['no shorts over 2x', 'max 3 indicators'], save: false });
    assert.ok(d.finishedAt !== null);
  });

  test('invalid JSON is repaired: the parse error goes back to the model, the second answer is accepted', async (t) => {
    const c = await setup(t);
    c.fake.script({ kind: 'invalid-json' }, answer(VALID));
    const res = await generate(c);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().rounds, 2);
    const reqs = c.fake.chatRequests();
    assert.equal(reqs.length, 2);
    const repair = reqs[1].body.messages.at(-1).content as string;
    assert.match(repair, /not valid JSON/);
    assert.equal((await history(c))[0].rounds, 2);
  });

  test('a schema violation is repaired: the DSL issues (JSON pointers) go back to the model', async (t) => {
    const c = await setup(t);
    c.fake.script(SCHEMA_VIOLATION, answer(VALID));
    const res = await generate(c);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().strategy, VALID);
    assert.equal(res.json().rounds, 2);
    const repair = c.fake.chatRequests()[1].body.messages.at(-1).content as string;
    assert.match(repair, /does not match the schema/);
    assert.match(repair, /\/rules|\/indicators/);
  });

  test('still invalid after the repair rounds → 422 AI_STRATEGY_INVALID with the issues; recorded as invalid with the last answer', async (t) => {
    const c = await setup(t);
    c.fake.script(SCHEMA_VIOLATION, SCHEMA_VIOLATION, SCHEMA_VIOLATION);
    const res = await generate(c);
    const body = assertProblem(res, 422, 'AI_STRATEGY_INVALID');
    assert.ok(Array.isArray(body.errors) && body.errors.length > 0);
    for (const e of body.errors) assert.ok(typeof e.path === 'string' && typeof e.message === 'string');
    assert.equal(c.fake.chatRequests().length, 3);
    const [h] = await history(c);
    assert.equal(h.outcome, 'invalid');
    assert.equal(h.errorCode, 'AI_STRATEGY_INVALID');
    assert.equal(h.rounds, 3);
    assert.ok(h.usage.totalTokens > 0);
    const d = await historyEntry(c, h.id);
    assert.equal(d.rawAnswer, SCHEMA_VIOLATION);
    assert.equal(d.explanation, null);
  });

  test('a document with NUL characters (not storable) is sent back for repair like any invalid one', async (t) => {
    const c = await setup(t);
    c.fake.script(answer({ ...VALID, name: 'bad\u0000name' }), answer(VALID));
    const res = await generate(c, { prompt: PROMPT, save: true });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().rounds, 2);
    assert.match(c.fake.chatRequests()[1].body.messages.at(-1).content, /NUL/);
    assert.ok(res.json().strategyId);
  });

  test('an over-long explanation is cut to 2000 characters (response and history)', async (t) => {
    const c = await setup(t);
    c.fake.script(answer(VALID, 'word '.repeat(1000)));
    const res = await generate(c);
    assert.equal(res.statusCode, 200, res.body);
    const { explanation, generationId } = res.json();
    assert.equal(explanation.length, 2001);
    assert.ok(explanation.startsWith('word word') && explanation.endsWith('…'));
    assert.equal((await historyEntry(c, generationId)).explanation, explanation);
  });

  test('an empty answer is asked again', async (t) => {
    const c = await setup(t);
    c.fake.script({ kind: 'empty' }, answer(VALID));
    const res = await generate(c);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().rounds, 1);
    assert.equal(c.fake.chatRequests().length, 2);
  });

  test('provider 401 → 502 AI_PROVIDER_AUTH; recorded as provider_error', async (t) => {
    const c = await setup(t);
    c.fake.script({ kind: 'error', status: 401 });
    assertProblem(await generate(c), 502, 'AI_PROVIDER_AUTH');
    const [h] = await history(c);
    assert.equal(h.outcome, 'provider_error');
    assert.equal(h.errorCode, 'AI_PROVIDER_AUTH');
  });

  test('provider 402 → 503 AI_PROVIDER_BALANCE', async (t) => {
    const c = await setup(t);
    c.fake.script({ kind: 'error', status: 402 });
    const res = await generate(c);
    assertProblem(res, 503, 'AI_PROVIDER_BALANCE');
    assert.equal((await history(c))[0].errorCode, 'AI_PROVIDER_BALANCE');
  });

  test('provider 429 → 503 AI_PROVIDER_RATE_LIMITED with the provider Retry-After; not retried', async (t) => {
    const c = await setup(t);
    c.fake.script({ kind: 'error', status: 429, retryAfter: '7' });
    const res = await generate(c);
    assertProblem(res, 503, 'AI_PROVIDER_RATE_LIMITED');
    assert.equal(res.headers['retry-after'], '7');
    assert.equal(c.fake.chatRequests().length, 1);
  });

  test('provider 500 (every retry) → 502 AI_PROVIDER_ERROR after the retries', async (t) => {
    const c = await setup(t);
    c.fake.script({ kind: 'error', status: 500 }, { kind: 'error', status: 500 }, { kind: 'error', status: 500 });
    const res = await generate(c);
    assertProblem(res, 502, 'AI_PROVIDER_ERROR');
    assert.equal(c.fake.chatRequests().length, 3);
    assert.equal((await history(c))[0].outcome, 'provider_error');
  });

  test('a provider that never answers → 504 AI_PROVIDER_TIMEOUT within DEEPSEEK_TIMEOUT_MS; recorded as timeout', async (t) => {
    const c = await setup(t, { DEEPSEEK_TIMEOUT_MS: '300' });
    c.fake.script({ kind: 'hang' });
    const res = await generate(c);
    assertProblem(res, 504, 'AI_PROVIDER_TIMEOUT');
    const [h] = await history(c);
    assert.equal(h.outcome, 'timeout');
    assert.equal(h.errorCode, 'AI_PROVIDER_TIMEOUT');
  });
});

describe('POST /ai_strategy/generate: configuration, input, saving', () => {
  test('no API key → 503 AI_NOT_CONFIGURED (generate and models); nothing recorded; the routes stay documented', async (t) => {
    const app = await build(t, { env: { ...NO_SHEDDING, DEEPSEEK_API_KEY: '' } });
    const user = await createUser(app);
    const res = await injectAs(app, user.token, { method: 'POST', url: '/ai_strategy/generate', payload: { prompt: PROMPT } });
    const body = assertProblem(res, 503, 'AI_NOT_CONFIGURED');
    assert.match(body.detail, /not configured/);
    assertProblem(await injectAs(app, user.token, { method: 'GET', url: '/ai_strategy/models' }), 503, 'AI_NOT_CONFIGURED');
    const h = await injectAs(app, user.token, { method: 'GET', url: '/ai_strategy/history' });
    assert.deepEqual(h.json().items, []);

    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const op = doc.paths['/ai_strategy/generate'].post;
    assert.deepEqual(op.tags, ['ai']);
    assert.ok(op.summary);
    for (const s of ['200', '400', '401', '422', '429', '502', '503', '504']) assert.ok(op.responses[s], `response ${s} documented`);
    for (const p of ['/ai_strategy/models', '/ai_strategy/history', '/ai_strategy/history/{id}']) assert.ok(doc.paths[p]?.get, p);
  });

  test('bad input → 400 before any model call; no token → 401', async (t) => {
    const c = await setup(t);
    for (const payload of [
      { prompt: 'short' },
      { prompt: 'x'.repeat(4001) },
      { prompt: PROMPT, risk: 'extreme' },
      { prompt: PROMPT, constraints: Array.from({ length: 21 }, () => 'c') },
      { prompt: PROMPT, symbol: '../../etc/passwd' },
      { prompt: PROMPT, backtest: {} },
      { prompt: `${PROMPT}\u0000` },
      { prompt: PROMPT, constraints: ['a\u0000b'] },
    ]) {
      const res = await generate(c, payload);
      assert.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 80));
    }
    const anon = await c.app.inject({ method: 'POST', url: '/ai_strategy/generate', payload: { prompt: PROMPT } });
    assertProblem(anon, 401, 'UNAUTHORIZED');
    assert.equal(c.fake.chatRequests().length, 0);
    assert.deepEqual(await history(c), []);
  });

  test('save: the strategy is stored with origin "ai" and the prompt, readable through GET /strategies/{id}', async (t) => {
    const c = await setup(t);
    c.fake.script(answer(VALID));
    const res = await generate(c, { prompt: PROMPT, save: true, name: 'My AI strategy' });
    assert.equal(res.statusCode, 200, res.body);
    const { strategyId, generationId } = res.json();
    assert.ok(strategyId);
    const s = await injectAs(c.app, c.user.token, { method: 'GET', url: `/strategies/${strategyId}` });
    assert.equal(s.statusCode, 200);
    assert.equal(s.json().origin, 'ai');
    assert.equal(s.json().aiPrompt, PROMPT);
    assert.equal(s.json().name, 'My AI strategy');
    assert.deepEqual(s.json().document, VALID);
    assert.equal((await historyEntry(c, generationId)).strategyId, strategyId);

    // Unsaved by default.
    c.fake.script(answer(VALID));
    const unsaved = await generate(c);
    assert.equal(unsaved.json().strategyId, undefined);
    const list = await injectAs(c.app, c.user.token, { method: 'GET', url: '/strategies' });
    assert.equal(list.json().items.length, 1);
  });

  test('GET /ai_strategy/models lists what the provider offers', async (t) => {
    const c = await setup(t, {}, { models: [{ id: 'deepseek-chat', owned_by: 'deepseek' }, { id: 'deepseek-v9', owned_by: 'deepseek' }] });
    const res = await injectAs(c.app, c.user.token, { method: 'GET', url: '/ai_strategy/models' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), {
      items: [
        { id: 'deepseek-chat', ownedBy: 'deepseek' },
        { id: 'deepseek-v9', ownedBy: 'deepseek' },
      ],
      configured: 'deepseek-chat',
    });
  });
});

describe('quota, history, secrets', () => {
  test('AI_DAILY_QUOTA=2 counts attempts (failures too): the third → 429 with Retry-After until midnight UTC, no model call', async (t) => {
    const c = await setup(t, { AI_DAILY_QUOTA: '2' });
    c.fake.script({ kind: 'error', status: 402 }, answer(VALID));
    assert.equal((await generate(c)).statusCode, 503);
    assert.equal((await generate(c)).statusCode, 200);
    const calls = c.fake.chatRequests().length;
    const before = Date.now();
    const res = await generate(c);
    const after = Date.now();
    const body = assertProblem(res, 429, 'AI_QUOTA_EXCEEDED');
    assert.equal(body.quota, 2);
    assert.equal(body.used, 2);
    const retryAfter = Number(res.headers['retry-after']);
    const midnight = (ms: number) => Math.floor(ms / 86_400_000) * 86_400_000 + 86_400_000;
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1);
    // Between "midnight - after" and "midnight - before", rounded up to whole seconds.
    assert.ok(retryAfter <= Math.ceil((midnight(before) - before) / 1000) && retryAfter >= Math.floor((midnight(after) - after) / 1000));
    assert.equal(new Date(body.resetsAt).getTime(), midnight(before));
    assert.equal(c.fake.chatRequests().length, calls);
    assert.equal((await history(c)).length, 2);

    // Another user has their own quota.
    const other = await createUser(c.app);
    c.fake.script(answer(VALID));
    assert.equal((await generate(c, { prompt: PROMPT }, other)).statusCode, 200);
  });

  test('AI_DAILY_QUOTA=0 means no quota', async (t) => {
    const c = await setup(t, { AI_DAILY_QUOTA: '0' });
    c.fake.script(answer(VALID), answer(VALID), answer(VALID));
    for (let i = 0; i < 3; i++) assert.equal((await generate(c)).statusCode, 200);
    assert.equal((await history(c)).length, 3);
  });

  test('concurrent requests cannot overrun the quota', async (t) => {
    const c = await setup(t, { AI_DAILY_QUOTA: '2' });
    c.fake.script(answer(VALID), answer(VALID), answer(VALID), answer(VALID));
    const results = await Promise.all([1, 2, 3, 4].map(() => generate(c)));
    const codes = results.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [200, 200, 429, 429]);
    assert.equal((await history(c)).length, 2);
  });

  test('history is per user, newest first, cursor-paginated; another user gets 404 for an entry', async (t) => {
    const c = await setup(t);
    c.fake.script(answer(VALID), { kind: 'error', status: 402 }, answer({ ...VALID, name: 'Third' }));
    const ids: string[] = [];
    for (const prompt of ['First prompt is long', 'Second prompt is long', 'Third prompt is long']) {
      await generate(c, { prompt });
    }
    const page1 = await injectAs(c.app, c.user.token, { method: 'GET', url: '/ai_strategy/history?limit=2' });
    assert.equal(page1.statusCode, 200);
    const p1 = page1.json();
    assert.equal(p1.items.length, 2);
    assert.deepEqual(p1.items.map((i: any) => i.prompt), ['Third prompt is long', 'Second prompt is long']);
    assert.deepEqual(p1.items.map((i: any) => i.outcome), ['succeeded', 'provider_error']);
    assert.ok(p1.nextCursor);
    const page2 = await injectAs(c.app, c.user.token, { method: 'GET', url: `/ai_strategy/history?limit=2&cursor=${p1.nextCursor}` });
    assert.deepEqual(page2.json().items.map((i: any) => i.prompt), ['First prompt is long']);
    assert.equal(page2.json().nextCursor, null);
    ids.push(...p1.items.map((i: any) => i.id), page2.json().items[0].id);

    const other = await createUser(c.app);
    assert.deepEqual(await history(c, other), []);
    for (const id of ids) {
      const res = await injectAs(c.app, other.token, { method: 'GET', url: `/ai_strategy/history/${id}` });
      const body = assertProblem(res, 404, 'AI_GENERATION_NOT_FOUND');
      assert.ok(!JSON.stringify(body).includes('prompt is long'));
    }
    const bad = await injectAs(c.app, c.user.token, { method: 'GET', url: '/ai_strategy/history?cursor=garbage' });
    assertProblem(bad, 400, 'INVALID_CURSOR');
  });

  test('the API key never appears in responses, logs or the database, whatever the outcome', async (t) => {
    const c = await setup(t, { DEEPSEEK_TIMEOUT_MS: '2000' });
    const bodies: string[] = [];
    c.fake.script(
      answer(VALID),
      SCHEMA_VIOLATION,
      SCHEMA_VIOLATION,
      SCHEMA_VIOLATION,
      { kind: 'error', status: 401 },
      { kind: 'error', status: 429, retryAfter: '3' },
      { kind: 'error', status: 402 },
      { kind: 'hang' },
    );
    for (let i = 0; i < 6; i++) {
      const res = await generate(c, { prompt: PROMPT, save: i === 0 });
      bodies.push(res.body, JSON.stringify(res.headers));
    }
    for (const url of ['/ai_strategy/models', '/ai_strategy/history']) {
      const res = await injectAs(c.app, c.user.token, { method: 'GET', url });
      bodies.push(res.body);
    }
    assert.equal(c.fake.pending(), 0);
    const { database } = await testDatabase();
    const dump = await dumpAllTables(database);
    assert.ok(dump.includes('ai_generations'), 'the dump covers the generations table');
    for (const [where, text] of [
      ['responses', bodies.join('\n')],
      ['logs', c.app.rawLogs()],
      ['database', dump],
    ] as const) {
      assert.ok(!text.includes(c.fake.apiKey), `API key found in ${where}`);
      assert.ok(!text.includes(c.fake.apiKey.slice(8)), `part of the API key found in ${where}`);
    }
  });

  test('a key the provider refuses → 502; the refused key is not echoed anywhere', async (t) => {
    const fake = await startFakeDeepSeek();
    t.after(() => fake.close());
    const wrongKey = 'sk-wrong-0123456789abcdef0123456789';
    const app = await build(t, { env: { ...NO_SHEDDING, DEEPSEEK_API_KEY: wrongKey, DEEPSEEK_BASE_URL: fake.baseURL } });
    const user = await createUser(app);
    const res = await injectAs(app, user.token, { method: 'POST', url: '/ai_strategy/generate', payload: { prompt: PROMPT } });
    assertProblem(res, 502, 'AI_PROVIDER_AUTH');
    const models = await injectAs(app, user.token, { method: 'GET', url: '/ai_strategy/models' });
    assertProblem(models, 502, 'AI_PROVIDER_AUTH');
    const { database } = await testDatabase();
    const all = [res.body, models.body, app.rawLogs(), await dumpAllTables(database)].join('\n');
    assert.ok(!all.includes(wrongKey));
    assert.ok(!all.includes('Authentication Fails'), 'provider message (which quotes the key) not copied');
  });
});

describe('lifecycle', () => {
  test('a client that disconnects stops the generation; the attempt is recorded as rejected (CLIENT_CLOSED)', async (t) => {
    const c = await setup(t, { DEEPSEEK_TIMEOUT_MS: '30000' });
    c.fake.script({ kind: 'hang' });
    const baseUrl = await c.app.listen({ host: '127.0.0.1', port: 0 });
    const ac = new AbortController();
    const pending = fetch(`${baseUrl}/ai_strategy/generate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${c.user.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: PROMPT }),
      signal: ac.signal,
    }).catch((err: Error) => err);
    // Wait until the request reached the provider, then hang up.
    while (c.fake.chatRequests().length === 0) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    assert.ok((await pending) instanceof Error);
    let h: Record<string, any> | undefined;
    for (;;) {
      [h] = await history(c);
      if (h.outcome !== 'pending') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(h.outcome, 'rejected');
    assert.equal(h.errorCode, 'CLIENT_CLOSED');
    assert.ok(!c.app.logs.some((l) => l.level === 50), 'not logged as an internal error');
  });

  test('attempts left pending by a stopped process are marked failed at start-up; recent ones are left alone', async (t) => {
    const first = await build(t, { env: NO_SHEDDING });
    const user = await createUser(first);
    const { database } = await testDatabase();
    const old = new Date(Date.now() - 3 * 3600_000);
    const [stale] = await database.db.insert(aiGenerations).values({ userId: user.id, prompt: 'stale prompt', model: 'deepseek-chat', createdAt: old }).returning();
    const [recent] = await database.db.insert(aiGenerations).values({ userId: user.id, prompt: 'recent prompt', model: 'deepseek-chat' }).returning();
    await first.close();

    const app = await build(t, { env: NO_SHEDDING, keepData: true });
    const get = async (id: string) => {
      const res = await injectAs(app, user.token, { method: 'GET', url: `/ai_strategy/history/${id}` });
      assert.equal(res.statusCode, 200, res.body);
      return res.json();
    };
    const s = await get(stale.id);
    assert.equal(s.outcome, 'failed');
    assert.equal(s.errorCode, 'INTERRUPTED');
    assert.ok(s.finishedAt);
    assert.equal((await get(recent.id)).outcome, 'pending');
  });
});

describe('generate + backtest', () => {
  const BTC_1H = '/work/shared/data/binance-BTC_USDT-1h.csv';

  async function setupWithData(t: TestContext): Promise<Ctx & { datasetId: string }> {
    const columnar = await mkdtemp(path.join(tmpdir(), 'ai-columnar-'));
    t.after(() => rm(columnar, { recursive: true, force: true }));
    const c = await setup(t, { COLUMNAR_DIR: columnar });
    const up = await injectAs(c.app, c.user.token, { method: 'POST', url: '/datasets?name=btc-1h', headers: { 'content-type': 'text/csv' }, payload: await readFile(BTC_1H) });
    assert.equal(up.statusCode, 201, up.body);
    return { ...c, datasetId: up.json().id };
  }

  /** Polls the backtest until it leaves queued/running (throws after 60 s so a stuck job fails instead of hanging). */
  async function waitFinished(c: Ctx, id: string) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const res = await injectAs(c.app, c.user.token, { method: 'GET', url: `/backtest/result/${id}` });
      assert.equal(res.statusCode, 200, res.body);
      const r = res.json();
      if (r.status !== 'queued' && r.status !== 'running') return r;
      if (Date.now() > deadline) throw new Error(`backtest ${id} still ${r.status}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  test('backtest: the strategy is saved and its backtest on an uploaded real dataset succeeds', async (t) => {
    const c = await setupWithData(t);
    c.fake.script(answer(VALID));
    const res = await generate(c, { prompt: PROMPT, backtest: { datasetId: c.datasetId, initialCash: '5000', feeBps: 5, slippageBps: 1 } });
    assert.equal(res.statusCode, 200, res.body);
    const { strategyId, backtestId, generationId } = res.json();
    assert.ok(strategyId && backtestId);

    const s = await injectAs(c.app, c.user.token, { method: 'GET', url: `/strategies/${strategyId}` });
    assert.equal(s.json().origin, 'ai');
    assert.equal(s.json().aiPrompt, PROMPT);

    const result = await waitFinished(c, backtestId);
    assert.equal(result.status, 'succeeded', result.error);
    assert.equal(result.strategyId, strategyId);
    assert.equal(result.datasetId, c.datasetId);
    assert.equal(result.settings.initialCash, '5000');
    assert.equal(result.settings.feeBps, 5);
    assert.ok(result.metrics.trades > 0, 'the SMA cross trades on a year of hourly BTC');

    const d = await historyEntry(c, generationId);
    assert.equal(d.strategyId, strategyId);
    assert.equal(d.backtestId, backtestId);
    assert.deepEqual(d.request.backtest, { datasetId: c.datasetId, initialCash: '5000', feeBps: 5, slippageBps: 1 });
  });

  test("backtest on a dataset that is not yours → the backtests domain's 404, naming the saved strategy", async (t) => {
    const c = await setupWithData(t);
    const other = await createUser(c.app);
    c.fake.script(answer(VALID));
    const res = await generate(c, { prompt: PROMPT, backtest: { datasetId: c.datasetId } }, other);
    const body = assertProblem(res, 404, 'DATASET_NOT_FOUND');
    assert.ok(body.strategyId && body.generationId);
    assert.ok(body.detail.includes(body.strategyId));
    const s = await injectAs(c.app, other.token, { method: 'GET', url: `/strategies/${body.strategyId}` });
    assert.equal(s.json().origin, 'ai');
    const d = await historyEntry(c, body.generationId, other);
    assert.equal(d.outcome, 'succeeded');
    assert.equal(d.strategyId, body.strategyId);
    assert.equal(d.backtestId, null);
  });

  test('invalid backtest options → 400 before any model call', async (t) => {
    const c = await setup(t);
    for (const backtest of [
      { datasetId: '' },
      { datasetId: 'x', initialCash: '0' },
      { datasetId: 'x', feeBps: -1 },
      { datasetId: 'x', from: '2024-02-01T00:00:00Z', to: '2024-01-01T00:00:00Z' },
      { datasetId: 'x', fill: 'whenever' },
    ]) {
      const res = await generate(c, { prompt: PROMPT, backtest });
      assert.equal(res.statusCode, 400, JSON.stringify(backtest));
    }
    assert.equal(c.fake.chatRequests().length, 0);
  });

  test('without a backtests domain, `backtest` → 503 BACKTESTS_UNAVAILABLE naming the saved strategy', async (t) => {
    const c = await setup(t);
    const service = createAiService({
      db: c.app.database.db,
      generator: createStrategyGenerator({
        apiKey: c.fake.apiKey,
        baseURL: c.fake.baseURL,
        validate: validateStrategy,
        schemaJson: strategyJsonSchema(),
        examples: loadExampleStrategies(),
      }),
      configured: true,
      model: 'deepseek-chat',
      timeoutMs: 10_000,
      dailyQuota: 5,
      strategies: c.app.strategiesService,
      startBacktest: () => undefined,
    });
    c.fake.script(answer(VALID));
    const who = { actorId: c.user.id, ip: '127.0.0.1', requestId: 'test' };
    const err = await service.generate(c.user.id, { prompt: PROMPT, save: false, backtest: { datasetId: 'x' } }, who).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof HttpProblem);
    assert.equal(err.statusCode, 503);
    assert.equal(err.code, 'BACKTESTS_UNAVAILABLE');
    const strategyId = err.extensions?.strategyId as string;
    const s = await injectAs(c.app, c.user.token, { method: 'GET', url: `/strategies/${strategyId}` });
    assert.equal(s.statusCode, 200);
    assert.equal(s.json().origin, 'ai');
  });
});
