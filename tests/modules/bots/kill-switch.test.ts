/**
 * The kill switch: engaging it stops every bot, cancels open orders on every connected exchange (saved keys and
 * paper) and refuses new orders with 423 until released, including the order of a bot that was in the middle of a
 * decision (its exchange call held by a fault delay while the switch is engaged). The admins' global switch.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminEnv, build, createUser, injectAs, loginAdmin } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { SWAP, allEvents, appendCandle, botEnv, botOrders, createBot, expectedOrders, getBot, saveKey, setCandles, submit, until, waitCandle, waveCandles } from './helpers.js';

let fake: FakeExchange;
before(async () => {
  fake = await startFakeExchange({ exchange: 'binance' });
  fake.engine.setBalance('USDT', '100000', 'swap');
  fake.engine.setBalance('USDT', '100000', 'spot');
});
after(() => fake.close());

const orderPosts = () => fake.requests.filter((r) => r.method === 'POST' && /\/(fapi|api)\/v\d\/order$/.test(r.path)).length;

describe('kill switch', () => {
  test('a bot in the middle of a decision places nothing; open orders cancelled; 423 until released', async (t) => {
    const all = waveCandles(40);
    setCandles(fake, all.slice(0, 10));
    const app = await build(t, { env: botEnv(fake, { BOTS_REQUIRE_BACKTEST: 'false', EXCHANGE_TIMEOUT_MS: '8000' }) });
    const user = await createUser(app);
    const keyId = await saveKey(app, user.token, fake, 'swap');

    // A resting limit order on the exchange (saved key) and one on the paper account.
    fake.engine.limitMode = 'rest';
    const resting = await submit(app, user.token, { keyId, symbol: SWAP, side: 'buy', type: 'limit', amount: '0.01', price: '30000' });
    assert.equal(resting.statusCode, 201, resting.body);
    assert.equal(resting.json().status, 'open');
    const paperResting = await submit(app, user.token, { keyId: 'paper', symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: '0.01', price: '30000' });
    assert.equal(paperResting.statusCode, 201, paperResting.body);
    assert.equal(paperResting.json().status, 'open');

    // A bot trading through the saved key on the fake exchange.
    const bot = await createBot(app, user.token, { keyId });
    const started = await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    assert.equal(started.statusCode, 200, started.body);
    await waitCandle(app, user.token, bot.id, all[9][0]);

    // Feed candles until the next one makes the strategy act; hold that decision's ticker call (before the order).
    const expected = expectedOrders(all, 10);
    const firstAction = expected[0][0];
    const idx = all.findIndex((r) => r[0] === firstAction);
    for (const row of all.slice(10, idx)) {
      appendCandle(fake, row);
      await waitCandle(app, user.token, bot.id, row[0]);
    }
    const postsBefore = orderPosts();
    // The swap ticker only: the paper account's resting spot order has its own ticker polls.
    const SWAP_TICKER = /^\/fapi\/.*ticker/;
    const tickerCalls = () => fake.requests.filter((r) => SWAP_TICKER.test(r.path)).length;
    const tickersBefore = tickerCalls();
    fake.failNext({ kind: 'delay', path: SWAP_TICKER, method: 'GET', delayMs: 2500 });
    appendCandle(fake, all[idx]);
    await until('the bot to be in the middle of its decision (ticker call held)', async () => tickerCalls() > tickersBefore);

    const engaged = await injectAs(app, user.token, { method: 'POST', url: '/account/kill-switch', payload: { reason: 'test' } });
    assert.equal(engaged.statusCode, 200, engaged.body);
    const k = engaged.json();
    assert.equal(k.engaged, true);
    assert.deepEqual(k.stoppedBots, [bot.id]);
    assert.ok(k.canceledOrders >= 2, engaged.body);

    // Nothing reached the exchange after the switch, even once the held call returned.
    await until('the held decision to finish', async () => (await allEvents(app, user.token, bot.id)).some((e) => e.type === 'order.failed' || e.type === 'skip'));
    assert.equal(orderPosts(), postsBefore, 'no order reached the exchange');
    const failed = (await allEvents(app, user.token, bot.id)).find((e) => e.type === 'order.failed' || e.type === 'skip')!;
    assert.ok(failed.data.status === 423 || failed.data.code === 'KILL_SWITCH_ENGAGED', JSON.stringify(failed));
    const rejected = (await botOrders(app, user.token, bot.id)).filter((o) => o.status !== 'rejected');
    assert.deepEqual(rejected, []);
    assert.equal((await getBot(app, user.token, bot.id)).status, 'stopped');
    assert.deepEqual(app.botsService.runningHere(), []);

    // Open orders were cancelled on the exchange and on paper.
    assert.equal(fake.orders().find((o) => o.clientOrderId === resting.json().clientOrderId)?.status, 'canceled');
    const paperOrder = await injectAs(app, user.token, { url: `/order/${paperResting.json().id}` });
    assert.equal(paperOrder.json().status, 'canceled');

    // New orders and bot starts are refused while engaged.
    const refused = await submit(app, user.token, { keyId, symbol: SWAP, side: 'buy', type: 'market', amount: '0.01' });
    assert.equal(refused.statusCode, 423, refused.body);
    assert.equal(refused.json().code, 'KILL_SWITCH_ENGAGED');
    const restart = await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    assert.equal(restart.statusCode, 423);
    assert.equal(orderPosts(), postsBefore);
    assert.equal((await injectAs(app, user.token, { url: '/account/kill-switch' })).json().engaged, true);

    // Another user is not affected.
    const other = await createUser(app);
    const ok = await submit(app, other.token, { keyId: 'paper', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.001' });
    assert.equal(ok.statusCode, 201, ok.body);

    // Released: trading works again.
    const released = await injectAs(app, user.token, { method: 'DELETE', url: '/account/kill-switch' });
    assert.equal(released.statusCode, 200, released.body);
    assert.equal(released.json().engaged, false);
    fake.engine.limitMode = 'auto';
    const again = await submit(app, user.token, { keyId, symbol: SWAP, side: 'buy', type: 'market', amount: '0.01' });
    assert.equal(again.statusCode, 201, again.body);
    assert.equal(orderPosts(), postsBefore + 1);
    const alt = await injectAs(app, user.token, { method: 'POST', url: '/account/kill-switch/release' });
    assert.equal(alt.statusCode, 200);
  });

  test('global kill switch (admin only) stops every bot and refuses every order', async (t) => {
    setCandles(fake, waveCandles(10));
    const app = await build(t, { env: { ...botEnv(fake), ...adminEnv } });
    const admin = await loginAdmin(app);
    const user = await createUser(app);
    const bot = await createBot(app, user.token);
    await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    await until('the bot to run', async () => app.botsService.runningHere().includes(bot.id));

    const forbidden = await injectAs(app, user.token, { method: 'POST', url: '/admin/kill-switch', payload: {} });
    assert.equal(forbidden.statusCode, 403);
    const engaged = await injectAs(app, admin.token, { method: 'POST', url: '/admin/kill-switch', payload: { reason: 'incident' } });
    assert.equal(engaged.statusCode, 200, engaged.body);
    assert.deepEqual(engaged.json().stoppedBots, [bot.id]);
    assert.equal((await getBot(app, user.token, bot.id)).status, 'stopped');
    const refused = await submit(app, user.token, { keyId: 'paper', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.001' });
    assert.equal(refused.statusCode, 423);
    assert.equal((await injectAs(app, user.token, { url: '/account/kill-switch' })).json().globalEngaged, true);

    const released = await injectAs(app, admin.token, { method: 'DELETE', url: '/admin/kill-switch' });
    assert.equal(released.statusCode, 200);
    const ok = await submit(app, user.token, { keyId: 'paper', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.001' });
    assert.equal(ok.statusCode, 201, ok.body);
  });

  test('deleting a user stops their running bots', async (t) => {
    setCandles(fake, waveCandles(10));
    const app = await build(t, { env: { ...botEnv(fake), ...adminEnv } });
    const admin = await loginAdmin(app);
    const user = await createUser(app);
    const bot = await createBot(app, user.token);
    await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    await until('the bot to run', async () => app.botsService.runningHere().includes(bot.id));
    const del = await injectAs(app, admin.token, { method: 'DELETE', url: `/admin/users/${user.id}` });
    assert.equal(del.statusCode, 204, del.body);
    await until('the runner to stop', async () => !app.botsService.runningHere().includes(bot.id));
  });
});
