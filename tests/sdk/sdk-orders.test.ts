import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiClient } from '../../src/sdk/client.js';
import { build, createUser } from '../helper.js';
import { startFakeExchange } from '../fakes/fake-exchange/index.js';
import { envFor } from '../modules/orders/helpers.js';

/** A real server on a free port, spoken to only through the generated client: a paper order round trip. */
test('SDK: paper balance -> market order -> idempotent retry -> limit order -> cancel -> history -> trades', async (t) => {
  const fake = await startFakeExchange({ exchange: 'binance' });
  t.after(() => fake.close());
  const app = await build(t, { env: envFor([fake], { PAPER_START_BALANCES: 'USDT=10000' }) });
  const user = await createUser(app);
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const api = createApiClient({ baseUrl, token: user.token });

  const balance = await api.GET('/account/balance', { params: { query: { keyId: 'paper' } } });
  assert.equal(balance.response.status, 200);
  assert.equal(balance.data?.balances.find((b) => b.currency === 'USDT')?.total, '10000');

  const body = { keyId: 'paper', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.01', clientOrderId: 'sdk1' } as const;
  const placed = await api.POST('/order/submit', { body });
  assert.equal(placed.response.status, 201);
  assert.equal(placed.data?.status, 'closed');
  assert.equal(placed.data?.filled, '0.01');
  const retry = await api.POST('/order/submit', { body });
  assert.equal(retry.response.status, 200);
  assert.equal(retry.data?.id, placed.data?.id);

  const limit = await api.POST('/order/submit', {
    body: { keyId: 'paper', symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: '0.01', price: '40000' },
  });
  assert.equal(limit.data?.status, 'open');
  const canceled = await api.POST('/order/{id}/cancel', { params: { path: { id: limit.data!.id } } });
  assert.equal(canceled.data?.status, 'canceled');

  const one = await api.GET('/order/{id}', { params: { path: { id: placed.data!.id }, query: {} } });
  assert.equal(one.data?.clientOrderId, 'sdk1');
  const history = await api.GET('/order/history', { params: { query: { keyId: 'paper', limit: 10 } } });
  assert.deepEqual(history.data?.items.map((o) => o.id), [limit.data!.id, placed.data!.id]);
  const trades = await api.GET('/trades', { params: { query: { orderId: placed.data!.id } } });
  assert.equal(trades.data?.items.length, 1);
  assert.equal(trades.data?.items[0].amount, '0.01');

  const invalid = await api.POST('/order/submit', { body: { ...body, clientOrderId: 'sdk2', amount: '0.000001' } });
  assert.equal(invalid.response.status, 422);
  assert.equal(invalid.error?.code, 'ORDER_LIMIT_VIOLATION');

  const ticker = await api.GET('/market/ticker', { params: { query: { exchange: 'binance', symbol: 'BTC/USDT' } } });
  assert.equal(ticker.data?.last, '50000');
});
