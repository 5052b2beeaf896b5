import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseStrategy, strategyJsonSchema } from '../../../workers/engine/dsl.js';
import { HttpProblem } from '../../../src/errors.js';
import {
  createStrategyGenerator,
  parseRetryAfter,
  type StrategyGeneratorOptions,
  type ValidateResult,
} from '../../../src/modules/ai-strategy/deepseek.client.js';
import { startFakeDeepSeek, type FakeDeepSeek } from '../../fakes/fake-deepseek.js';

// A small stand-in DSL, validated with zod, so these tests do not depend on the real one (one test below does).
const TestStrategy = z.strictObject({
  name: z.string().min(1),
  timeframe: z.enum(['1m', '5m', '15m', '1h', '4h', '1d']),
  rules: z.array(z.strictObject({ when: z.string().min(1), action: z.enum(['buy', 'sell']) })).min(1),
});
const validate = (doc: unknown): ValidateResult => {
  const r = TestStrategy.safeParse(doc);
  return r.success
    ? { ok: true, value: r.data }
    : { ok: false, issues: r.error.issues.map((i) => ({ path: '/' + i.path.map(String).join('/'), message: i.message })) };
};
const schemaJson = z.toJSONSchema(TestStrategy);
const EXAMPLE = { name: 'RSI dip', timeframe: '1h', rules: [{ when: 'rsi(14) < 30', action: 'buy' }] };
const VALID = { name: 'SMA cross', timeframe: '4h', rules: [{ when: 'sma(10) crosses above sma(50)', action: 'buy' }] };
const answer = (strategy: unknown, explanation = 'Buys trend starts.') => JSON.stringify({ strategy, explanation });
const BAD_ACTION = answer({ ...VALID, rules: [{ when: 'rsi(14) > 70', action: 'hold' }] });

interface Harness {
  fake: FakeDeepSeek;
  logs: string[];
  make(overrides?: Partial<StrategyGeneratorOptions>): ReturnType<typeof createStrategyGenerator>;
}

async function setup(t: TestContext): Promise<Harness> {
  const fake = await startFakeDeepSeek();
  t.after(() => fake.close());
  const logs: string[] = [];
  const log = {
    info: (o: Record<string, unknown>, m: string) => void logs.push(`${m} ${JSON.stringify(o)}`),
    warn: (o: Record<string, unknown>, m: string) => void logs.push(`${m} ${JSON.stringify(o)}`),
  };
  return {
    fake,
    logs,
    make: (overrides = {}) =>
      createStrategyGenerator({
        apiKey: fake.apiKey,
        baseURL: fake.baseURL,
        model: 'deepseek-chat',
        timeoutMs: 5000,
        maxRetries: 2,
        retryBaseDelayMs: 5,
        validate,
        schemaJson,
        examples: [EXAMPLE],
        log,
        ...overrides,
      }),
  };
}

/** Await a rejection and return it as an HttpProblem (fails the test otherwise). */
async function problemOf(p: Promise<unknown>): Promise<HttpProblem> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof HttpProblem, `expected HttpProblem, got ${String(err)}`);
  return err;
}

/** Everything an error could leak through: message, JSON body members, string form, stack, cause. */
function assertNoSecret(err: unknown, secret: string, extra: string[] = []) {
  const e = err as Error & Record<string, unknown>;
  const surfaces = [e.message, JSON.stringify(e), String(e), e.stack ?? '', JSON.stringify(e.extensions ?? {}), String(e.cause ?? ''), ...extra];
  for (const s of surfaces) {
    assert.ok(!s.includes(secret), 'API key leaked');
    assert.ok(!s.includes(`****${secret.slice(-4)}`), 'masked API key fragment leaked');
  }
}

const lastUser = (body: any): string => body.messages.filter((m: any) => m.role === 'user').at(-1).content;

