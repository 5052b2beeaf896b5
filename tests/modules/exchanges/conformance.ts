/**
 * The same behaviour checks for every exchange: the real ccxt library, through createCcxtAdapter, against the
 * loopback fake exchange speaking that exchange's wire format.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpProblem } from '../../../src/errors.js';
import { createCcxtAdapter } from '../../../src/modules/exchanges/ccxt-adapter.js';
import { isOrderOutcomeUnknown } from '../../../src/modules/exchanges/errors.js';
import type { ExchangeAdapter, ExchangeId, MarketType } from '../../../src/modules/exchanges/types.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';

export interface ConformanceOptions {
  exchange: ExchangeId;
  /** Order sizes valid on the fake's markets (swap sizes are in contracts). */
  spotAmount: string;
  swapAmount: string;
  /** An amount below the market minimum. */
  tinyAmount: string;
}

const SPOT = 'BTC/USDT';
const SWAP = 'BTC/USDT:USDT';
const CLIENT_TIMEOUT_MS = 1_500;

/** Calls `fn`, expects an HttpProblem, and checks that no credential leaks through it. */
async function problemOf(fake: FakeExchange, fn: () => Promise<unknown>): Promise<HttpProblem> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof HttpProblem, `expected an HttpProblem, got ${String(err)}`);
    assertNoSecrets(fake, err);
    return err;
  }
  assert.fail('expected the call to fail');
}

function assertNoSecrets(fake: FakeExchange, err: HttpProblem): void {
  const text = `${err.message} ${JSON.stringify(err.extensions ?? {})} ${JSON.stringify(err.headers ?? {})} ${String(err.stack)}`;
  for (const secret of [fake.credentials.apiKey, fake.credentials.secret, fake.credentials.passphrase, 'wrong-secret-value-xyz']) {
    if (secret) assert.ok(!text.includes(secret), `error text leaks a credential: ${text}`);
  }
  assert.doesNotMatch(text, /signature=[0-9a-f]{16,}/i);
  assert.equal(err.cause, undefined, 'the raw ccxt error (with signed URLs) must not be chained');
}

