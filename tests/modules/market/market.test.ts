/** Public market data through the fake exchanges: symbols, ticker, candles, brief caching, input validation. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { envFor } from '../orders/helpers.js';

let binance: FakeExchange;
let okx: FakeExchange;
let bitget: FakeExchange;
before(async () => {
  [binance, okx, bitget] = await Promise.all([
    startFakeExchange({ exchange: 'binance' }),
    startFakeExchange({ exchange: 'okx' }),
    startFakeExchange({ exchange: 'bitget' }),
  ]);
});
after(() => Promise.all([binance.close(), okx.close(), bitget.close()]));

describe('market data (public)', () => {
  test('symbols, ticker and candles from each exchange without authentication', async (t) => {
    const app = await build(t, { env: envFor([binance, okx, bitget]) });
    for (const fake of [binance, okx, bitget]) {
      const symbols = await app.inject({ url: `/market/symbols?exchange=${fake.exchange}` });
      assert.equal(symbols.statusCode, 200, symbols.body);
      const btc = symbols.json().items.find((m: { symbol: string }) => m.symbol === 'BTC/USDT');
      assert.ok(btc, `${fake.exchange} lists BTC/USDT`);
      assert.equal(btc.type, 'spot');
      assert.equal(typeof btc.precision.amount, 'string');
      const swaps = (await app.inject({ url: `/market/symbols?exchange=${fake.exchange}&marketType=swap` })).json();
      assert.ok(swaps.items.some((m: { symbol: string }) => m.symbol === 'BTC/USDT:USDT'));

      fake.engine.setPrice('BTC/USDT', '51234.5');
      const ticker = await app.inject({ url: `/market/ticker?exchange=${fake.exchange}&symbol=BTC/USDT` });
      assert.equal(ticker.statusCode, 200, ticker.body);
      assert.equal(ticker.json().last, '51234.5');

      const ohlcv = await app.inject({ url: `/market/ohlcv?exchange=${fake.exchange}&symbol=BTC/USDT&timeframe=1h&limit=5` });
      assert.equal(ohlcv.statusCode, 200, ohlcv.body);
      const candles = ohlcv.json().candles;
      assert.ok(candles.length > 0 && candles.length <= 5, ohlcv.body);
      for (let i = 1; i < candles.length; i++) assert.equal(candles[i].timestamp - candles[i - 1].timestamp, 3_600_000);
      assert.equal(typeof candles[0].close, 'string');
      fake.engine.setPrice('BTC/USDT', '50000');
    }
  });

  test('cached briefly: repeated requests cost one exchange call', async (t) => {
    const app = await build(t, { env: envFor([binance], { MARKET_CACHE_TTL_MS: '600000' }) });
    const tickerCalls = () => binance.requests.filter((r) => r.path.includes('ticker')).length;
    const first = await app.inject({ url: '/market/ticker?exchange=binance&symbol=ETH/USDT' });
    assert.equal(first.statusCode, 200, first.body);
    const before = tickerCalls();
    for (let i = 0; i < 3; i++) {
      const again = await app.inject({ url: '/market/ticker?exchange=binance&symbol=ETH/USDT' });
      assert.equal(again.json().last, first.json().last);
    }
    assert.equal(tickerCalls(), before);
  });

  test('validation: unknown exchange, symbol or timeframe and bad ranges answer 400', async (t) => {
    const app = await build(t, { env: envFor([binance]) });
    const bad = [
      '/market/symbols?exchange=kraken',
      '/market/ticker?exchange=binance&symbol=NOPE/USDT',
      '/market/ticker?exchange=binance',
      '/market/ohlcv?exchange=binance&symbol=BTC/USDT&timeframe=7m',
      '/market/ohlcv?exchange=binance&symbol=NOPE/USDT&timeframe=1h',
      '/market/ohlcv?exchange=binance&symbol=BTC/USDT&timeframe=1h&limit=5000',
      '/market/ohlcv?exchange=binance&symbol=BTC/USDT&timeframe=1h&since=yesterday',
    ];
    for (const url of bad) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
      assert.match(res.headers['content-type'] as string, /problem\+json/);
    }
    const unknown = await app.inject({ url: '/market/ticker?exchange=binance&symbol=NOPE/USDT' });
    assert.equal(unknown.json().code, 'UNKNOWN_SYMBOL');
  });
});
