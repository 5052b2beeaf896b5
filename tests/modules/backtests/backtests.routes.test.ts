import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import runBacktest from '../../../workers/backtest.worker.js';
import { unpackTrades } from '../../../workers/engine/trades.js';
import { ENGINE_VERSION } from '../../../workers/engine/version.js';
import { decimalString } from '../../../src/modules/datasets/datasets.service.js';
import type { BusEvent } from '../../../src/plugins/event-bus.js';
import { createUser, injectAs } from '../../helper.js';
import { buildBt, getResult, SMA_CROSS, startBt, uploadCsv, waitFinished } from './helpers.js';

describe('POST /backtest/start -> GET /backtest/result', () => {
  test('a saved SMA-cross strategy on an uploaded real dataset: succeeded, same numbers as the worker run directly, events on the bus', async (t) => {
    const app = await buildBt(t);
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);
    const saved = await injectAs(app, u.token, { method: 'POST', url: '/strategies', payload: { document: SMA_CROSS } });
    assert.equal(saved.statusCode, 201, saved.body);
    const strategyId = saved.json().id as string;

    const events: BusEvent[] = [];
    const unsubscribe = app.eventBus.subscribe(`user:${u.id}`, (e) => events.push(e));
    t.after(unsubscribe);

    const settings = { initialCash: '25000.5', feeBps: 7.5, slippageBps: 2, fill: 'next_open', lotStep: 0, closeAtEnd: true };
    const params = { fast: 12, slow: 40 };
    const res = await startBt(app, u.token, { datasetId, strategyId, params, ...settings });
    assert.equal(res.statusCode, 202, res.body);
    const { id, status, location } = res.json();
    assert.equal(status, 'queued');
    assert.equal(res.headers.location, `/backtest/result/${id}`);
    assert.equal(location, res.headers.location);

    const result = await waitFinished(app, u.token, id, '?tradesLimit=5&equityPoints=50');
    assert.equal(result.status, 'succeeded', result.error);
    assert.equal(result.progress, 1);

    // The same task run in this thread on the same stored columns.
    const opened = await app.datasetsService.open(u.id, datasetId);
    const direct = await runBacktest({
      columns: opened.columns,
      strategy: SMA_CROSS,
      params,
      settings: { ...settings, initialCash: 25000.5, fill: 'next_open' },
      equityPoints: 5000,
    });
    const { finalEquity, feesPaid, ...rest } = direct.metrics;
    assert.equal(result.metrics.finalEquity, decimalString(finalEquity));
    assert.equal(result.metrics.feesPaid, decimalString(feesPaid));
    for (const [k, v] of Object.entries(rest)) assert.equal(result.metrics[k], v, `metrics.${k}`);
    const directTrades = unpackTrades(direct.trades);
    assert.ok(directTrades.length > 10, 'the strategy trades on this data');
    assert.equal(result.trades.total, directTrades.length);
    assert.equal(result.bars, direct.bars);
    assert.deepEqual(result.resolvedParams, { fast: 12, slow: 40 });

    // Reproducibility: everything needed for a rerun is stored with the result.
    assert.equal(result.dataset.id, datasetId);
    assert.equal(result.dataset.sha256, opened.sha256);
    assert.match(result.dataset.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(result.strategy, { id: strategyId, version: 1, name: 'SMA cross', document: SMA_CROSS });
    assert.deepEqual(result.params, params);
    assert.deepEqual(result.settings, settings);
    assert.equal(result.engineVersion, ENGINE_VERSION);

    // First page of trades, money as decimal strings, times as ISO.
    assert.equal(result.trades.items.length, 5);
    assert.equal(result.trades.nextOffset, 5);
    const t0 = directTrades[0];
    assert.deepEqual(result.trades.items[0], {
      side: t0.side,
      entryBar: t0.entryBar,
      exitBar: t0.exitBar,
      entryTime: new Date(t0.entryTime).toISOString(),
      exitTime: new Date(t0.exitTime).toISOString(),
      entryPrice: decimalString(t0.entryPrice),
      exitPrice: decimalString(t0.exitPrice),
      size: decimalString(t0.size),
      pnl: decimalString(t0.pnl),
      pnlPct: t0.pnlPct,
      fees: decimalString(t0.fees),
      exitReason: t0.exitReason,
    });

    // Equity downsampled to at most 50 points, first and last bar kept.
    assert.ok(result.equity.t.length <= 50 && result.equity.t.length >= 2);
    assert.equal(result.equity.t.length, result.equity.equity.length);
    const ts = new Float64Array(opened.columns.ts);
    assert.equal(result.equity.t[0], new Date(ts[0]).toISOString());
    assert.equal(result.equity.t.at(-1), new Date(ts[ts.length - 1]).toISOString());
    assert.equal(result.equity.equity.at(-1), direct.equity.equity.at(-1));
    assert.equal(result.equity.equity.at(-1), finalEquity);

    // Events: progress then completed, for this job.
    const mine = events.filter((e) => e.id === id);
    assert.ok(mine.some((e) => e.type === 'backtest.progress' && typeof e.progress === 'number'));
    const completed = mine.find((e) => e.type === 'backtest.completed');
    assert.ok(completed, 'completed event');
    assert.equal(completed.finalEquity, decimalString(finalEquity));
    assert.equal(completed.trades, directTrades.length);
  });

  test('an inline document gives the same result as the saved one; trades pages tile the whole list', async (t) => {
    const app = await buildBt(t);
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);
    const saved = (await injectAs(app, u.token, { method: 'POST', url: '/strategies', payload: { document: SMA_CROSS } })).json();

    const a = (await startBt(app, u.token, { datasetId, strategy: SMA_CROSS, feeBps: 10 })).json();
    const b = (await startBt(app, u.token, { datasetId, strategyId: saved.id, strategyVersion: 1, feeBps: 10 })).json();
    const ra = await waitFinished(app, u.token, a.id);
    const rb = await waitFinished(app, u.token, b.id);
    assert.equal(ra.status, 'succeeded');
    assert.equal(rb.status, 'succeeded');
    assert.deepEqual(ra.metrics, rb.metrics);
    assert.equal(ra.strategy.id, null);
    assert.equal(ra.strategy.version, null);
    assert.deepEqual(ra.strategy.document, SMA_CROSS);

    const total = ra.trades.total as number;
    assert.equal(total, ra.metrics.trades);
    const seen: unknown[] = [];
    let offset: number | null = 0;
    while (offset !== null) {
      const page: { items: unknown[]; nextOffset: number | null } = (await getResult(app, u.token, a.id, `?tradesLimit=37&tradesOffset=${offset}`)).trades;
      assert.ok(page.items.length <= 37);
      seen.push(...page.items);
      offset = page.nextOffset;
    }
    assert.equal(seen.length, total);
    const all = (await getResult(app, u.token, a.id, '?tradesLimit=1000')).trades.items;
    assert.deepEqual(seen, all.slice(0, total));
    assert.deepEqual((await getResult(app, u.token, b.id, `?tradesOffset=${total}`)).trades.items, []);
    // No equity unless asked for.
    assert.equal(ra.equity, null);
  });

  test('from/to select a slice of the bars', async (t) => {
    const app = await buildBt(t);
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);
    const opened = await app.datasetsService.open(u.id, datasetId);
    const ts = new Float64Array(opened.columns.ts);
    const from = new Date(ts[100]).toISOString();
    const to = new Date(ts[1099]).toISOString();
    const { id } = (await startBt(app, u.token, { datasetId, strategy: SMA_CROSS, from, to })).json();
    const r = await waitFinished(app, u.token, id, '?equityPoints=2');
    assert.equal(r.status, 'succeeded');
    assert.equal(r.bars, 1000);
    assert.deepEqual(r.range, { from, to });
    assert.deepEqual(r.equity.t, [from, to]);
  });
});

