/**
 * Error classes through the trading routes, validation before anything is sent, one user never reaching another's
 * orders/trades/keys, and pending rows left by a crash reconciled at startup.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { build, createUser, injectAs } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { orders } from '../../../src/db/schema/orders.js';
import { envFor, saveKey, submit, waitForOrder } from './helpers.js';

const SPOT = 'BTC/USDT';

let fake: FakeExchange;
before(async () => {
  fake = await startFakeExchange({ exchange: 'binance' });
  fake.engine.setBalance('USDT', '100000');
  fake.engine.setBalance('BTC', '1');
});
after(() => fake.close());

function assertNoSecret(body: string) {
  for (const s of [fake.credentials.apiKey, fake.credentials.secret]) assert.ok(!body.includes(s), `leaks a credential: ${body}`);
}

describe('exchange errors through the API', () => {
  test('auth 422, insufficient funds 422, rate limit 503 + Retry-After, timeout 504, exchange down 503', async (t) => {
    const app = await build(t, { env: envFor([fake], { ORDER_SYNC_INTERVAL_MS: '600000' }) });
    const user = await createUser(app);
    const keyId = await saveKey(app, user.token, fake);
    const balance = () => injectAs(app, user.token, { url: `/account/balance?keyId=${keyId}` });

    // (first signed call of this client: after a success ccxt reads Binance's -2015 as a temporary ban instead)
    fake.failNext({ kind: 'auth', path: '/api/v3/account' });
    const auth = await balance();
    assert.equal(auth.statusCode, 422, auth.body);
    assert.equal(auth.json().code, 'EXCHANGE_AUTH_FAILED');
    assert.match(auth.json().detail, /binance/);
    assertNoSecret(auth.body);
    assert.equal((await balance()).statusCode, 200);

    fake.failNext({ kind: 'rateLimit', retryAfterSeconds: 7 });
    const limited = await balance();
    assert.equal(limited.statusCode, 503, limited.body);
    assert.equal(limited.json().code, 'EXCHANGE_RATE_LIMITED');
    assert.equal(limited.headers['retry-after'], '7');

    fake.failNext({ kind: 'timeout' });
    const slow = await balance();
    assert.equal(slow.statusCode, 504, slow.body);
    assert.equal(slow.json().code, 'EXCHANGE_TIMEOUT');

    fake.failNext({ kind: 'serverError', status: 503 });
    const down = await balance();
    assert.equal(down.statusCode, 503, down.body);
    assert.equal(down.json().code, 'EXCHANGE_UNAVAILABLE');

    // insufficient funds: refused by the exchange, the row is kept as rejected with the reason
    const poor = await submit(app, user.token, { keyId, symbol: SPOT, side: 'buy', type: 'limit', amount: '100', price: '40000' });
    assert.equal(poor.statusCode, 422, poor.body);
    assert.equal(poor.json().code, 'EXCHANGE_INSUFFICIENT_FUNDS');
    assertNoSecret(poor.body);
    const rejected = (await injectAs(app, user.token, { url: '/order/history?status=rejected' })).json().items;
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0].error.code, 'EXCHANGE_INSUFFICIENT_FUNDS');
  });

  test('network error 502 when the exchange cannot be reached', async (t) => {
    const gone = await startFakeExchange({ exchange: 'binance' });
    const app = await build(t, { env: envFor([gone]) });
    const user = await createUser(app);
    const keyId = await saveKey(app, user.token, gone);
    assert.equal((await injectAs(app, user.token, { url: `/account/balance?keyId=${keyId}` })).statusCode, 200);
    await gone.close();
    const res = await injectAs(app, user.token, { url: `/account/balance?keyId=${keyId}` });
    assert.equal(res.statusCode, 502, res.body);
    assert.equal(res.json().code, 'EXCHANGE_NETWORK_ERROR');
  });

  test('invalid orders are refused before anything is sent (422 naming the limit), bad input 400', async (t) => {
    const app = await build(t, { env: envFor([fake]) });
    const user = await createUser(app);
    const keyId = await saveKey(app, user.token, fake);
    const before = fake.requests.filter((r) => r.method === 'POST').length;

    const cases: Array<[Record<string, unknown>, string]> = [
      [{ amount: '10000', type: 'limit', price: '40000' }, 'amount.max'],
      [{ amount: '0.000001', type: 'limit', price: '40000' }, 'amount.precision'],
      [{ amount: '0.000015', type: 'limit', price: '40000' }, 'amount.precision'],
      [{ amount: '0.01', type: 'limit', price: '40000.001' }, 'price.precision'],
      [{ amount: '0.00001', type: 'limit', price: '40000' }, 'cost.min'],
      [{ amount: '0.00001', type: 'market' }, 'cost.min'],
    ];
    for (const [extra, limit] of cases) {
      const res = await submit(app, user.token, { keyId, symbol: SPOT, side: 'buy', ...extra });
      assert.equal(res.statusCode, 422, res.body);
      assert.equal(res.json().code, 'ORDER_LIMIT_VIOLATION');
      assert.equal(res.json().limit, limit, res.body);
    }
    const unknown = await submit(app, user.token, { keyId, symbol: 'NOPE/USDT', side: 'buy', type: 'limit', amount: '1', price: '1' });
    assert.equal(unknown.statusCode, 422, unknown.body);
    assert.equal(unknown.json().code, 'EXCHANGE_BAD_SYMBOL');

    for (const bad of [
      { keyId, symbol: SPOT, side: 'buy', type: 'limit', amount: '0.01' }, // limit without price
      { keyId, symbol: SPOT, side: 'buy', type: 'market', amount: '1e3' },
      { keyId, symbol: SPOT, side: 'hold', type: 'market', amount: '1' },
      { keyId: 'mine', symbol: SPOT, side: 'buy', type: 'market', amount: '1' },
      { keyId, symbol: SPOT, side: 'buy', type: 'market', amount: '1', clientOrderId: 'has spaces and is way too long for okx 123' },
    ]) {
      assert.equal((await submit(app, user.token, bad)).statusCode, 400);
    }
    assert.equal(fake.requests.filter((r) => r.method === 'POST').length, before, 'nothing was sent to the exchange');
    assert.equal((await injectAs(app, user.token, { url: '/order/history' })).json().items.length, 0, 'no order row written');
  });

  test("one user never sees or uses another's orders, trades or keys (404)", async (t) => {
    const app = await build(t, { env: envFor([fake]) });
    const alice = await createUser(app);
    const bob = await createUser(app);
    const keyId = await saveKey(app, alice.token, fake);
    const order = await submit(app, alice.token, { keyId, symbol: SPOT, side: 'buy', type: 'market', amount: '0.001' });
    assert.equal(order.statusCode, 201, order.body);
    const resting = await submit(app, alice.token, { keyId, symbol: SPOT, side: 'buy', type: 'limit', amount: '0.001', price: '30000' });
    const id = order.json().id;

    assert.equal((await injectAs(app, bob.token, { url: `/order/${id}` })).statusCode, 404);
    assert.equal((await injectAs(app, bob.token, { method: 'POST', url: `/order/${resting.json().id}/cancel` })).statusCode, 404);
    assert.equal((await injectAs(app, bob.token, { url: `/account/balance?keyId=${keyId}` })).statusCode, 404);
    assert.equal((await injectAs(app, bob.token, { url: `/account/positions?keyId=${keyId}` })).statusCode, 404);
    const use = await submit(app, bob.token, { keyId, symbol: SPOT, side: 'buy', type: 'market', amount: '0.001' });
    assert.equal(use.statusCode, 404);
    const reuse = await submit(app, bob.token, { keyId, symbol: SPOT, side: 'buy', type: 'market', amount: '0.001', clientOrderId: order.json().clientOrderId });
    assert.equal(reuse.statusCode, 404, "another user's client order id answers nothing of theirs");
    assert.deepEqual((await injectAs(app, bob.token, { url: '/order/history' })).json().items, []);
    assert.deepEqual((await injectAs(app, bob.token, { url: `/trades?orderId=${id}` })).json().items, []);
    assert.deepEqual((await injectAs(app, bob.token, { url: `/order/history?keyId=${keyId}` })).json().items, []);
    assert.equal((await injectAs(app, alice.token, { url: `/trades?orderId=${id}` })).json().items.length, 1);
    assert.equal((await injectAs(app, alice.token, { url: `/order/${resting.json().id}` })).json().status, 'open');
  });

  test('pending rows left by a crash are reconciled at startup (placed -> its state, never placed -> rejected)', async (t) => {
    const first = await build(t, { env: envFor([fake]) });
    const user = await createUser(first);
    const keyId = await saveKey(first, user.token, fake);
    const longAgo = new Date(Date.now() - 60_000);
    // The crash happened after the exchange took this one and before the row was updated...
    fake.engine.place({ symbol: SPOT, side: 'buy', type: 'limit', amount: '0.001', price: '31000', clientOrderId: 'crashplaced1' });
    const base = { userId: user.id, keyId, exchange: 'binance' as const, marketType: 'spot' as const, symbol: SPOT, side: 'buy' as const, type: 'limit' as const, amount: '0.001', price: '31000', createdAt: longAgo, updatedAt: longAgo };
    const [placed] = await first.database.db.insert(orders).values({ ...base, clientOrderId: 'crashplaced1' }).returning();
    // ...and this one before the exchange was called.
    const [lost] = await first.database.db.insert(orders).values({ ...base, clientOrderId: 'crashlost1' }).returning();
    await first.close();

    const second = await build(t, { env: envFor([fake]), keepData: true });
    const settled = await waitForOrder(second, user.token, placed.id, (o) => o.status !== 'pending');
    assert.equal(settled.status, 'open');
    assert.ok(settled.exchangeOrderId);
    const gone = await waitForOrder(second, user.token, lost.id, (o) => o.status !== 'pending');
    assert.equal(gone.status, 'rejected');
    assert.equal(gone.error.code, 'ORDER_NOT_PLACED');
    assert.equal(fake.orders().filter((o) => o.clientOrderId === 'crashplaced1').length, 1);
    assert.equal(fake.orders().filter((o) => o.clientOrderId === 'crashlost1').length, 0);
  });
});
