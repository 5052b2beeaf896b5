import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpProblem } from '../../../src/errors.js';
import { createMemoryPaperStore, createPaperAdapter, type PaperAdapterOptions } from '../../../src/modules/exchanges/paper-adapter.js';
import type { Market } from '../../../src/modules/exchanges/types.js';

const SPOT: Market = {
  symbol: 'BTC/USDT',
  id: 'BTCUSDT',
  base: 'BTC',
  quote: 'USDT',
  type: 'spot',
  active: true,
  precision: { amount: '0.0001', price: '0.01' },
  limits: { amount: { min: '0.0001', max: '100' }, price: {}, cost: { min: '10' } },
};

const SWAP: Market = {
  ...SPOT,
  symbol: 'BTC/USDT:USDT',
  settle: 'USDT',
  type: 'swap',
  contractSize: '1',
  precision: { amount: '0.001', price: '0.1' },
  limits: { amount: { min: '0.001' }, price: {}, cost: { min: '5' } },
};

function setup(overrides: Partial<PaperAdapterOptions> = {}) {
  const prices = new Map<string, string>([
    ['BTC/USDT', '50000'],
    ['BTC/USDT:USDT', '50000'],
  ]);
  const store = createMemoryPaperStore();
  const options: PaperAdapterOptions = {
    accountId: 'user-1',
    store,
    marketType: 'spot',
    markets: [SPOT, SWAP],
    prices: { getPrice: (symbol) => prices.get(symbol) },
    startingBalances: { USDT: '10000' },
    feeBps: 10,
    slippageBps: 5,
    now: () => 1_700_000_000_000,
    ...overrides,
  };
  return { prices, store, options, adapter: createPaperAdapter(options) };
}

async function problemOf(fn: () => Promise<unknown>): Promise<HttpProblem> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof HttpProblem, String(err));
    return err;
  }
  assert.fail('expected a problem');
}