export function runConformance(opts: ConformanceOptions): void {
  const { exchange } = opts;

  describe(`${exchange} through ccxt against the fake exchange`, () => {
    let fake: FakeExchange;
    const adapters: ExchangeAdapter[] = [];

    const adapter = (marketType: MarketType, overrides: { secret?: string; passphrase?: string; sandbox?: boolean } = {}) => {
      const a = createCcxtAdapter({
        exchange,
        marketType,
        credentials: {
          ...fake.credentials,
          secret: overrides.secret ?? fake.credentials.secret,
          passphrase: overrides.passphrase ?? fake.credentials.passphrase,
        },
        sandbox: overrides.sandbox,
        urls: { rest: fake.url, ws: fake.wsUrl },
        timeoutMs: CLIENT_TIMEOUT_MS,
      });
      adapters.push(a);
      return a;
    };

    before(async () => {
      fake = await startFakeExchange({ exchange });
      fake.engine.setBalance('USDT', '100000');
      fake.engine.setBalance('BTC', '1');
      fake.engine.setBalance('USDT', '100000', 'swap');
    });

    after(async () => {
      await Promise.all(adapters.map((a) => a.close()));
      await fake.close();
    });

    test('verifyCredentials: right keys pass, a wrong secret is EXCHANGE_AUTH_FAILED', async () => {
      const report = await adapter('spot').verifyCredentials();
      assert.equal(report.ok, true);
      assert.equal(report.exchange, exchange);
      assert.equal(report.canTrade, true);
      assert.equal(report.canWithdraw, false);

      const problem = await problemOf(fake, () => adapter('spot', { secret: 'wrong-secret-value-xyz' }).verifyCredentials());
      assert.equal(problem.statusCode, 422);
      assert.equal(problem.code, 'EXCHANGE_AUTH_FAILED');
      assert.match(problem.message, new RegExp(exchange));
    });

    if (exchange !== 'binance') {
      test('a wrong passphrase is EXCHANGE_AUTH_FAILED', async () => {
        const problem = await problemOf(fake, () => adapter('spot', { passphrase: 'wrong-passphrase' }).verifyCredentials());
        assert.equal(problem.code, 'EXCHANGE_AUTH_FAILED');
        assert.ok(!problem.message.includes('wrong-passphrase'));
      });
    }

    test('sandbox mode keeps the URL overrides (applied after setSandboxMode)', async () => {
      const a = adapter('spot', { sandbox: true });
      const balance = await a.fetchBalance();
      assert.ok(balance.USDT, 'the sandbox client reached the fake');
    });

    test('markets carry precision and limits as decimal strings', async () => {
      const spot = await adapter('spot').loadMarkets();
      const btc = spot[SPOT];
      assert.ok(btc, 'BTC/USDT spot market');
      assert.equal(btc.type, 'spot');
      assert.equal(btc.precision.price, '0.01');
      assert.equal(typeof btc.limits.amount.min, 'string');
      const swap = await adapter('swap').loadMarkets();
      assert.equal(swap[SWAP]?.type, 'swap');
      assert.equal(swap[SPOT], undefined, 'a swap adapter only lists swap markets');
    });

    test('spot: balance, market order fill, my trades', async () => {
      const a = adapter('spot');
      const before = await a.fetchBalance();
      assert.equal(before.USDT?.free, '100000');
      const order = await a.createOrder({ symbol: SPOT, side: 'buy', type: 'market', amount: opts.spotAmount, clientOrderId: 'mkt1' });
      assert.equal(order.clientOrderId, 'mkt1');
      assert.equal(order.status, 'closed', 'createOrder reports the fill');
      assert.equal(order.filled, opts.spotAmount);
      const fetched = await a.fetchOrder(order.id, SPOT);
      assert.equal(fetched.status, 'closed');
      assert.equal(fetched.filled, opts.spotAmount);
      assert.equal(fetched.average, '50000');

      const trades = await a.fetchMyTrades(SPOT);
      const trade = trades.find((t) => t.orderId === order.id);
      assert.ok(trade, 'the fill is in my trades');
      assert.equal(trade.price, '50000');
      assert.equal(trade.amount, opts.spotAmount);
      assert.equal(trade.side, 'buy');

      const after = await a.fetchBalance();
      assert.ok(Number(after.USDT!.total) < 100000, 'quote balance went down');
      assert.ok(Number(after.BTC!.total) > 1, 'base balance went up');
    });

    test('spot: limit order rests, is found by client id, fills when the price crosses, cancel', async () => {
      const a = adapter('spot');
      const rest = await a.createOrder({ symbol: SPOT, side: 'buy', type: 'limit', amount: opts.spotAmount, price: '40000', clientOrderId: 'lim1' });
      assert.equal(rest.status, 'open');
      assert.equal(rest.price, '40000');
      assert.equal(rest.filled, '0');
      const open = await a.fetchOpenOrders(SPOT);
      assert.deepEqual(open.map((o) => o.id), [rest.id]);
      assert.equal(open[0]!.price, '40000');

      const byClient = await a.fetchOrderByClientId('lim1', SPOT);
      assert.equal(byClient?.id, rest.id);
      assert.equal(byClient?.status, 'open');
      assert.equal(await a.fetchOrderByClientId('no-such-id', SPOT), null);

      fake.engine.setPrice(SPOT, '39990');
      const filled = await a.fetchOrder(rest.id, SPOT);
      assert.equal(filled.status, 'closed');
      assert.equal(filled.filled, opts.spotAmount);
      fake.engine.setPrice(SPOT, '50000');

      const toCancel = await a.createOrder({ symbol: SPOT, side: 'sell', type: 'limit', amount: opts.spotAmount, price: '60000', clientOrderId: 'lim2' });
      const canceled = await a.cancelOrder(toCancel.id, SPOT);
      assert.equal(canceled.id, toCancel.id);
      assert.equal((await a.fetchOrder(toCancel.id, SPOT)).status, 'canceled');
      assert.deepEqual(await a.fetchOpenOrders(SPOT), []);
    });

    test('market data: OHLCV and ticker', async () => {
      const a = adapter('spot');
      const candles = await a.fetchOHLCV(SPOT, '1m', { limit: 5 });
      assert.ok(candles.length >= 1 && candles.length <= 5);
      const last = candles.at(-1)!;
      assert.equal(last.close, '50000');
      assert.ok(Number(last.high) >= Number(last.low));
      assert.equal(last.timestamp % 60_000, 0);
      const ticker = await a.fetchTicker(SPOT);
      assert.equal(ticker.symbol, SPOT);
      assert.equal(ticker.last, '50000');
    });

    test('swap: market order opens a long position; reduce-only closes it', async () => {
      const a = adapter('swap');
      const bal = await a.fetchBalance();
      assert.ok(bal.USDT, 'swap wallet has USDT');
      await a.createOrder({ symbol: SWAP, side: 'buy', type: 'market', amount: opts.swapAmount, clientOrderId: 'swp1' });
      const positions = await a.fetchPositions();
      const pos = positions.find((p) => p.symbol === SWAP);
      assert.ok(pos, 'a BTC/USDT:USDT position');
      assert.equal(pos.side, 'long');
      assert.equal(pos.contracts, opts.swapAmount);
      assert.equal(pos.entryPrice, '50000');

      await a.createOrder({ symbol: SWAP, side: 'sell', type: 'market', amount: opts.swapAmount, reduceOnly: true, clientOrderId: 'swp2' });
      assert.deepEqual((await a.fetchPositions()).filter((p) => p.symbol === SWAP), []);
      const trades = await a.fetchMyTrades(SWAP);
      assert.deepEqual(trades.map((t) => t.side).sort(), ['buy', 'sell']);
    });

    test('swap: resting limit order, open orders, lookup by client id, cancel', async () => {
      const a = adapter('swap');
      const order = await a.createOrder({ symbol: SWAP, side: 'buy', type: 'limit', amount: opts.swapAmount, price: '45000', clientOrderId: 'swpl1' });
      assert.deepEqual((await a.fetchOpenOrders(SWAP)).map((o) => o.id), [order.id]);
      const found = await a.fetchOrderByClientId('swpl1', SWAP);
      assert.equal(found?.id, order.id);
      assert.equal(found?.amount, opts.swapAmount);
      assert.equal(await a.fetchOrderByClientId('swpl-missing', SWAP), null);
      await a.cancelOrder(order.id, SWAP);
      assert.equal((await a.fetchOrder(order.id, SWAP)).status, 'canceled');
      assert.deepEqual(await a.fetchOpenOrders(SWAP), []);
    });

    test('insufficient funds is 422 EXCHANGE_INSUFFICIENT_FUNDS', async () => {
      const problem = await problemOf(fake, () =>
        adapter('spot').createOrder({ symbol: SPOT, side: 'buy', type: 'limit', amount: '100', price: '50000', clientOrderId: 'big1' }),
      );
      assert.equal(problem.statusCode, 422);
      assert.equal(problem.code, 'EXCHANGE_INSUFFICIENT_FUNDS');
      assert.equal(isOrderOutcomeUnknown(problem), false);
    });

    test('below the minimum is 422 naming the limit', async () => {
      const problem = await problemOf(fake, () =>
        adapter('spot').createOrder({ symbol: SPOT, side: 'buy', type: 'limit', amount: opts.tinyAmount, price: '100', clientOrderId: 'tiny1' }),
      );
      assert.equal(problem.statusCode, 422);
      assert.equal(problem.code, 'EXCHANGE_INVALID_ORDER');
      assert.match(String(problem.extensions?.limit), /^(cost|amount)\.min$/);
    });

    test('a duplicate client order id is rejected by the exchange', async () => {
      const a = adapter('spot');
      await a.createOrder({ symbol: SPOT, side: 'sell', type: 'limit', amount: opts.spotAmount, price: '70000', clientOrderId: 'dup1' });
      const problem = await problemOf(fake, () =>
        a.createOrder({ symbol: SPOT, side: 'sell', type: 'limit', amount: opts.spotAmount, price: '70000', clientOrderId: 'dup1' }),
      );
      assert.equal(problem.statusCode, 409);
      assert.equal(problem.code, 'EXCHANGE_DUPLICATE_CLIENT_ORDER_ID');
      assert.equal(fake.orders().filter((o) => o.clientOrderId === 'dup1').length, 1);
    });

    test('429 becomes 503 EXCHANGE_RATE_LIMITED with Retry-After', async () => {
      const a = adapter('spot');
      await a.loadMarkets();
      fake.failNext({ kind: 'rateLimit', retryAfterSeconds: 7 });
      const problem = await problemOf(fake, () => a.fetchBalance());
      assert.equal(problem.statusCode, 503);
      assert.equal(problem.code, 'EXCHANGE_RATE_LIMITED');
      assert.equal(problem.headers?.['retry-after'], '7');
    });

    test('5xx becomes 503 EXCHANGE_UNAVAILABLE', async () => {
      const a = adapter('spot');
      await a.loadMarkets();
      fake.failNext({ kind: 'serverError', status: 503 });
      const problem = await problemOf(fake, () => a.fetchTicker(SPOT));
      assert.equal(problem.statusCode, 503);
      assert.equal(problem.code, 'EXCHANGE_UNAVAILABLE');
    });

    test('a revoked key mid-session is EXCHANGE_AUTH_FAILED', async () => {
      const a = adapter('spot');
      await a.loadMarkets();
      fake.failNext({ kind: 'auth' });
      const problem = await problemOf(fake, () => a.fetchOpenOrders(SPOT));
      assert.equal(problem.statusCode, 422);
      assert.equal(problem.code, 'EXCHANGE_AUTH_FAILED');
    });

    test('timeout after the exchange accepted: outcome unknown, then found by client order id', async () => {
      const a = adapter('spot');
      await a.loadMarkets();
      fake.failNext({ kind: 'timeout', method: 'POST' });
      const problem = await problemOf(fake, () =>
        a.createOrder({ symbol: SPOT, side: 'buy', type: 'limit', amount: opts.spotAmount, price: '41000', clientOrderId: 'tmo1' }),
      );
      assert.equal(problem.statusCode, 504);
      assert.equal(problem.code, 'EXCHANGE_TIMEOUT');
      assert.ok(isOrderOutcomeUnknown(problem));
      assert.equal(problem.clientOrderId, 'tmo1');

      const found = await a.fetchOrderByClientId('tmo1', SPOT);
      assert.ok(found, 'the order the exchange accepted is found');
      assert.equal(found.clientOrderId, 'tmo1');
      assert.equal(fake.orders().filter((o) => o.clientOrderId === 'tmo1').length, 1, 'exactly one order');
    });

    test('an answer slower than the client timeout: outcome unknown, exactly one order held', async () => {
      const a = adapter('spot');
      await a.loadMarkets();
      fake.failNext({ kind: 'delay', delayMs: CLIENT_TIMEOUT_MS * 3, method: 'POST' });
      const problem = await problemOf(fake, () =>
        a.createOrder({ symbol: SPOT, side: 'sell', type: 'limit', amount: opts.spotAmount, price: '80000', clientOrderId: 'slow1' }),
      );
      assert.ok(isOrderOutcomeUnknown(problem));
      // The caller reconciles instead of retrying blindly:
      const found = await a.fetchOrderByClientId('slow1', SPOT);
      assert.equal(found?.status, 'open');
      assert.equal(fake.orders().filter((o) => o.clientOrderId === 'slow1').length, 1);
    });

    test('5xx on createOrder: outcome unknown; reconciliation finds no order', async () => {
      const a = adapter('spot');
      await a.loadMarkets();
      fake.failNext({ kind: 'serverError', status: 502, method: 'POST' });
      const problem = await problemOf(fake, () =>
        a.createOrder({ symbol: SPOT, side: 'buy', type: 'limit', amount: opts.spotAmount, price: '41000', clientOrderId: 'gw1' }),
      );
      assert.ok(isOrderOutcomeUnknown(problem));
      assert.equal(await a.fetchOrderByClientId('gw1', SPOT), null);
      assert.equal(fake.orders().filter((o) => o.clientOrderId === 'gw1').length, 0);
    });
  });
}