describe('validation, ownership, history', () => {
  test('bad strategy, params and settings answer 400 listing JSON paths; nothing is queued', async (t) => {
    const app = await buildBt(t);
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);

    const badDoc = await startBt(app, u.token, { datasetId, strategy: { ...SMA_CROSS, indicators: { fastMa: { type: 'nope' } } } });
    assert.equal(badDoc.statusCode, 400);
    assert.equal(badDoc.json().code, 'INVALID_STRATEGY');
    assert.ok(badDoc.json().errors.every((e: { path: string }) => e.path.startsWith('/body/strategy/')), badDoc.body);

    const badParams = await startBt(app, u.token, { datasetId, strategy: SMA_CROSS, params: { fast: 1, nope: 3 } });
    assert.equal(badParams.statusCode, 400);
    const paths = badParams.json().errors.map((e: { path: string }) => e.path).sort();
    assert.deepEqual(paths, ['/body/params/fast', '/body/params/nope']);

    const badSettings = await startBt(app, u.token, { datasetId, strategy: SMA_CROSS, initialCash: '-5', fill: 'sometime', feeBps: -1 });
    assert.equal(badSettings.statusCode, 400);
    const sp = badSettings.json().errors.map((e: { path: string }) => e.path);
    for (const p of ['/body/initialCash', '/body/fill', '/body/feeBps']) assert.ok(sp.includes(p), `${p} in ${sp}`);

    const both = await startBt(app, u.token, { datasetId });
    assert.equal(both.statusCode, 400);
    assert.deepEqual(both.json().errors.map((e: { path: string }) => e.path), ['/body/strategyId']);

    const history = await injectAs(app, u.token, { method: 'GET', url: '/backtest/history' });
    assert.deepEqual(history.json().items, []);
  });

  test('unknown dataset or strategy: 404; another user\'s job: 404 on result and cancel, absent from their history', async (t) => {
    const app = await buildBt(t);
    const u = await createUser(app);
    const other = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);

    const noDataset = await startBt(app, u.token, { datasetId: '00000000-0000-4000-8000-000000000000', strategy: SMA_CROSS });
    assert.equal(noDataset.statusCode, 404);
    const noStrategy = await startBt(app, u.token, { datasetId, strategyId: '00000000-0000-4000-8000-000000000000' });
    assert.equal(noStrategy.statusCode, 404);
    // Another user's dataset is unknown too.
    assert.equal((await startBt(app, other.token, { datasetId, strategy: SMA_CROSS })).statusCode, 404);

    const { id } = (await startBt(app, u.token, { datasetId, strategy: SMA_CROSS })).json();
    await waitFinished(app, u.token, id);
    const peek = await injectAs(app, other.token, { method: 'GET', url: `/backtest/result/${id}` });
    assert.equal(peek.statusCode, 404);
    assert.doesNotMatch(peek.body, /SMA cross/);
    assert.equal((await injectAs(app, other.token, { method: 'POST', url: `/backtest/${id}/cancel` })).statusCode, 404);
    assert.deepEqual((await injectAs(app, other.token, { method: 'GET', url: '/backtest/history' })).json().items, []);
    // Cancelling a finished job of one's own: 409.
    assert.equal((await injectAs(app, u.token, { method: 'POST', url: `/backtest/${id}/cancel` })).statusCode, 409);
    assert.equal((await injectAs(app, u.token, { method: 'GET', url: '/backtest/result/not-a-uuid' })).statusCode, 400);
    assert.equal((await app.inject({ method: 'GET', url: `/backtest/result/${id}` })).statusCode, 401);
  });

  test('history: newest first, cursor pages, per user', async (t) => {
    const app = await buildBt(t);
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await startBt(app, u.token, { datasetId, strategy: SMA_CROSS, params: { fast: 5 + i } })).json().id);
    for (const id of ids) await waitFinished(app, u.token, id);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await injectAs(app, u.token, { method: 'GET', url: `/backtest/history?limit=2${cursor ? `&cursor=${cursor}` : ''}` });
      assert.equal(res.statusCode, 200);
      const page = res.json();
      assert.ok(page.items.length <= 2);
      for (const item of page.items) {
        assert.equal(item.status, 'succeeded');
        assert.match(item.finalEquity, /^\d+(\.\d+)?$/);
        seen.push(item.id);
      }
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, [...ids].reverse());
    assert.equal((await injectAs(app, u.token, { method: 'GET', url: '/backtest/history?cursor=garbage' })).statusCode, 400);
  });
});
