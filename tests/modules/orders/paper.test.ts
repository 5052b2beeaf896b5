/**
 * The paper account: starting balances from config, market fills at the live price (the configured exchange's public
 * ticker: the fake) with fee and slippage, resting limit orders that fill when the price crosses them, state in the
 * database so a restart keeps it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { build, createUser, injectAs } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { envFor, submit, waitForOrder } from './helpers.js';

const SPOT = 'BTC/USDT';
let fake: FakeExchange;
before(async () => {
  fake = await startFakeExchange({ exchange: 'binance' });
});
after(() => fake.close());

const paperEnv = () =>
  envFor([fake], { PAPER_PRICE_EXCHANGE: 'binance', PAPER_START_BALANCES: 'USDT=10000', PAPER_FEE_BPS: '10', PAPER_SLIPPAGE_BPS: '5' });

const balances = async (app: Parameters<typeof injectAs>[0], token: string, marketType = 'spot') => {
  const res = await injectAs(app, token, { url: `/account/balance?keyId=paper&marketType=${marketType}` });
  assert.equal(res.statusCode, 200, res.body);
  return Object.fromEntries(res.json().balances.map((b: { currency: string }) => [b.currency, b]));
};

describe('paper trading', () => {
  test('market fill with fee and slippage, limit order filled when the price crosses, restart keeps everything', async (t) => {
    fake.engine.setPrice(SPOT, '50000');
    const app = await build(t, { env: paperEnv() });
    const user = await createUser(app);
    assert.deepEqual(await balances(app, user.token), { USDT: { currency: 'USDT', free: '10000', used: '0', total: '10000' } });

    const buy = await submit(app, user.token, { keyId: 'paper', symbol: SPOT, side: 'buy', type: 'market', amount: '0.1' });
    assert.equal(buy.statusCode, 201, buy.body);
    const order = buy.json();
    assert.equal(order.exchange, 'paper');
    assert.equal(order.status, 'closed');
    assert.equal(order.average, '50025'); // 50000 + 5 bps slippage against the buyer
    assert.equal(order.cost, '5002.5');
    assert.equal(order.fee, '5.0025'); // 10 bps of the value
    assert.equal(order.feeCurrency, 'USDT');
    const fills = (await injectAs(app, user.token, { url: `/trades?orderId=${order.id}` })).json().items;
    assert.equal(fills.length, 1);
    assert.equal(fills[0].price, '50025');
    assert.equal(fills[0].fee, '5.0025');
    let b = await balances(app, user.token);
    assert.equal(b.USDT.total, '4992.4975');
    assert.equal(b.BTC.total, '0.1');

    // limit buy below the market rests and reserves its funds
    const limit = await submit(app, user.token, { keyId: 'paper', symbol: SPOT, side: 'buy', type: 'limit', amount: '0.02', price: '45000' });
    assert.equal(limit.statusCode, 201, limit.body);
    assert.equal(limit.json().status, 'open');
    b = await balances(app, user.token);
    assert.equal(b.USDT.used, '900.9'); // 900 + 0.9 fee reserved
    // a sell limit above the market, cancelled
    const sell = await submit(app, user.token, { keyId: 'paper', symbol: SPOT, side: 'sell', type: 'limit', amount: '0.05', price: '60000' });
    const canceled = await injectAs(app, user.token, { method: 'POST', url: `/order/${sell.json().id}/cancel` });
    assert.equal(canceled.json().status, 'canceled');

    // the live price crosses the limit: it fills at its limit price (maker), picked up by the background sync
    fake.engine.setPrice(SPOT, '44000');
    const filled = await waitForOrder(app, user.token, limit.json().id, (o) => o.status === 'closed');
    assert.equal(filled.average, '45000');
    assert.equal(filled.fee, '0.9');
    b = await balances(app, user.token);
    assert.equal(b.USDT.total, '4091.5975');
    assert.equal(b.BTC.total, '0.12');
    assert.equal(b.USDT.used, '0');
    const trades = (await injectAs(app, user.token, { url: '/trades?keyId=paper' })).json().items;
    assert.equal(trades.length, 2);
    await app.close();

    // restart: a new app on the same database continues the same account
    const again = await build(t, { env: paperEnv(), keepData: true });
    b = await balances(again, user.token);
    assert.equal(b.USDT.total, '4091.5975');
    assert.equal(b.BTC.total, '0.12');
    const sellAll = await submit(again, user.token, { keyId: 'paper', symbol: SPOT, side: 'sell', type: 'market', amount: '0.12' });
    assert.equal(sellAll.statusCode, 201, sellAll.body);
    assert.equal(sellAll.json().average, '43978'); // 44000 - 5 bps
    const history = (await injectAs(again, user.token, { url: '/order/history?keyId=paper' })).json().items;
    assert.equal(history.length, 4);
    fake.engine.setPrice(SPOT, '50000');
  });

  test('paper refusals: insufficient funds, limits of the market, swap positions', async (t) => {
    fake.engine.setPrice('BTC/USDT:USDT', '50000');
    const app = await build(t, { env: paperEnv() });
    const user = await createUser(app);
    const poor = await submit(app, user.token, { keyId: 'paper', symbol: SPOT, side: 'buy', type: 'market', amount: '1' });
    assert.equal(poor.statusCode, 422, poor.body);
    assert.equal(poor.json().code, 'EXCHANGE_INSUFFICIENT_FUNDS');
    const tiny = await submit(app, user.token, { keyId: 'paper', symbol: SPOT, side: 'buy', type: 'limit', amount: '0.00001', price: '40000' });
    assert.equal(tiny.statusCode, 422);
    assert.equal(tiny.json().limit, 'cost.min');

    const long = await submit(app, user.token, { keyId: 'paper', symbol: 'BTC/USDT:USDT', side: 'buy', type: 'market', amount: '0.01' });
    assert.equal(long.statusCode, 201, long.body);
    const positions = (await injectAs(app, user.token, { url: '/account/positions?keyId=paper' })).json();
    assert.equal(positions.exchange, 'paper');
    assert.equal(positions.items.length, 1);
    assert.equal(positions.items[0].side, 'long');
    assert.equal(positions.items[0].contracts, '0.01');
  });
});
