import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpProblem } from '../../../src/errors.js';
import { createAdapterCache } from '../../../src/modules/exchanges/adapter-cache.js';
import { createCcxtAdapter } from '../../../src/modules/exchanges/ccxt-adapter.js';
import type { ExchangeAdapter } from '../../../src/modules/exchanges/types.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';

describe('adapter cache (real ccxt against the Binance fake)', () => {
  let fake: FakeExchange;
  const exchangeInfoCalls = () => fake.requests.filter((r) => r.path === '/api/v3/exchangeInfo').length;
  const create = (): ExchangeAdapter =>
    createCcxtAdapter({ exchange: 'binance', marketType: 'spot', credentials: fake.credentials, urls: { rest: fake.url } });

  before(async () => {
    fake = await startFakeExchange({ exchange: 'binance' });
  });
  after(() => fake.close());

  test('one adapter per key id, markets loaded once', async () => {
    const cache = createAdapterCache({ reloadMarketsMs: 0 });
    const [a, b] = await Promise.all([cache.get('key-1', create), cache.get('key-1', create)]);
    assert.equal(a, b);
    const c = await cache.get('key-2', create);
    assert.notEqual(a, c);
    assert.equal(cache.size, 2);
    assert.equal(exchangeInfoCalls(), 2, 'one exchangeInfo per adapter');
    assert.ok(Object.keys(a.markets()).includes('BTC/USDT'), 'markets are ready');
    await a.fetchTicker('BTC/USDT');
    assert.equal(exchangeInfoCalls(), 2, 'no reload on use');
    await cache.closeAll();
    assert.equal(cache.size, 0);
  });

  test('markets are reloaded on the schedule', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const cache = createAdapterCache({ reloadMarketsMs: 60_000 });
    await cache.get('key-3', create);
    const before = exchangeInfoCalls();
    t.mock.timers.tick(60_000);
    // the reload is an HTTP round trip (behind ccxt's throttle): wait for it, bounded
    for (let i = 0; i < 500 && exchangeInfoCalls() === before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(exchangeInfoCalls(), before + 1);
    t.mock.timers.reset();
    await cache.closeAll();
  });

  test('a failed creation is not cached; evict closes and forgets', async () => {
    const cache = createAdapterCache({ reloadMarketsMs: 0 });
    fake.failNext({ kind: 'serverError', path: '/api/v3/exchangeInfo' });
    await assert.rejects(cache.get('key-4', create), (err: unknown) => err instanceof HttpProblem && err.statusCode === 503);
    assert.equal(cache.size, 0);
    const adapter = await cache.get('key-4', create);
    assert.equal(cache.size, 1);
    await cache.evict('key-4');
    assert.equal(cache.size, 0);
    assert.notEqual(await cache.get('key-4', create), adapter);
    await cache.closeAll();
  });
});
