/** Each risk limit trips on its own, pauses the bot (circuit breaker) and records an event naming the limit and values. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { build, createUser, injectAs } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { SWAP, allEvents, appendCandle, botEnv, botOrders, createBot, expectedOrders, getBot, setCandles, until, waitCandle, waveCandles } from './helpers.js';

let fake: FakeExchange;
before(async () => {
  fake = await startFakeExchange({ exchange: 'binance' });
});
after(() => fake.close());

/** Starts a bot with `risk` and feeds candles until it pauses; returns the bot, its events and its orders. */
async function runUntilPaused(t: Parameters<typeof build>[0], risk: Record<string, unknown>) {
  const all = waveCandles(60);
  setCandles(fake, all.slice(0, 10));
  const app = await build(t, { env: botEnv(fake) });
  const user = await createUser(app);
  const bot = await createBot(app, user.token, { risk });
  const started = await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
  assert.equal(started.statusCode, 200, started.body);
  await until('warm-up', async () => (await getBot(app, user.token, bot.id)).lastCandleAt !== null);
  let paused: Record<string, any> | undefined;
  for (const row of all.slice(10)) {
    appendCandle(fake, row);
    paused = await until(`candle ${row[0]} or a pause`, async () => {
      const b = await getBot(app, user.token, bot.id);
      return b.status === 'paused' || (b.lastCandleAt && Date.parse(b.lastCandleAt) >= row[0]) ? b : undefined;
    });
    if (paused?.status === 'paused') break;
  }
  assert.equal(paused?.status, 'paused', 'the limit tripped');
  await until('the runner to stop', async () => !app.botsService.runningHere().includes(bot.id));
  const events = await allEvents(app, user.token, bot.id);
  const tripped = events.filter((e) => e.type === 'risk.tripped');
  assert.equal(tripped.length, 1);
  return { app, user, bot: paused!, tripped: tripped[0], orders: await botOrders(app, user.token, bot.id), all };
}

describe('risk limits', () => {
  test('maximum position size: the entry is refused before any order', async (t) => {
    const { bot, tripped, orders, all } = await runUntilPaused(t, { maxPositionSize: '0.005' });
    assert.deepEqual(orders, []);
    assert.equal(tripped.data.limit, 'maxPositionSize');
    assert.equal(tripped.data.value, '0.01');
    assert.equal(tripped.data.max, '0.005');
    assert.equal(tripped.candleAt, new Date(expectedOrders(all, 10)[0][0]).toISOString());
    assert.deepEqual(bot.statusReason, { limit: 'maxPositionSize', value: '0.01', max: '0.005' });
  });

  test('maximum orders per hour: the reversal that would exceed it is refused', async (t) => {
    const { bot, tripped, orders } = await runUntilPaused(t, { maxOrdersPerHour: 2 });
    // The first entry (1 order) fits; the first reversal (2 more orders) would make 3 in the hour.
    assert.equal(orders.length, 1);
    assert.equal(tripped.data.limit, 'maxOrdersPerHour');
    assert.equal(tripped.data.value, 3);
    assert.equal(tripped.data.max, 2);
    assert.equal(tripped.data.placedLastHour, 1);
    assert.equal(bot.statusReason.limit, 'maxOrdersPerHour');
    assert.notEqual(bot.position, 0, 'the position from the placed order is kept');
  });

  test('maximum daily loss: fees and slippage of the entry, marked at the close, cross it', async (t) => {
    const { app, user, bot, tripped, orders, all } = await runUntilPaused(t, { maxDailyLoss: '0.01' });
    assert.equal(orders.length, 1);
    assert.equal(tripped.data.limit, 'maxDailyLoss');
    assert.equal(tripped.data.max, '0.01');
    // loss = fee paid - (close - entry) * size * direction
    const o = orders[0];
    const dir = o.side === 'buy' ? 1 : -1;
    const close = Number((await allEvents(app, user.token, bot.id)).find((e) => e.type === 'decision' && e.candleAt === tripped.candleAt)!.data.close);
    const expectedLoss = Number(o.fee) - (close - Number(o.average)) * 0.01 * dir;
    assert.ok(Math.abs(Number(tripped.data.value) - expectedLoss) < 1e-9, `${tripped.data.value} vs ${expectedLoss}`);
    assert.equal(bot.status, 'paused');

    // Candles that close while it is paused are not acted on when the user starts it again (stale decisions);
    // they only feed the strategy. Starting again clears the breaker (the user decides).
    const lastSeen = Date.parse(bot.lastCandleAt);
    const onFake = () => fake.engine.candles.get(SWAP)!;
    // (the loop above may have added one more candle before it saw the pause)
    for (const row of all.filter((r) => r[0] > onFake().at(-1)![0]).slice(0, 4)) appendCandle(fake, row);
    const missed = onFake().filter((r) => r[0] > lastSeen);
    assert.ok(missed.length >= 4);
    const restarted = await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    assert.equal(restarted.json().status, 'running');
    assert.equal(restarted.json().statusReason, null);
    await waitCandle(app, user.token, bot.id, missed.at(-1)![0]);
    const events = await allEvents(app, user.token, bot.id);
    const skipped = events.find((e) => e.type === 'warmup' && e.data.source === 'missed while stopped');
    assert.equal(skipped?.data.candles, missed.length);
    const missedTimes = new Set(missed.map((r) => new Date(r[0]).toISOString()));
    assert.deepEqual(events.filter((e) => e.type === 'decision' && missedTimes.has(e.candleAt)), []);
    const next = all.find((r) => r[0] > missed.at(-1)![0])!;
    appendCandle(fake, next);
    await waitCandle(app, user.token, bot.id, next[0]);
    assert.ok((await allEvents(app, user.token, bot.id)).some((e) => e.type === 'decision' && e.candleAt === new Date(next[0]).toISOString()));
    await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/stop` });
  });
});
