/**
 * A paper bot on sma-cross (fast 3 / slow 5) driven by candles on the fake exchange (polling fallback): it places
 * exactly the orders the engine predicts over the same candles, resumes after a restart without a duplicate order
 * (even when it crashed between placing an order and saving its state), and only one instance runs a bot (lease).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { build, createUser, injectAs } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { testDatabase } from '../../db.js';
import { botClientOrderId } from '../../../src/modules/bots/index.js';
import { botEvents, bots } from '../../../src/db/schema/bots.js';
import { eq } from 'drizzle-orm';
import {
  TF,
  allEvents,
  appendCandle,
  botEnv,
  botOrders,
  createBot,
  expectedOrders,
  getBot,
  setCandles,
  until,
  waitCandle,
  waveCandles,
} from './helpers.js';

let fake: FakeExchange;
before(async () => {
  fake = await startFakeExchange({ exchange: 'binance' });
});
after(() => fake.close());

const key = (ts: number, side: string) => `${new Date(ts).toISOString()}:${side}`;

describe('bot runner', () => {
  test('places the orders the engine predicts over the same candles; restart resumes without a duplicate order', async (t) => {
    const WARMUP = 12;
    const LIVE1 = 20;
    const LIVE2 = 14;
    const all = waveCandles(WARMUP + LIVE1 + LIVE2);
    setCandles(fake, all.slice(0, WARMUP));

    const app1 = await build(t, { env: botEnv(fake) });
    const user = await createUser(app1);
    const bot = await createBot(app1, user.token);
    assert.equal(bot.status, 'stopped');
    const started = await injectAs(app1, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    assert.equal(started.statusCode, 200, started.body);
    assert.equal(started.json().status, 'running');
    await waitCandle(app1, user.token, bot.id, all[WARMUP - 1][0]);

    for (const row of all.slice(WARMUP, WARMUP + LIVE1)) {
      appendCandle(fake, row);
      await waitCandle(app1, user.token, bot.id, row[0]);
    }
    const firstRun = expectedOrders(all.slice(0, WARMUP + LIVE1), WARMUP);
    assert.ok(firstRun.length >= 4, 'the wave makes the strategy trade');
    let placed = await botOrders(app1, user.token, bot.id);
    const sideOf = (o: Record<string, any>) => o.side as string;
    const candleOf = new Map<string, number>();
    for (const row of all) for (const leg of ['open', 'close']) candleOf.set(botClientOrderId(bot.id, row[0], leg), row[0]);
    const actual = (orders: Record<string, any>[]) => orders.map((o) => key(candleOf.get(o.clientOrderId)!, sideOf(o))).sort();
    assert.deepEqual(actual(placed), firstRun.map(([ts, side]) => key(ts, side)).sort());
    assert.ok(placed.every((o) => o.status === 'closed' && o.exchange === 'paper' && o.amount === '0.01'));
    await app1.close();

    // Simulate a crash right after the last order was placed, before the bot saved its state: roll the state back
    // to the candle before. The resumed bot decides that candle again and must not place a second order.
    const lastOrderCandle = Math.max(...placed.map((o) => candleOf.get(o.clientOrderId)!));
    const { database } = await testDatabase();
    const events = await database.db.select().from(botEvents).where(eq(botEvents.botId, bot.id));
    const decision = events.find((e) => e.type === 'decision' && e.candleAt === lastOrderCandle)!;
    const before = events
      .filter((e) => e.type === 'order' && e.candleAt! < lastOrderCandle)
      .sort((x, y) => x.candleAt! - y.candleAt!)
      .at(-1);
    await database.db
      .update(bots)
      .set({
        lastCandleAt: lastOrderCandle - TF,
        position: decision.data.position as number,
        positionSize: decision.data.position === 0 ? '0' : '0.01',
        entryPrice: (before?.data.average as string | undefined) ?? null,
        leaseOwner: null,
        leaseExpiresAt: null,
      })
      .where(eq(bots.id, bot.id));

    // Restart: a new app on the same database resumes the running bot by itself.
    const app2 = await build(t, { env: botEnv(fake), keepData: true });
    await waitCandle(app2, user.token, bot.id, all[WARMUP + LIVE1 - 1][0]);
    for (const row of all.slice(WARMUP + LIVE1)) {
      appendCandle(fake, row);
      await waitCandle(app2, user.token, bot.id, row[0]);
    }
    placed = await botOrders(app2, user.token, bot.id);
    const full = expectedOrders(all, WARMUP);
    assert.deepEqual(actual(placed), full.map(([ts, side]) => key(ts, side)).sort());
    assert.equal(new Set(placed.map((o) => o.clientOrderId)).size, placed.length, 'no client order id twice');

    const after2 = await allEvents(app2, user.token, bot.id);
    const replayed = after2.filter((e) => e.type === 'order' && e.data.replayed === true);
    assert.ok(replayed.length >= 1, 'the repeated decision found its order instead of placing a new one');
    assert.ok(after2.some((e) => e.type === 'reconciled'));
    assert.ok(after2.some((e) => e.type === 'warmup' && e.data.source === 'stored'));

    // Reconciliation: the replay of the stored candles matches every order placed; nothing missed or extra.
    const rec = await injectAs(app2, user.token, { url: `/bots/${bot.id}/reconciliation` });
    assert.equal(rec.statusCode, 200, rec.body);
    const r = rec.json();
    assert.equal(r.candles, all.length);
    assert.equal(r.liveCandles, LIVE1 + LIVE2);
    assert.equal(r.expectedOrders, full.length);
    assert.equal(r.matched.length, full.length);
    assert.deepEqual(r.missed, []);
    assert.deepEqual(r.extra, []);
    // Paper fills: the fake's price (= the close) plus 5 bps of slippage against the trader.
    for (const m of r.matched) assert.equal(m.slippageBps, 5);
    assert.equal(r.slippage.averageBps, 5);
    assert.ok(Number(r.fees.realised) > 0);

    const stop = await injectAs(app2, user.token, { method: 'POST', url: `/bots/${bot.id}/stop` });
    assert.equal(stop.json().status, 'stopped');
    assert.deepEqual(app2.botsService.runningHere(), []);
  });

  test('lease: a second instance does not run a bot another live instance holds; it takes over when that one stops', async (t) => {
    const all = waveCandles(30);
    setCandles(fake, all.slice(0, 10));
    const a = await build(t, { env: botEnv(fake) });
    const user = await createUser(a);
    const bot = await createBot(a, user.token);
    await injectAs(a, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    await waitCandle(a, user.token, bot.id, all[9][0]);
    assert.deepEqual(a.botsService.runningHere(), [bot.id]);

    const b = await build(t, { env: botEnv(fake), keepData: true });
    // b scans several times (every lease/2) while a holds the lease: it never runs the bot.
    for (const row of all.slice(10, 20)) {
      appendCandle(fake, row);
      await waitCandle(a, user.token, bot.id, row[0]);
    }
    assert.deepEqual(b.botsService.runningHere(), []);
    const orders = await botOrders(a, user.token, bot.id);
    assert.equal(new Set(orders.map((o) => o.clientOrderId)).size, orders.length);
    const starts = (await allEvents(a, user.token, bot.id)).filter((e) => e.type === 'started');
    assert.equal(starts.length, 1);
    assert.equal(starts[0].data.instance, a.botsService.instanceId);

    await a.close(); // releases the lease: b resumes the bot
    await until('the second instance to take the bot over', async () => b.botsService.runningHere().includes(bot.id));
    for (const row of all.slice(20)) {
      appendCandle(fake, row);
      await waitCandle(b, user.token, bot.id, row[0]);
    }
    const placed = await botOrders(b, user.token, bot.id);
    assert.equal(new Set(placed.map((o) => o.clientOrderId)).size, placed.length);
    assert.equal(placed.length, expectedOrders(all, 10).length);
    assert.equal((await getBot(b, user.token, bot.id)).status, 'running');
  });

  test('the exchange candle stream wakes the bot (polling off): spot paper bot, orders as the engine predicts', async (t) => {
    const SPOT = 'BTC/USDT';
    const all = waveCandles(24);
    fake.engine.candles.set(SPOT, all.slice(0, 10));
    fake.engine.setPrice(SPOT, all[9][4]);
    const app = await build(t, {
      env: botEnv(fake, { BOTS_WATCH: 'true', BOTS_POLL_INTERVAL_MS: '600000', PAPER_START_BALANCES: 'USDT=100000,BTC=1' }),
    });
    const user = await createUser(app);
    const bot = await createBot(app, user.token, { symbol: SPOT });
    await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    await waitCandle(app, user.token, bot.id, all[9][0]);
    await until('the candle stream to connect', async () => fake.wsClients() > 0);
    for (const row of all.slice(10)) {
      const rows = fake.engine.candles.get(SPOT)!;
      rows.push(row);
      // setPrice pushes a kline update for the newest candle over the WebSocket: the bot wakes and fetches it.
      // (pushed again while waiting, as exchanges do: the first push may precede the stream's subscription)
      await until(`the stream to wake the bot for ${row[0]}`, async () => {
        fake.engine.setPrice(SPOT, row[4]);
        const b = await getBot(app, user.token, bot.id);
        return b.lastCandleAt !== null && Date.parse(b.lastCandleAt) >= row[0];
      });
    }
    const placed = await botOrders(app, user.token, bot.id);
    const candleOf = new Map<string, number>();
    for (const row of all) for (const leg of ['open', 'close']) candleOf.set(botClientOrderId(bot.id, row[0], leg), row[0]);
    const expected = expectedOrders(all, 10);
    assert.ok(expected.length >= 2);
    assert.deepEqual(placed.map((o) => key(candleOf.get(o.clientOrderId)!, o.side)).sort(), expected.map(([ts, side]) => key(ts, side)).sort());
    assert.ok(placed.every((o) => o.status === 'closed'));
  });
});
