import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { injectAs } from '../../helper.js';
import type { FakeExchange } from '../../fakes/fake-exchange/index.js';
import { createEvaluator, resolveAction, CLOSE, OPEN_LONG, OPEN_SHORT, REVERSE_TO_LONG, REVERSE_TO_SHORT } from '../../../workers/engine/evaluator.js';
import { envFor } from '../orders/helpers.js';

export { envFor, saveKey, submit } from '../orders/helpers.js';

export const SWAP = 'BTC/USDT:USDT';
export const TF = 60_000;
export const smaCross = JSON.parse(readFileSync(new URL('../../../examples/strategies/sma-cross.json', import.meta.url), 'utf8'));
export const PARAMS = { fast: 3, slow: 5 };

export type Row = [number, string, string, string, string, string];

/** A wave of closed 1m candles (all in the past: closed by time), crossing the 3/5 SMAs every few bars. */
export function waveCandles(n: number, opts: { start?: number; from?: number } = {}): Row[] {
  const start = opts.start ?? (Math.floor(Date.now() / TF) - 5000) * TF;
  const from = opts.from ?? 0;
  const rows: Row[] = [];
  for (let i = from; i < from + n; i++) {
    const close = 50000 + Math.round(600 * Math.sin((2 * Math.PI * i) / 11) + 7 * (i % 3));
    const open = close - 20;
    rows.push([start + i * TF, String(open), String(Math.max(open, close) + 15), String(Math.min(open, close) - 15), String(close), String(10 + (i % 7))]);
  }
  return rows;
}

/** Puts candles on the fake (and the last close as its price, which prices paper fills). */
export function setCandles(fake: FakeExchange, rows: Row[]): void {
  fake.engine.candles.set(SWAP, rows);
  fake.engine.setPrice(SWAP, rows.at(-1)![4]);
}

/** Adds one candle to the fake, priced at its close. */
export function appendCandle(fake: FakeExchange, row: Row): void {
  const rows = fake.engine.candles.get(SWAP) ?? [];
  rows.push(row);
  fake.engine.candles.set(SWAP, rows);
  fake.engine.setPrice(SWAP, row[4]);
}

/**
 * What the backtest engine does over the same candles: the evaluator in its array-independent one-candle mode is
 * identical to array mode (tested in the engine); warm-up candles only feed it, live ones act from a flat position.
 * Returns the expected orders as [candle time, side] in order (a reversal is a close then an open).
 */
export function expectedOrders(all: Row[], warmup: number): Array<[number, 'buy' | 'sell']> {
  const ev = createEvaluator(smaCross, PARAMS);
  let position = 0;
  const out: Array<[number, 'buy' | 'sell']> = [];
  all.forEach((r, i) => {
    const d = ev.onCandle({ open: +r[1], high: +r[2], low: +r[3], close: +r[4], volume: +r[5] });
    if (i < warmup) return;
    const a = resolveAction(position, d.signals);
    if (a === OPEN_LONG) (out.push([r[0], 'buy']), (position = 1));
    else if (a === OPEN_SHORT) (out.push([r[0], 'sell']), (position = -1));
    else if (a === CLOSE) (out.push([r[0], position > 0 ? 'sell' : 'buy']), (position = 0));
    else if (a === REVERSE_TO_LONG) (out.push([r[0], 'buy'], [r[0], 'buy']), (position = 1));
    else if (a === REVERSE_TO_SHORT) (out.push([r[0], 'sell'], [r[0], 'sell']), (position = -1));
  });
  return out;
}

export const botEnv = (fake: FakeExchange, extra: Record<string, string> = {}) =>
  envFor([fake], {
    PAPER_PRICE_EXCHANGE: 'binance',
    PAPER_START_BALANCES: 'USDT=100000',
    BOTS_POLL_INTERVAL_MS: '100',
    BOTS_LEASE_TTL_MS: '1500',
    BOTS_WARMUP_CANDLES: '500',
    BOTS_WATCH: 'false',
    // The tests poll bot state: keep the per-user request rate limit out of the way.
    RATE_LIMIT_MAX: '100000',
    ...extra,
  });

export async function createStrategy(app: FastifyInstance, token: string): Promise<{ id: string; version: number }> {
  const res = await injectAs(app, token, { method: 'POST', url: '/strategies', payload: { document: smaCross } });
  assert.equal(res.statusCode, 201, res.body);
  return { id: res.json().id, version: res.json().version };
}

export async function createBot(app: FastifyInstance, token: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const strategy = (extra.strategy as { id: string; version: number } | undefined) ?? (await createStrategy(app, token));
  delete extra.strategy;
  const res = await injectAs(app, token, {
    method: 'POST',
    url: '/bots',
    payload: {
      name: 'sma bot',
      strategyId: strategy.id,
      strategyVersion: strategy.version,
      keyId: 'paper',
      symbol: SWAP,
      timeframe: '1m',
      params: PARAMS,
      sizing: { type: 'base', amount: '0.01' },
      ...extra,
    },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

export const getBot = async (app: FastifyInstance, token: string, id: string) => {
  const res = await injectAs(app, token, { url: `/bots/${id}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
};

/** Polls until `done` holds (a deadline, not a timing assertion). */
export async function until<T>(what: string | (() => string), fn: () => Promise<T | undefined | false>, deadlineMs = 30_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const waitCandle = (app: FastifyInstance, token: string, id: string, ts: number) =>
  until(`bot ${id} to act on candle ${new Date(ts).toISOString()}`, async () => {
    const bot = await getBot(app, token, id);
    return bot.lastCandleAt !== null && Date.parse(bot.lastCandleAt) >= ts ? bot : undefined;
  });

/** Every event of a bot, following the cursor pages (oldest first). */
export async function allEvents(app: FastifyInstance, token: string, id: string, limit = 50): Promise<Record<string, any>[]> {
  const items: Record<string, any>[] = [];
  let cursor: string | null = null;
  do {
    const res = await injectAs(app, token, { url: `/bots/${id}/events?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}` });
    assert.equal(res.statusCode, 200, res.body);
    items.push(...res.json().items);
    cursor = res.json().nextCursor;
  } while (cursor);
  return items.reverse();
}

export async function botOrders(app: FastifyInstance, token: string, botId: string): Promise<Record<string, any>[]> {
  const res = await injectAs(app, token, { url: `/order/history?botId=${botId}&limit=200` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().items.reverse();
}