describe('DeepSeek strategy generator against the fake DeepSeek server', () => {
  test('valid answer: strategy, explanation, usage, model; request is JSON mode with schema and examples', async (t) => {
    const h = await setup(t);
    h.fake.script(answer(VALID, 'Follows the trend.'));
    const out = await h.make().generate({ prompt: 'A trend-following strategy', symbol: 'BTC/USDT', timeframe: '4h', risk: 'low', constraints: ['long only'] });
    assert.deepEqual(out.strategy, VALID);
    assert.equal(out.explanation, 'Follows the trend.');
    assert.equal(out.model, 'deepseek-chat');
    assert.equal(out.rounds, 1);
    assert.equal(out.rawAnswer, answer(VALID, 'Follows the trend.'));
    assert.ok(out.usage.promptTokens > 0 && out.usage.completionTokens > 0);
    assert.equal(out.usage.totalTokens, out.usage.promptTokens + out.usage.completionTokens);
    assert.ok(out.latencyMs >= 0);

    const [req] = h.fake.chatRequests();
    assert.equal(req.authorized, true);
    assert.equal(req.body.model, 'deepseek-chat');
    assert.deepEqual(req.body.response_format, { type: 'json_object' });
    assert.equal(req.body.max_tokens, 8192);
    assert.equal(req.body.stream, false);
    const [system, user] = req.body.messages;
    assert.equal(system.role, 'system');
    assert.ok(system.content.includes(JSON.stringify(schemaJson)), 'schema in the system prompt');
    assert.ok(system.content.includes(JSON.stringify(EXAMPLE)), 'example in the system prompt');
    assert.match(system.content, /JSON/);
    assert.match(user.content, /A trend-following strategy/);
    assert.match(user.content, /Symbol: BTC\/USDT/);
    assert.match(user.content, /Timeframe: 4h/);
    assert.match(user.content, /\["long only"\]/);
  });

  test('invalid JSON is fixed in a repair round that carries the parse error', async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'invalid-json' }, answer(VALID));
    const out = await h.make().generate({ prompt: 'RSI strategy' });
    assert.deepEqual(out.strategy, VALID);
    assert.equal(out.rounds, 2);
    const reqs = h.fake.chatRequests();
    assert.equal(reqs.length, 2);
    const repair = reqs[1].body.messages;
    assert.equal(repair.length, 4);
    assert.equal(repair[2].role, 'assistant');
    assert.match(repair[2].content, /^\{"strategy"/);
    assert.match(lastUser(reqs[1].body), /not valid JSON/);
    assert.match(lastUser(reqs[1].body), /JSON\.parse/);
    // Usage is summed over both calls.
    assert.ok(out.usage.promptTokens > reqs[0].body.messages.length);
  });

  test('a schema-violating answer is fixed in repair round 1; the repair request carries the issues', async (t) => {
    const h = await setup(t);
    h.fake.script(BAD_ACTION, answer(VALID));
    const out = await h.make().generate({ prompt: 'Mean reversion' });
    assert.deepEqual(out.strategy, VALID);
    assert.equal(out.rounds, 2);
    const repairText = lastUser(h.fake.chatRequests()[1].body);
    const expected = validate(JSON.parse(BAD_ACTION).strategy);
    assert.equal(expected.ok, false);
    for (const issue of (expected as { ok: false; issues: { path: string; message: string }[] }).issues) {
      assert.ok(repairText.includes(`${issue.path}: ${issue.message}`), `repair prompt lacks ${issue.path}`);
    }
    assert.match(repairText, /\/rules\/0\/action/);
  });

  test('still invalid after 2 repairs → 422 AI_STRATEGY_INVALID with the issues', async (t) => {
    const h = await setup(t);
    h.fake.script(BAD_ACTION, BAD_ACTION, answer({ name: 'x', timeframe: '7m', rules: [] }));
    const err = await problemOf(h.make().generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 422);
    assert.equal(err.code, 'AI_STRATEGY_INVALID');
    const issues = err.extensions?.errors as { path: string; message: string }[];
    assert.deepEqual(issues.map((i) => i.path).sort(), ['/rules', '/timeframe']);
    assert.equal(h.fake.chatRequests().length, 3);
    assert.equal(h.fake.pending(), 0);
  });

  test('repairRounds is honoured (0 = no repair)', async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'invalid-json' });
    const err = await problemOf(h.make({ repairRounds: 0 }).generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 422);
    assert.equal(h.fake.chatRequests().length, 1);
  });

  test('an oversized or truncated answer is rejected without parsing and repaired', async (t) => {
    const h = await setup(t);
    h.fake.script(answer({ ...VALID, name: 'x'.repeat(5000) }), { kind: 'content', content: '{"strategy": {"na', finishReason: 'length' }, answer(VALID));
    const out = await h.make({ maxAnswerBytes: 2048 }).generate({ prompt: 'anything' });
    assert.equal(out.rounds, 3);
    const reqs = h.fake.chatRequests();
    assert.match(lastUser(reqs[1].body), /more than the 2048 allowed/);
    assert.match(lastUser(reqs[2].body), /cut off/);
  });

  test('an empty answer is asked again (no repair round); too many empties → 502', async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'empty' }, answer(VALID));
    const out = await h.make().generate({ prompt: 'anything' });
    assert.equal(out.rounds, 1);
    const reqs = h.fake.chatRequests();
    assert.equal(reqs.length, 2);
    assert.deepEqual(reqs[1].body.messages, reqs[0].body.messages);

    h.fake.script({ kind: 'empty' }, { kind: 'empty' }, { kind: 'empty' });
    const err = await problemOf(h.make({ emptyRetries: 2 }).generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 502);
    assert.equal(err.code, 'AI_EMPTY_ANSWER');
    assert.equal(h.fake.chatRequests().length, 5);
  });

  test('provider 401 (wrong key) → 502 AI_PROVIDER_AUTH, not retried, key never leaked', async (t) => {
    const h = await setup(t);
    const wrongKey = 'sk-wrong-9f8e7d6c5b4a39281706f5e4d3c2b1a0';
    const gen = h.make({ apiKey: wrongKey });
    const err = await problemOf(gen.generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 502);
    assert.equal(err.code, 'AI_PROVIDER_AUTH');
    assert.equal(h.fake.requests.length, 1);
    assert.equal(h.fake.requests[0].authorized, false);
    assertNoSecret(err, wrongKey, h.logs);
    assert.ok(h.logs.some((l) => l.includes('"status":401')), 'failure is logged with its status');

    const listErr = await problemOf(gen.listModels());
    assert.equal(listErr.code, 'AI_PROVIDER_AUTH');
    assertNoSecret(listErr, wrongKey, h.logs);
  });

  test('provider 402 Insufficient Balance → 503 AI_PROVIDER_BALANCE', async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'error', status: 402 });
    const err = await problemOf(h.make().generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 503);
    assert.equal(err.code, 'AI_PROVIDER_BALANCE');
    assert.equal(h.fake.chatRequests().length, 1);
    assertNoSecret(err, h.fake.apiKey, h.logs);
  });

  test('provider 429 → 503 with the provider Retry-After (or the default)', async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'error', status: 429, retryAfter: '17' }, { kind: 'error', status: 429 });
    const gen = h.make({ defaultRetryAfterSeconds: 42 });
    const err = await problemOf(gen.generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 503);
    assert.equal(err.code, 'AI_PROVIDER_RATE_LIMITED');
    assert.deepEqual(err.headers, { 'retry-after': '17' });
    const err2 = await problemOf(gen.generate({ prompt: 'anything' }));
    assert.deepEqual(err2.headers, { 'retry-after': '42' });
    assert.equal(h.fake.chatRequests().length, 2, '429 is not retried');
  });

  test('provider 500 → retried, then a 502 problem after maxRetries; a transient 500 recovers', async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'error', status: 500 }, { kind: 'error', status: 500 }, { kind: 'error', status: 500 });
    const err = await problemOf(h.make({ maxRetries: 2 }).generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 502);
    assert.equal(err.code, 'AI_PROVIDER_ERROR');
    assert.equal(h.fake.chatRequests().length, 3);

    h.fake.script({ kind: 'error', status: 500 }, answer(VALID));
    const out = await h.make({ maxRetries: 2 }).generate({ prompt: 'anything' });
    assert.deepEqual(out.strategy, VALID);
    assert.equal(h.fake.chatRequests().length, 5);
  });

  test('provider 503 → retried, then 503 AI_PROVIDER_UNAVAILABLE with Retry-After', async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'error', status: 503, retryAfter: '5' }, { kind: 'error', status: 503, retryAfter: '5' });
    const err = await problemOf(h.make({ maxRetries: 1 }).generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 503);
    assert.equal(err.code, 'AI_PROVIDER_UNAVAILABLE');
    assert.deepEqual(err.headers, { 'retry-after': '5' });
    assert.equal(h.fake.chatRequests().length, 2);
  });

  test('a hanging provider → 504 AI_PROVIDER_TIMEOUT within the configured budget', async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'hang' });
    const err = await problemOf(h.make({ timeoutMs: 500 }).generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 504);
    assert.equal(err.code, 'AI_PROVIDER_TIMEOUT');
    assert.equal(h.fake.chatRequests().length, 1);
  });

  test('the budget also covers retries: repeated 500s with slow back-off end in 504, not a long wait', async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'error', status: 500 }, { kind: 'hang' });
    const err = await problemOf(h.make({ timeoutMs: 500, maxRetries: 5, retryBaseDelayMs: 50 }).generate({ prompt: 'anything' }));
    assert.equal(err.statusCode, 504);
    assert.equal(h.fake.chatRequests().length, 2);
  });

  test("the caller's signal cancels a pending generation with the caller's reason", async (t) => {
    const h = await setup(t);
    h.fake.script({ kind: 'hang' });
    const ac = new AbortController();
    const reason = new Error('client went away');
    const pending = h.make().generate({ prompt: 'anything', signal: ac.signal });
    // Abort once the fake has the request in hand.
    while (h.fake.chatRequests().length === 0) await new Promise((r) => setImmediate(r));
    ac.abort(reason);
    await assert.rejects(pending, (e: unknown) => e === reason);
  });

  test('listModels maps the /models list', async (t) => {
    const h = await setup(t);
    const models = await h.make().listModels();
    assert.deepEqual(models, [
      { id: 'deepseek-chat', ownedBy: 'deepseek' },
      { id: 'deepseek-reasoner', ownedBy: 'deepseek' },
    ]);
    assert.equal(h.fake.requests[0].path, '/models');
    assert.equal(h.fake.requests[0].authorized, true);
  });

  test('no API key → 503 AI_NOT_CONFIGURED without any request', async (t) => {
    const h = await setup(t);
    for (const apiKey of [undefined, null, '', '  ']) {
      const gen = h.make({ apiKey });
      const err = await problemOf(gen.generate({ prompt: 'anything' }));
      assert.equal(err.statusCode, 503);
      assert.equal(err.code, 'AI_NOT_CONFIGURED');
      assert.equal(err.message, 'AI strategy generation is not configured (DEEPSEEK_API_KEY)');
      assert.equal((await problemOf(gen.listModels())).code, 'AI_NOT_CONFIGURED');
    }
    assert.equal(h.fake.requests.length, 0);
  });

  test('the API key never appears in any error or log line of any failure mode', async (t) => {
    const h = await setup(t);
    const gen = h.make({ timeoutMs: 400, maxRetries: 1 });
    const scripts = [
      [{ kind: 'error', status: 402 }],
      [{ kind: 'error', status: 429, retryAfter: '3' }],
      [{ kind: 'error', status: 500 }, { kind: 'error', status: 500 }],
      [{ kind: 'error', status: 503 }, { kind: 'error', status: 503 }],
      [{ kind: 'error', status: 400 }],
      [{ kind: 'invalid-json' }, { kind: 'invalid-json' }, { kind: 'invalid-json' }],
      [{ kind: 'hang' }],
    ] as const;
    const errors: unknown[] = [];
    for (const s of scripts) {
      h.fake.script(...s);
      errors.push(await gen.generate({ prompt: 'anything' }).catch((e: unknown) => e));
    }
    assert.deepEqual(
      errors.map((e) => (e as HttpProblem).statusCode),
      [503, 503, 502, 503, 502, 422, 504],
    );
    for (const e of errors) assertNoSecret(e, h.fake.apiKey, h.logs);
  });

  test('parseRetryAfter: seconds, HTTP date, garbage', () => {
    assert.equal(parseRetryAfter('17'), 17);
    assert.equal(parseRetryAfter('0'), 1);
    assert.equal(parseRetryAfter('99999'), 3600);
    assert.equal(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1)), 30);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(null), undefined);
  });

  test('with the real strategy DSL: schema and examples in the prompt, reference error repaired', async (t) => {
    const h = await setup(t);
    const load = (name: string) => JSON.parse(readFileSync(new URL(`../../../examples/strategies/${name}.json`, import.meta.url), 'utf8'));
    const smaCross = load('sma-cross');
    const examples = [load('rsi-mean-reversion'), load('breakout-atr')];
    const dslSchema = strategyJsonSchema();
    const broken = {
      version: 1,
      name: 'Broken',
      rules: { long: { entry: { op: 'gt', left: { indicator: 'nope' }, right: 0 } } },
    };
    const brokenResult = parseStrategy(broken);
    assert.equal(brokenResult.ok, false, 'the broken document must be invalid for the real DSL');
    h.fake.script(answer(broken), answer(smaCross, 'Classic moving-average cross.'));
    const gen = h.make({ validate: parseStrategy, schemaJson: dslSchema, examples });
    const out = await gen.generate({ prompt: 'moving average crossover on BTC', symbol: 'BTC/USDT', timeframe: '1h' });
    assert.deepEqual(out.strategy, (parseStrategy(smaCross) as { ok: true; value: unknown }).value);
    assert.equal(out.rounds, 2);
    const [first, second] = h.fake.chatRequests();
    assert.ok(first.body.messages[0].content.includes(JSON.stringify(dslSchema)));
    assert.ok(first.body.messages[0].content.includes(JSON.stringify(examples[0])));
    for (const issue of (brokenResult as { ok: false; issues: { path: string; message: string }[] }).issues) {
      assert.ok(lastUser(second.body).includes(`${issue.path}: ${issue.message}`));
    }
  });
});