describe('paper adapter', () => {
  test('a market buy fills at price + slippage and pays the fee in quote', async () => {
    const { adapter } = setup();
    const order = await adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.1', clientOrderId: 'c1' });
    // 50000 * (1 + 5bps) = 50025; cost = 0.1 * 50025 = 5002.5; fee = 10bps of cost = 5.0025
    assert.equal(order.status, 'closed');
    assert.equal(order.average, '50025');
    assert.equal(order.cost, '5002.5');
    assert.deepEqual(order.fee, { currency: 'USDT', cost: '5.0025' });
    const balance = await adapter.fetchBalance();
    assert.equal(balance.USDT?.total, '4992.4975');
    assert.equal(balance.BTC?.total, '0.1');
    const trades = await adapter.fetchMyTrades('BTC/USDT');
    assert.equal(trades.length, 1);
    assert.equal(trades[0]!.takerOrMaker, 'taker');
    assert.equal(trades[0]!.price, '50025');
  });

  test('spot realised PnL: sells against the average cost of what was bought (fees included)', async () => {
    const { adapter, prices } = setup({ slippageBps: 0 });
    await adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.1', clientOrderId: 'b1' });
    // basis: 5000 + 5 fee = 5005 for 0.1 BTC
    prices.set('BTC/USDT', '52000');
    await adapter.createOrder({ symbol: 'BTC/USDT', side: 'sell', type: 'market', amount: '0.05', clientOrderId: 's1' });
    // proceeds 2600 - 2.6 fee = 2597.4; basis of 0.05 = 2502.5
    assert.equal(await adapter.realizedPnl(), '94.9');
  });

  test('a market sell fills at price - slippage', async () => {
    const { adapter } = setup({ startingBalances: { BTC: '1' } });
    const order = await adapter.createOrder({ symbol: 'BTC/USDT', side: 'sell', type: 'market', amount: '0.5', clientOrderId: 's1' });
    // 50000 * (1 - 5bps) = 49975; cost 24987.5; fee 24.9875
    assert.equal(order.average, '49975');
    const balance = await adapter.fetchBalance();
    assert.equal(balance.USDT?.total, '24962.5125');
    assert.equal(balance.BTC?.total, '0.5');
  });

  test('a limit order rests with funds reserved and fills when the price crosses it', async () => {
    const { adapter } = setup();
    const order = await adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: '0.1', price: '49000', clientOrderId: 'l1' });
    assert.equal(order.status, 'open');
    let balance = await adapter.fetchBalance();
    // reserved: 0.1 * 49000 * (1 + 10bps) = 4904.9
    assert.equal(balance.USDT?.used, '4904.9');
    assert.equal(balance.USDT?.free, '5095.1');

    assert.deepEqual(await adapter.onPrice('BTC/USDT', '49500'), [], 'above the limit: no fill');
    const filled = await adapter.onPrice('BTC/USDT', '48999.5');
    assert.equal(filled.length, 1);
    assert.equal(filled[0]!.id, order.id);
    assert.equal(filled[0]!.average, '49000', 'a resting limit fills at its own price');

    balance = await adapter.fetchBalance();
    assert.equal(balance.USDT?.total, '5095.1'); // 10000 - 4900 - 4.9
    assert.equal(balance.USDT?.used, '0');
    assert.equal(balance.BTC?.total, '0.1');
    const trades = await adapter.fetchMyTrades('BTC/USDT');
    assert.equal(trades[0]!.takerOrMaker, 'maker');
    assert.deepEqual(await adapter.fetchOpenOrders(), []);
  });

  test('onCandle fills a sell limit when the high reaches it', async () => {
    const { adapter } = setup({ startingBalances: { BTC: '1' } });
    const order = await adapter.createOrder({ symbol: 'BTC/USDT', side: 'sell', type: 'limit', amount: '0.2', price: '51000', clientOrderId: 'l2' });
    const none = await adapter.onCandle('BTC/USDT', { timestamp: 0, open: '50000', high: '50900', low: '49900', close: '50500', volume: '1' });
    assert.deepEqual(none, []);
    const filled = await adapter.onCandle('BTC/USDT', { timestamp: 60_000, open: '50500', high: '51200', low: '50400', close: '50800', volume: '1' });
    assert.deepEqual(filled.map((o) => o.id), [order.id]);
    assert.equal((await adapter.fetchOrder(order.id, 'BTC/USDT')).status, 'closed');
  });

  test('cancel releases the reserved funds', async () => {
    const { adapter } = setup();
    const order = await adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: '0.1', price: '40000', clientOrderId: 'l3' });
    const canceled = await adapter.cancelOrder(order.id, 'BTC/USDT');
    assert.equal(canceled.status, 'canceled');
    const balance = await adapter.fetchBalance();
    assert.equal(balance.USDT?.free, '10000');
    const problem = await problemOf(() => adapter.cancelOrder(order.id, 'BTC/USDT'));
    assert.equal(problem.statusCode, 404);
  });

  test('clientOrderId is idempotent: the same id returns the same order and trades once', async () => {
    const { adapter } = setup();
    const req = { symbol: 'BTC/USDT', side: 'buy' as const, type: 'market' as const, amount: '0.01', clientOrderId: 'same' };
    const first = await adapter.createOrder(req);
    const again = await adapter.createOrder(req);
    assert.deepEqual(again, first);
    assert.equal((await adapter.fetchMyTrades('BTC/USDT')).length, 1);
    assert.equal((await adapter.fetchOrderByClientId('same', 'BTC/USDT'))?.id, first.id);
    assert.equal(await adapter.fetchOrderByClientId('other', 'BTC/USDT'), null);
  });

  test('insufficient funds and limits are 422 problems', async () => {
    const { adapter } = setup();
    const funds = await problemOf(() => adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '1', clientOrderId: 'x1' }));
    assert.equal(funds.code, 'EXCHANGE_INSUFFICIENT_FUNDS');
    const min = await problemOf(() => adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: '0.0001', price: '50000', clientOrderId: 'x2' }));
    assert.equal(min.statusCode, 422);
    assert.equal(min.extensions?.limit, 'cost.min');
    const step = await problemOf(() => adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: '0.00015', price: '50000', clientOrderId: 'x3' }));
    assert.equal(step.extensions?.limit, 'amount.precision');
  });

  test('restart: a new adapter over the same store keeps balances and orders', async () => {
    const { adapter, options } = setup();
    await adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.1', clientOrderId: 'r1' });
    const resting = await adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: '0.01', price: '45000', clientOrderId: 'r2' });
    const before = await adapter.fetchBalance();
    await adapter.close();

    const restarted = createPaperAdapter({ ...options, startingBalances: { USDT: '999999' } });
    assert.deepEqual(await restarted.fetchBalance(), before, 'starting balances only apply to a new account');
    assert.deepEqual((await restarted.fetchOpenOrders('BTC/USDT')).map((o) => o.id), [resting.id]);
    const again = await restarted.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.1', clientOrderId: 'r1' });
    assert.equal(again.clientOrderId, 'r1');
    assert.equal((await restarted.fetchMyTrades('BTC/USDT')).length, 1, 'no second fill after restart');
    const filled = await restarted.onPrice('BTC/USDT', '44000');
    assert.deepEqual(filled.map((o) => o.id), [resting.id]);
    await restarted.close();
  });

  test('state is persisted as JSON with decimal strings', async () => {
    const { adapter, store } = setup();
    await adapter.createOrder({ symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: '0.1', clientOrderId: 'j1' });
    const state = store.snapshot('user-1');
    assert.ok(state);
    assert.equal(typeof state.balances.USDT, 'string');
    assert.equal(state.orders[0]!.amount, '0.1');
    assert.equal(JSON.parse(JSON.stringify(state)).balances.BTC, '0.1');
  });

  test('swap: long then short-close books realised PnL minus fees', async () => {
    const { adapter, prices } = setup({ marketType: 'swap', slippageBps: 0, leverage: '5' });
    await adapter.createOrder({ symbol: 'BTC/USDT:USDT', side: 'buy', type: 'market', amount: '0.1', clientOrderId: 'p1' });
    let [position] = await adapter.fetchPositions();
    assert.equal(position?.side, 'long');
    assert.equal(position?.contracts, '0.1');
    assert.equal(position?.entryPrice, '50000');
    let balance = await adapter.fetchBalance();
    assert.equal(balance.USDT?.used, '1000', 'margin = 0.1 * 50000 / 5');

    prices.set('BTC/USDT:USDT', '52000');
    [position] = await adapter.fetchPositions();
    assert.equal(position?.unrealizedPnl, '200');

    const problem = await problemOf(() =>
      adapter.createOrder({ symbol: 'BTC/USDT:USDT', side: 'buy', type: 'market', amount: '0.1', reduceOnly: true, clientOrderId: 'p2' }),
    );
    assert.equal(problem.code, 'EXCHANGE_INVALID_ORDER');

    await adapter.createOrder({ symbol: 'BTC/USDT:USDT', side: 'sell', type: 'market', amount: '0.1', reduceOnly: true, clientOrderId: 'p3' });
    assert.deepEqual(await adapter.fetchPositions(), []);
    assert.equal(await adapter.realizedPnl(), '200');
    balance = await adapter.fetchBalance();
    // 10000 - open fee 5 (5000 * 10bps) + 200 pnl - close fee 5.2 (5200 * 10bps)
    assert.equal(balance.USDT?.total, '10189.8');
    assert.equal(balance.USDT?.used, '0');
  });

  test('swap: short positions', async () => {
    const { adapter, prices } = setup({ marketType: 'swap', slippageBps: 0, feeBps: 0 });
    await adapter.createOrder({ symbol: 'BTC/USDT:USDT', side: 'sell', type: 'market', amount: '0.05', clientOrderId: 'sh1' });
    const [position] = await adapter.fetchPositions();
    assert.equal(position?.side, 'short');
    prices.set('BTC/USDT:USDT', '48000');
    await adapter.createOrder({ symbol: 'BTC/USDT:USDT', side: 'buy', type: 'market', amount: '0.05', clientOrderId: 'sh2' });
    assert.equal(await adapter.realizedPnl(), '100');
  });

  test('watchTicker streams the prices reported through onPrice', async () => {
    const { adapter } = setup();
    const stream = adapter.watchTicker('BTC/USDT');
    const seen: string[] = [];
    const reading = (async () => {
      for await (const t of stream) {
        seen.push(t.last!);
        if (seen.length === 2) break;
      }
    })();
    await adapter.onPrice('ETH/USDT', '3000');
    await adapter.onPrice('BTC/USDT', '50001');
    await adapter.onPrice('BTC/USDT', '50002');
    await reading;
    assert.deepEqual(seen, ['50001', '50002']);
    const ticker = await adapter.fetchTicker('BTC/USDT');
    assert.equal(ticker.last, '50000', 'the injected price source wins over the last reported price');
  });
});
