/**
 * /bots CRUD: validation, owner-only access (404 for another user's bot), cursor pagination of bots and events,
 * update only while not running (409), delete stops the bot, and the backtest gate for real-exchange bots.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build, createUser, injectAs } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { allEvents, appendCandle, botEnv, createBot, createStrategy, getBot, saveKey, setCandles, until, waitCandle, waveCandles } from './helpers.js';

let fake: FakeExchange;
let columnar: string;
before(async () => {
  fake = await startFakeExchange({ exchange: 'binance' });
  columnar = await mkdtemp(path.join(tmpdir(), 'bots-columnar-'));
});
after(async () => {
  await fake.close();
  await rm(columnar, { recursive: true, force: true });
});

describe('/bots', () => {
  test('create, validation, list pages, owner-only, update only while stopped, events paginated, delete stops', async (t) => {
    const all = waveCandles(30);
    setCandles(fake, all.slice(0, 10));
    const app = await build(t, { env: botEnv(fake) });
    const owner = await createUser(app);
    const other = await createUser(app);
    const strategy = await createStrategy(app, owner.token);

    // Validation: params outside the strategy's ranges, another user's strategy, an unknown key.
    const badParams = await injectAs(app, owner.token, {
      method: 'POST',
      url: '/bots',
      payload: { name: 'x', strategyId: strategy.id, strategyVersion: 1, keyId: 'paper', symbol: 'BTC/USDT', timeframe: '1m', params: { fast: 1 }, sizing: { type: 'base', amount: '0.01' } },
    });
    assert.equal(badParams.statusCode, 400, badParams.body);
    assert.equal(badParams.json().code, 'INVALID_BOT_PARAMS');
    const notHisStrategy = await injectAs(app, other.token, {
      method: 'POST',
      url: '/bots',
      payload: { name: 'x', strategyId: strategy.id, strategyVersion: 1, keyId: 'paper', symbol: 'BTC/USDT', timeframe: '1m', sizing: { type: 'base', amount: '0.01' } },
    });
    assert.equal(notHisStrategy.statusCode, 404);
    const noVersion = await injectAs(app, owner.token, {
      method: 'POST',
      url: '/bots',
      payload: { name: 'x', strategyId: strategy.id, strategyVersion: 9, keyId: 'paper', symbol: 'BTC/USDT', timeframe: '1m', sizing: { type: 'base', amount: '0.01' } },
    });
    assert.equal(noVersion.statusCode, 404);
    const badSizing = await injectAs(app, owner.token, {
      method: 'POST',
      url: '/bots',
      payload: { name: 'x', strategyId: strategy.id, strategyVersion: 1, keyId: 'paper', symbol: 'BTC/USDT', timeframe: '7m', sizing: { type: 'base', amount: '-1' } },
    });
    assert.equal(badSizing.statusCode, 400);

    const created = [];
    for (let i = 0; i < 5; i++) created.push(await createBot(app, owner.token, { strategy, name: `bot ${i}` }));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await injectAs(app, owner.token, { url: `/bots?limit=2${cursor ? `&cursor=${cursor}` : ''}` });
      assert.equal(res.statusCode, 200, res.body);
      assert.ok(res.json().items.length <= 2);
      seen.push(...res.json().items.map((b: { id: string }) => b.id));
      cursor = res.json().nextCursor;
    } while (cursor);
    assert.deepEqual(seen, created.map((b) => b.id).reverse());
    assert.deepEqual((await injectAs(app, other.token, { url: '/bots' })).json().items, []);

    const bot = created[0];
    // Owner-only: every route answers 404 to another user, and changes nothing.
    for (const [method, url, payload] of [
      ['GET', `/bots/${bot.id}`],
      ['PATCH', `/bots/${bot.id}`, { name: 'mine now' }],
      ['DELETE', `/bots/${bot.id}`],
      ['POST', `/bots/${bot.id}/start`],
      ['POST', `/bots/${bot.id}/stop`],
      ['GET', `/bots/${bot.id}/events`],
      ['GET', `/bots/${bot.id}/reconciliation`],
    ] as const) {
      const res = await injectAs(app, other.token, { method, url, payload });
      assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
      assert.equal(res.json().code, 'BOT_NOT_FOUND');
    }
    assert.equal((await getBot(app, owner.token, bot.id)).name, 'bot 0');
    assert.equal((await injectAs(app, owner.token, { url: `/bots/${bot.id}`, headers: {} })).statusCode, 200);
    assert.equal((await app.inject({ url: `/bots/${bot.id}` })).statusCode, 401);

    // Update while stopped; 409 while running.
    const renamed = await injectAs(app, owner.token, { method: 'PATCH', url: `/bots/${bot.id}`, payload: { name: 'renamed', risk: { maxOrdersPerHour: 50 } } });
    assert.equal(renamed.statusCode, 200, renamed.body);
    assert.equal(renamed.json().name, 'renamed');
    assert.deepEqual(renamed.json().risk, { maxOrdersPerHour: 50 });
    assert.deepEqual(renamed.json().params, { fast: 3, slow: 5 }, 'fields not sent keep their values');
    await injectAs(app, owner.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    const busy = await injectAs(app, owner.token, { method: 'PATCH', url: `/bots/${bot.id}`, payload: { name: 'again' } });
    assert.equal(busy.statusCode, 409);
    assert.equal(busy.json().code, 'BOT_RUNNING');

    // Events: every candle is a decision event; pages of 3 walk them all exactly once.
    await waitCandle(app, owner.token, bot.id, all[9][0]);
    for (const row of all.slice(10, 20)) {
      appendCandle(fake, row);
      await waitCandle(app, owner.token, bot.id, row[0]);
    }
    const paged = await allEvents(app, owner.token, bot.id, 3);
    const whole = await allEvents(app, owner.token, bot.id, 200);
    assert.deepEqual(paged.map((e) => e.id), whole.map((e) => e.id));
    assert.equal(new Set(paged.map((e) => e.id)).size, paged.length);
    assert.equal(paged.filter((e) => e.type === 'decision').length, 10);
    assert.ok(paged.some((e) => e.type === 'order'));
    const onlyOrders = await injectAs(app, owner.token, { url: `/bots/${bot.id}/events?type=order` });
    assert.ok(onlyOrders.json().items.every((e: { type: string }) => e.type === 'order'));
    assert.equal((await injectAs(app, owner.token, { url: `/bots/${bot.id}/events?cursor=nonsense` })).statusCode, 400);

    // Prometheus: bots running here, decisions' lag observed, orders by status.
    const metrics = (await app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /^bots_running 1$/m);
    assert.match(metrics, /^bot_decision_lag_seconds_count 10$/m);
    assert.match(metrics, /^orders_by_status\{status="closed"\} [1-9]/m);

    // Events are published on the user's bus topic too.
    const published: unknown[] = [];
    const off = app.eventBus.subscribe(`user:${owner.id}`, (e) => void published.push(e));
    t.after(off);
    appendCandle(fake, all[20]);
    await waitCandle(app, owner.token, bot.id, all[20][0]);
    await until('a bot event on the bus', async () => published.some((e) => (e as { type: string }).type === 'bot.event'));

    // Delete stops the bot first.
    const del = await injectAs(app, owner.token, { method: 'DELETE', url: `/bots/${bot.id}` });
    assert.equal(del.statusCode, 204);
    assert.deepEqual(app.botsService.runningHere(), []);
    assert.equal((await injectAs(app, owner.token, { url: `/bots/${bot.id}` })).statusCode, 404);
  });

  test('a real-exchange bot needs a succeeded backtest of its strategy version; paper bots do not', async (t) => {
    setCandles(fake, waveCandles(10));
    const app = await build(t, { env: { ...botEnv(fake), COLUMNAR_DIR: columnar } });
    const user = await createUser(app);
    const keyId = await saveKey(app, user.token, fake, 'swap');
    const strategy = await createStrategy(app, user.token);
    const bot = await createBot(app, user.token, { strategy, keyId });

    const refused = await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    assert.equal(refused.statusCode, 409, refused.body);
    assert.equal(refused.json().code, 'BACKTEST_REQUIRED');
    assert.match(refused.json().detail, /no completed backtest/);
    assert.equal((await getBot(app, user.token, bot.id)).status, 'stopped');

    const paper = await createBot(app, user.token, { strategy });
    const paperStart = await injectAs(app, user.token, { method: 'POST', url: `/bots/${paper.id}/start` });
    assert.equal(paperStart.statusCode, 200, paperStart.body);
    await injectAs(app, user.token, { method: 'POST', url: `/bots/${paper.id}/stop` });

    // A real backtest of that version (a slice of real BTC/USDT 1h data) lifts the gate.
    const csv = (await readFile('/work/shared/data/binance-BTC_USDT-1h.csv', 'utf8')).split('\n').slice(0, 400).join('\n');
    const up = await injectAs(app, user.token, { method: 'POST', url: '/datasets?name=btc-slice', headers: { 'content-type': 'text/csv' }, payload: csv });
    assert.equal(up.statusCode, 201, up.body);
    const bt = await injectAs(app, user.token, {
      method: 'POST',
      url: '/backtest/start',
      payload: { datasetId: up.json().id, strategyId: strategy.id, strategyVersion: strategy.version, params: { fast: 3, slow: 5 } },
    });
    assert.equal(bt.statusCode, 202, bt.body);
    let lastBacktest = '';
    await until(
      () => `the backtest to succeed (last: ${lastBacktest.slice(0, 300)})`,
      async () => {
        const r = await injectAs(app, user.token, { url: `/backtest/result/${bt.json().id}` });
        assert.notEqual(r.json().status, 'failed', r.body);
        lastBacktest = r.body;
        return r.json().status === 'succeeded';
      },
      120_000,
    );
    const allowed = await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/start` });
    assert.equal(allowed.statusCode, 200, allowed.body);
    assert.equal(allowed.json().status, 'running');
    await injectAs(app, user.token, { method: 'POST', url: `/bots/${bot.id}/stop` });
  });
});
