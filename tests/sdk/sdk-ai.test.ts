import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createApiClient } from '../../src/sdk/client.js';
import { build } from '../helper.js';
import { startFakeDeepSeek } from '../fakes/fake-deepseek.js';

const SMA = JSON.parse(readFileSync(new URL('../../examples/strategies/sma-cross.json', import.meta.url), 'utf8')) as Record<string, unknown>;

/** A real server on a free port, the generated client, and the fake DeepSeek behind it. */
test('SDK: generate (saved) → strategy → history; quota and provider errors as typed problems', async (t) => {
  const fake = await startFakeDeepSeek();
  t.after(() => fake.close());
  const app = await build(t, { env: { DEEPSEEK_API_KEY: fake.apiKey, DEEPSEEK_BASE_URL: fake.baseURL, AI_DAILY_QUOTA: '2', MAX_EVENT_LOOP_DELAY_MS: '0' } });
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const anon = createApiClient({ baseUrl });
  const credentials = { email: 'sdk-ai@example.com', password: 'sdk ai password 42' };
  assert.equal((await anon.POST('/auth/register', { body: credentials })).response.status, 201);
  const login = await anon.POST('/auth/login', { body: credentials });
  assert.ok(login.data);
  const api = createApiClient({ baseUrl, token: login.data.accessToken });

  const models = await api.GET('/ai_strategy/models');
  assert.equal(models.response.status, 200);
  assert.deepEqual(models.data?.items.map((m) => m.id), ['deepseek-chat', 'deepseek-reasoner']);

  const prompt = 'A trend-following strategy on ETH with two moving averages.';
  fake.script({ kind: 'invalid-json' }, JSON.stringify({ strategy: SMA, explanation: 'Trend following.' }));
  const gen = await api.POST('/ai_strategy/generate', { body: { prompt, symbol: 'ETH/USDT', timeframe: '1h', risk: 'medium', save: true } });
  assert.equal(gen.response.status, 200, JSON.stringify(gen.error));
  assert.ok(gen.data);
  assert.deepEqual(gen.data.strategy, SMA);
  assert.equal(gen.data.explanation, 'Trend following.');
  assert.equal(gen.data.model, 'deepseek-chat');
  assert.equal(gen.data.rounds, 2);
  assert.ok(gen.data.usage.totalTokens > 0);
  assert.ok(gen.data.strategyId);

  const saved = await api.GET('/strategies/{id}', { params: { path: { id: gen.data.strategyId } } });
  assert.equal(saved.data?.origin, 'ai');
  assert.equal(saved.data?.aiPrompt, prompt);

  fake.script({ kind: 'error', status: 429, retryAfter: '5' });
  const limited = await api.POST('/ai_strategy/generate', { body: { prompt } });
  assert.equal(limited.response.status, 503);
  assert.equal(limited.error?.code, 'AI_PROVIDER_RATE_LIMITED');
  assert.equal(limited.response.headers.get('retry-after'), '5');

  const quota = await api.POST('/ai_strategy/generate', { body: { prompt } });
  assert.equal(quota.response.status, 429);
  assert.equal(quota.error?.code, 'AI_QUOTA_EXCEEDED');
  assert.ok(Number(quota.response.headers.get('retry-after')) >= 1);

  const hist = await api.GET('/ai_strategy/history', { params: { query: { limit: 10 } } });
  assert.deepEqual(hist.data?.items.map((i) => i.outcome), ['provider_error', 'succeeded']);
  const entry = await api.GET('/ai_strategy/history/{id}', { params: { path: { id: gen.data.generationId } } });
  assert.equal(entry.data?.strategyId, gen.data.strategyId);
  assert.equal(entry.data?.request.symbol, 'ETH/USDT');
});
