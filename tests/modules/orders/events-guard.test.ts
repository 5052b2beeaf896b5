/** Order events on the user's bus topic, and the kill-switch hook point (tradingGuard) refusing before any row. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { build, createUser, injectAs } from '../../helper.js';
import { locked } from '../../../src/errors.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { envFor, submit } from './helpers.js';

let fake: FakeExchange;
before(async () => {
  fake = await startFakeExchange({ exchange: 'binance' });
});
after(() => fake.close());

test("order.updated and trade.filled are published on the user's topic only", async (t) => {
  const app = await build(t, { env: envFor([fake]) });
  const user = await createUser(app);
  const other = await createUser(app);
  const mine: Array<Record<string, any>> = [];
  const theirs: unknown[] = [];
  const off1 = app.eventBus.subscribe(`user:${user.id}`, (e) => mine.push(e));
  const off2 = app.eventBus.subscribe(`user:${other.id}`, (e) => theirs.push(e));
  t.after(() => {
    off1();
    off2();
  });
  const res = await submit(app, user.token, { keyId: 'paper', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.01' });
  assert.equal(res.statusCode, 201, res.body);
  const filled = mine.find((e) => e.type === 'trade.filled');
  assert.ok(filled, JSON.stringify(mine));
  assert.equal(filled.trade.orderId, res.json().id);
  assert.equal(filled.trade.amount, '0.01');
  const updated = mine.find((e) => e.type === 'order.updated');
  assert.equal(updated?.order.id, res.json().id);
  assert.equal(updated?.order.status, 'closed');
  assert.deepEqual(theirs, []);
});

test('tradingGuard: a locked user gets 423 and no order row is written, nothing sent', async (t) => {
  const app = await build(t, { env: envFor([fake]) });
  const user = await createUser(app);
  app.tradingGuard.setCheck((userId) => {
    if (userId === user.id) throw locked('trading is stopped by the kill switch', 'KILL_SWITCH_ENGAGED');
  });
  const res = await submit(app, user.token, { keyId: 'paper', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.01' });
  assert.equal(res.statusCode, 423, res.body);
  assert.equal(res.json().code, 'KILL_SWITCH_ENGAGED');
  assert.deepEqual((await injectAs(app, user.token, { url: '/order/history' })).json().items, []);
  const other = await createUser(app);
  const ok = await submit(app, other.token, { keyId: 'paper', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.01' });
  assert.equal(ok.statusCode, 201, ok.body);
});
