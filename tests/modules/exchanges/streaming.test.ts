/**
 * WebSocket streams through ccxt.pro against the fake exchange's WebSocket endpoint, for every exchange.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCcxtAdapter } from '../../../src/modules/exchanges/ccxt-adapter.js';
import type { ExchangeAdapter, ExchangeId, Stream } from '../../../src/modules/exchanges/types.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';

const SYMBOL = 'BTC/USDT';

/**
 * Reads a stream until `done(item)` while the fake keeps publishing `price` (the subscription is asynchronous, so
 * the price is re-published until the first matching update arrives). Returns the matching item.
 */
async function firstMatching<T>(fake: FakeExchange, stream: Stream<T>, price: string, done: (item: T) => boolean): Promise<T> {
  const publisher = setInterval(() => fake.engine.setPrice(SYMBOL, price), 25);
  try {
    for await (const item of stream) {
      if (done(item)) return item;
    }
    assert.fail('stream ended without a matching update');
  } finally {
    clearInterval(publisher);
    await stream.close();
  }
}

for (const exchange of ['binance', 'okx', 'bitget'] as ExchangeId[]) {
  describe(`${exchange} WebSocket streams through ccxt.pro`, () => {
    let fake: FakeExchange;
    let adapter: ExchangeAdapter;

    before(async () => {
      fake = await startFakeExchange({ exchange });
      adapter = createCcxtAdapter({ exchange, marketType: 'spot', urls: { rest: fake.url, ws: fake.wsUrl } });
    });

    after(async () => {
      await adapter.close();
      await fake.close();
    });

    test('watchTicker yields the price the exchange pushes', { timeout: 10_000 }, async () => {
      const ticker = await firstMatching(fake, adapter.watchTicker(SYMBOL), '51234.5', (t) => t.last === '51234.5');
      assert.equal(ticker.symbol, SYMBOL);
      assert.equal(ticker.last, '51234.5');
      assert.ok(fake.wsClients() >= 1);
    });

    test('watchOHLCV yields the current candle closing at the pushed price', { timeout: 10_000 }, async () => {
      const candle = await firstMatching(fake, adapter.watchOHLCV(SYMBOL, '1m'), '52000', (c) => c.close === '52000');
      assert.equal(candle.timestamp % 60_000, 0);
      assert.ok(Number(candle.high) >= 52000 && Number(candle.low) <= 52000);
    });

    test('close() ends a stream that is waiting for an update', { timeout: 10_000 }, async () => {
      const stream = adapter.watchTicker('ETH/USDT'); // nobody publishes ETH prices here
      const reading = (async () => {
        const got: unknown[] = [];
        for await (const t of stream) got.push(t);
        return got;
      })();
      await new Promise((r) => setImmediate(r));
      await stream.close();
      assert.deepEqual(await reading, []);
    });

    test('a dropped connection is re-established by the stream (ccxt.pro reconnects on the next watch call)', { timeout: 15_000 }, async () => {
      const stream = adapter.watchTicker(SYMBOL);
      let dropped = false;
      const publisher = setInterval(() => fake.engine.setPrice(SYMBOL, dropped ? '55555' : '54444'), 25);
      const seen: string[] = [];
      try {
        for await (const ticker of stream) {
          seen.push(ticker.last!);
          if (!dropped && ticker.last === '54444') {
            dropped = true;
            fake.dropWsConnections();
          }
          if (dropped && ticker.last === '55555') break;
        }
      } finally {
        clearInterval(publisher);
        await stream.close();
      }
      assert.ok(seen.includes('54444'));
      assert.equal(seen.at(-1), '55555', 'updates resumed after the drop');
    });

    test('watchTrades yields public trades at the pushed price', { timeout: 10_000 }, async () => {
      const trade = await firstMatching(fake, adapter.watchTrades(SYMBOL), '53000.1', (t) => t.price === '53000.1');
      assert.equal(trade.symbol, SYMBOL);
      assert.equal(trade.amount, '0.01');
    });
  });
}
