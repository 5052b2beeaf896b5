/**
 * Trading through the API against the loopback fake of each exchange (real ccxt, real wire formats): saved keys,
 * balances, positions, market and limit orders, cancel, history, fills, idempotency and timeouts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { build, createUser, injectAs } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import type { FakeExchangeId } from '../../fakes/fake-exchange/types.js';
import { envFor, saveKey, submit, waitForOrder } from './helpers.js';

const SPOT = 'BTC/USDT';
const SWAP = 'BTC/USDT:USDT';

for (const exchange of ['binance', 'bitget', 'okx'] as FakeExchangeId[]) {
  describe(`orders on ${exchange} (fake exchange)`, () => {
    let fake: FakeExchange;
    const swapAmount = exchange === 'okx' ? '1' : '0.01'; // OKX swaps trade in 0.01 BTC contracts

    before(async () => {
      fake = await startFakeExchange({ exchange });
      fake.engine.setBalance('USDT', '100000');
      fake.engine.setBalance('BTC', '1');
      fake.engine.setBalance('USDT', '100000', 'swap');
    });
    after(() => fake.close());

    test('keys, balance, market + limit orders, cancel, crossing fill, history, fills', async (t) => {
      const app = await build(t, { env: envFor([fake]) });
      const user = await createUser(app);
      const keyId = await saveKey(app, user.token, fake);

      const balance = await injectAs(app, user.token, { url: `/account/balance?keyId=${keyId}` });
      assert.equal(balance.statusCode, 200, balance.body);
      const usdt = balance.json().balances.find((b: { currency: string }) => b.currency === 'USDT');
      assert.equal(balance.json().exchange, exchange);
      assert.equal(typeof usdt.total, 'string');
      assert.equal(Number(usdt.total), 100000);

      // market order: filled at once, its fill stored with the fee
      const market = await submit(app, user.token, { keyId, symbol: SPOT, side: 'buy', type: 'market', amount: '0.01' });
      assert.equal(market.statusCode, 201, market.body);
      const m = market.json();
      assert.equal(m.status, 'closed');
      assert.equal(m.filled, '0.01');
      assert.match(m.clientOrderId, /^[a-z0-9]{1,32}$/);
      assert.equal(fake.orders().filter((o) => o.clientOrderId === m.clientOrderId).length, 1);
      const fills = (await injectAs(app, user.token, { url: `/trades?orderId=${m.id}` })).json();
      assert.equal(fills.items.length, 1, JSON.stringify(fills));
      assert.equal(fills.items[0].amount, '0.01');
      assert.equal(fills.items[0].price, '50000');
      assert.ok(Number(fills.items[0].fee) > 0);
      assert.ok(fills.items[0].feeCurrency);

      // a re-sync does not duplicate the fill
      await app.ordersService.syncNow(m.id);
      assert.equal((await injectAs(app, user.token, { url: `/trades?orderId=${m.id}` })).json().items.length, 1);

      // limit order below the market rests, then is cancelled
      const resting = await submit(app, user.token, { keyId, symbol: SPOT, side: 'buy', type: 'limit', amount: '0.01', price: '40000' });
      assert.equal(resting.statusCode, 201, resting.body);
      assert.equal(resting.json().status, 'open');
      const cancel = await injectAs(app, user.token, { method: 'POST', url: `/order/${resting.json().id}/cancel` });
      assert.equal(cancel.statusCode, 200, cancel.body);
      assert.equal(cancel.json().status, 'canceled');
      assert.equal(fake.orders().find((o) => o.clientOrderId === resting.json().clientOrderId)?.status, 'canceled');
      const again = await injectAs(app, user.token, { method: 'POST', url: `/order/${resting.json().id}/cancel` });
      assert.equal(again.statusCode, 409);

      // limit order that fills when the price crosses it: the background sync picks the fill up
      const crossing = await submit(app, user.token, { keyId, symbol: SPOT, side: 'buy', type: 'limit', amount: '0.02', price: '45000' });
      assert.equal(crossing.json().status, 'open');
      fake.engine.setPrice(SPOT, '44000');
      const filled = await waitForOrder(app, user.token, crossing.json().id, (o) => o.status === 'closed');
      assert.equal(filled.filled, '0.02');
      fake.engine.setPrice(SPOT, '50000');
      const crossFills = (await injectAs(app, user.token, { url: `/trades?orderId=${filled.id}` })).json().items;
      assert.equal(crossFills.length, 1);
      assert.equal(crossFills[0].price, '45000');

      // history: newest first, filters, cursor pages
      const history = (await injectAs(app, user.token, { url: `/order/history?keyId=${keyId}` })).json();
      assert.deepEqual(history.items.map((o: { id: string }) => o.id), [crossing.json().id, resting.json().id, m.id]);
      const canceled = (await injectAs(app, user.token, { url: '/order/history?status=canceled' })).json();
      assert.deepEqual(canceled.items.map((o: { id: string }) => o.id), [resting.json().id]);
      const page1 = (await injectAs(app, user.token, { url: '/order/history?limit=2' })).json();
      assert.equal(page1.items.length, 2);
      const page2 = (await injectAs(app, user.token, { url: `/order/history?limit=2&cursor=${page1.nextCursor}` })).json();
      assert.deepEqual(page2.items.map((o: { id: string }) => o.id), [m.id]);
      assert.equal(page2.nextCursor, null);
      const trades = (await injectAs(app, user.token, { url: `/trades?symbol=${encodeURIComponent(SPOT)}` })).json();
      assert.equal(trades.items.length, 2);
    });

    test('swap key: positions after a market order', async (t) => {
      const app = await build(t, { env: envFor([fake]) });
      const user = await createUser(app);
      const keyId = await saveKey(app, user.token, fake, 'swap');
      const order = await submit(app, user.token, { keyId, symbol: SWAP, side: 'buy', type: 'market', amount: swapAmount });
      assert.equal(order.statusCode, 201, order.body);
      assert.equal(order.json().status, 'closed');
      const positions = await injectAs(app, user.token, { url: `/account/positions?keyId=${keyId}` });
      assert.equal(positions.statusCode, 200, positions.body);
      const long = positions.json().items.find((p: { symbol: string }) => p.symbol === SWAP);
      assert.ok(long, positions.body);
      assert.equal(long.side, 'long');
      assert.equal(long.contracts, swapAmount);
      // close it again (reduce-only) so later tests start flat
      const close = await submit(app, user.token, { keyId, symbol: SWAP, side: 'sell', type: 'market', amount: swapAmount, reduceOnly: true });
      assert.equal(close.statusCode, 201, close.body);
    });

    test('idempotency: same client order id twice, and a timeout after the exchange accepted', async (t) => {
      // no periodic sweep here: the injected faults must hit the order's own calls
      const app = await build(t, { env: envFor([fake], { ORDER_SYNC_INTERVAL_MS: '600000' }) });
      const user = await createUser(app);
      const keyId = await saveKey(app, user.token, fake);

      const body = { keyId, symbol: SPOT, side: 'buy', type: 'limit', amount: '0.01', price: '30000', clientOrderId: `idem${exchange}1` };
      const first = await submit(app, user.token, body);
      assert.equal(first.statusCode, 201, first.body);
      const second = await submit(app, user.token, body);
      assert.equal(second.statusCode, 200, second.body);
      assert.equal(second.json().id, first.json().id);
      assert.equal(fake.orders().filter((o) => o.clientOrderId === body.clientOrderId).length, 1);
      // two concurrent submissions of one id: one exchange order
      const raceId = `race${exchange}1`;
      const race = await Promise.all([1, 2].map(() => submit(app, user.token, { ...body, clientOrderId: raceId })));
      assert.deepEqual(race.map((r) => r.statusCode).sort(), [200, 201]);
      assert.equal(race[0].json().id, race[1].json().id);
      assert.equal(fake.orders().filter((o) => o.clientOrderId === raceId).length, 1);

      const reused = await submit(app, user.token, { ...body, amount: '0.02' });
      assert.equal(reused.statusCode, 409, reused.body);
      assert.equal(reused.json().code, 'CLIENT_ORDER_ID_REUSED');

      // The exchange takes the order but never answers; the immediate lookup fails too: the row stays pending and
      // the background reconciliation settles it by client order id.
      const cid = `idem${exchange}2`;
      fake.failNext({ kind: 'timeout', method: 'POST' });
      fake.failNext({ kind: 'serverError', method: 'GET', status: 503 });
      const timedOut = await submit(app, user.token, { ...body, clientOrderId: cid });
      assert.equal(timedOut.statusCode, 202, timedOut.body);
      assert.equal(timedOut.json().status, 'pending');
      const retried = await submit(app, user.token, { ...body, clientOrderId: cid });
      assert.equal(retried.json().id, timedOut.json().id, 'a retry with the same id answers the same order');
      const settled = await waitForOrder(app, user.token, timedOut.json().id, (o) => o.status !== 'pending');
      assert.equal(settled.status, 'open');
      assert.ok(settled.exchangeOrderId);
      assert.equal(fake.orders().filter((o) => o.clientOrderId === cid).length, 1);

      // A timeout where the immediate lookup works: answered with the placed order at once.
      const cid3 = `idem${exchange}3`;
      fake.failNext({ kind: 'timeout', method: 'POST' });
      const third = await submit(app, user.token, { ...body, clientOrderId: cid3 });
      assert.equal(third.statusCode, 201, third.body);
      assert.equal(third.json().status, 'open');
      assert.equal(fake.orders().filter((o) => o.clientOrderId === cid3).length, 1);
    });
  });
}
