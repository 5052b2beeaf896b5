/**
 * One running bot in this process: warm-up, then every CLOSED candle fed to the evaluator one at a time, orders through
 * the orders service with deterministic client order ids, risk limits, lease renewal. The candle data always comes from
 * the exchange's REST history (`fetchOHLCV` since the last candle acted on); the adapter's `watchOHLCV` stream only
 * wakes the runner up as soon as the exchange reports a new candle, and a polling timer is the fallback when the
 * stream is down (or idle). So the candles a bot acts on are exactly the exchange's closed candles, whatever the
 * transport, and a restart replays the stored ones to rebuild the same evaluator state.
 */
import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { HttpProblem } from '../../errors.js';
import { CLOSE, NONE, OPEN_LONG, OPEN_SHORT, REVERSE_TO_LONG, REVERSE_TO_SHORT, createEvaluator, resolveAction, type Action, type Evaluator } from '../../../workers/engine/evaluator.js';
import { dec, type Candle, type ExchangeAdapter, type Stream } from '../exchanges/index.js';
import { PAPER_KEY_ID, marketTypeOf, type TradingService } from '../trading/index.js';
import type { OrdersService } from '../orders/orders.service.js';
import type { StrategiesService } from '../strategies/strategies.service.js';
import type { BotRow, BotsRepository } from './bots.repository.js';
import { TIMEFRAME_MS } from '../../shared/timeframes.js';

export const ACTION_NAMES: Record<Action, string> = {
  0: 'none',
  1: 'openLong',
  2: 'openShort',
  3: 'close',
  4: 'reverseToLong',
  5: 'reverseToShort',
};

export interface Leg {
  leg: 'open' | 'close';
  side: 'buy' | 'sell';
  /** Position after the leg: 1, -1 or 0. */
  to: number;
}

/** The orders an action turns into (a reversal closes first, then opens: two orders, as in the backtest). */
export function legsOf(action: Action, position: number): Leg[] {
  switch (action) {
    case OPEN_LONG:
      return [{ leg: 'open', side: 'buy', to: 1 }];
    case OPEN_SHORT:
      return [{ leg: 'open', side: 'sell', to: -1 }];
    case CLOSE:
      return [{ leg: 'close', side: position > 0 ? 'sell' : 'buy', to: 0 }];
    case REVERSE_TO_LONG:
      return [{ leg: 'close', side: 'buy', to: 0 }, { leg: 'open', side: 'buy', to: 1 }];
    case REVERSE_TO_SHORT:
      return [{ leg: 'close', side: 'sell', to: 0 }, { leg: 'open', side: 'sell', to: -1 }];
    default:
      return [];
  }
}

/**
 * Deterministic, exchange-safe client order id of one leg of a decision: `bt` + 30 hex chars of
 * sha256(bot id, candle open time, leg). 32 characters of [a-z0-9] (OKX: at most 32 alphanumerics).
 */
export function botClientOrderId(botId: string, candleAt: number, leg: string): string {
  return `bt${createHash('sha256').update(`${botId}:${candleAt}:${leg}`).digest('hex').slice(0, 30)}`;
}

export const toEngineCandle = (c: { ts?: number; timestamp?: number; open: string; high: string; low: string; close: string; volume: string }) => ({
  time: c.ts ?? c.timestamp,
  open: Number(c.open),
  high: Number(c.high),
  low: Number(c.low),
  close: Number(c.close),
  volume: Number(c.volume),
});

/** Rounds `value` down to a multiple of `step` (decimal strings). */
export function floorToStep(value: string, step: string | undefined): string {
  if (!step || dec.isZero(step)) return dec.normalize(value);
  return dec.normalize(dec.sub(value, dec.mod(value, step)));
}

/** Closed candles after `after`, oldest first, one per open time (an exchange page may repeat the forming one). */
export function closedAfter(candles: Candle[], after: number, tfMs: number, now: number): Candle[] {
  const latest = candles.reduce((m, c) => Math.max(m, c.timestamp), 0);
  const byTime = new Map<number, Candle>();
  for (const c of candles) if (c.timestamp > after && (c.timestamp + tfMs <= now || c.timestamp < latest)) byTime.set(c.timestamp, c);
  return [...byTime.values()].sort((a, b) => a.timestamp - b.timestamp);
}

export interface RunnerDeps {
  repo: BotsRepository;
  orders: OrdersService;
  trading: TradingService;
  strategies: StrategiesService;
  log: FastifyBaseLogger;
  instanceId: string;
  leaseTtlMs: number;
  pollIntervalMs: number;
  warmupCandles: number;
  paperPriceExchange: 'binance' | 'bitget' | 'okx';
  useStream: boolean;
  /** Records a bot event (row + bus). */
  event(bot: Pick<BotRow, 'id' | 'userId'>, type: string, data: Record<string, unknown>, candleAt?: number): Promise<void>;
  /** Pauses the bot (risk limit) or puts it in error; the runner stops itself after calling this. */
  halt(bot: BotRow, status: 'paused' | 'error' | 'stopped', reason: Record<string, unknown>): Promise<void>;
  guard(userId: string): Promise<void>;
  observeLag(seconds: number): void;
  onExit(botId: string): void;
}

export interface Runner {
  readonly botId: string;
  readonly userId: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  kick(): void;
}

export interface RunnerOptions {
  /**
   * Feed the candles that closed while the bot was not running to the evaluator without acting on them (a start by
   * the user: decisions on stale candles are not taken). A resume after a crash or a lost instance acts on them.
   */
  skipMissed?: boolean;
}

export function createRunner(initial: BotRow, deps: RunnerDeps, opts: RunnerOptions = {}): Runner {
  const { repo, log } = deps;
  let bot = initial;
  const tfMs = TIMEFRAME_MS[bot.timeframe as keyof typeof TIMEFRAME_MS] ?? 60_000;
  const marketType = marketTypeOf(bot.symbol);
  let evaluator: Evaluator;
  let candleAdapter: ExchangeAdapter;
  let stopped = false;
  let busy: Promise<void> | undefined;
  let again = false;
  let pollTimer: NodeJS.Timeout | undefined;
  let leaseTimer: NodeJS.Timeout | undefined;
  let stream: Stream<Candle> | undefined;
  let streamRetry: NodeJS.Timeout | undefined;
  const who = { actorId: bot.userId, ip: null, requestId: `bot:${bot.id}` };

  const emit = (type: string, data: Record<string, unknown>, candleAt?: number) =>
    deps.event(bot, type, data, candleAt).catch((err: Error) => log.warn({ botId: bot.id, err: err.message }, 'could not record a bot event'));

  async function exit(status: 'paused' | 'error' | 'stopped', reason: Record<string, unknown>): Promise<void> {
    if (stopped) return;
    await deps.halt(bot, status, reason);
    void stop();
  }

  function kick(): void {
    if (stopped) return;
    if (busy) {
      again = true;
      return;
    }
    busy = (async () => {
      do {
        again = false;
        await step();
      } while (again && !stopped);
    })()
      .catch(async (err: Error) => {
        log.warn({ botId: bot.id, err: err.message }, 'bot step failed; retried on the next candle poll');
        await emit('error', { stage: 'candles', code: (err as HttpProblem).code ?? 'ERROR', detail: err.message });
      })
      .finally(() => (busy = undefined));
  }

  /** Fetches the candles after the last one acted on and acts on each closed one, oldest first. */
  async function step(): Promise<void> {
    if (stopped) return;
    const last = bot.lastCandleAt ?? 0;
    const candles = await candleAdapter.fetchOHLCV(bot.symbol, bot.timeframe, { since: last + 1, limit: 500 });
    if (stopped) return;
    const closed = closedAfter(candles, last, tfMs, Date.now());
    for (const c of closed) {
      if (stopped) return;
      await onClosedCandle(c);
    }
  }

  async function amountFor(close: string): Promise<string> {
    if (bot.sizing.type === 'base') return dec.normalize(bot.sizing.amount);
    const account = await deps.trading.resolve(bot.userId, bot.keyId, { marketType });
    const market = await account.adapter.market(bot.symbol);
    const base = dec.div(bot.sizing.amount, dec.mul(close, market.contractSize ?? '1'), 12);
    return floorToStep(base, market.precision.amount);
  }

  /** One closed candle: decision, risk checks, orders, state. */
  async function onClosedCandle(c: Candle): Promise<void> {
    await repo.insertCandles([{ botId: bot.id, ts: c.timestamp, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, live: true }]);
    const decision = evaluator.onCandle(toEngineCandle(c));
    deps.observeLag(Math.max(0, (Date.now() - (c.timestamp + tfMs)) / 1000));
    const action = resolveAction(bot.position, decision.signals);
    await emit('decision', { bar: decision.bar, signals: decision.signals, action: ACTION_NAMES[action], position: bot.position, close: c.close }, c.timestamp);

    const today = new Date().toISOString().slice(0, 10);
    const state = {
      position: bot.position,
      positionSize: bot.positionSize,
      entryPrice: bot.entryPrice,
      dailyPnl: bot.dailyPnlDay === today ? bot.dailyPnl : '0',
      dailyPnlDay: today,
    };

    if (action !== NONE) {
      const legs = legsOf(action, bot.position);
      const openAmount = legs.some((l) => l.leg === 'open') ? await amountFor(c.close) : '0';
      const risk = bot.risk;
      if (risk.maxPositionSize !== undefined && dec.gt(openAmount, risk.maxPositionSize)) {
        await emit('risk.tripped', { limit: 'maxPositionSize', value: openAmount, max: risk.maxPositionSize, action: ACTION_NAMES[action] }, c.timestamp);
        await saveState(c.timestamp, state);
        return exit('paused', { limit: 'maxPositionSize', value: openAmount, max: risk.maxPositionSize });
      }
      if (risk.maxOrdersPerHour !== undefined) {
        const placed = await repo.countOrdersSince(bot.id, new Date(Date.now() - 3_600_000));
        if (placed + legs.length > risk.maxOrdersPerHour) {
          const value = placed + legs.length;
          await emit('risk.tripped', { limit: 'maxOrdersPerHour', value, max: risk.maxOrdersPerHour, placedLastHour: placed, action: ACTION_NAMES[action] }, c.timestamp);
          await saveState(c.timestamp, state);
          return exit('paused', { limit: 'maxOrdersPerHour', value, max: risk.maxOrdersPerHour });
        }
      }

      for (const leg of legs) {
        const amount = leg.leg === 'close' ? state.positionSize : openAmount;
        const clientOrderId = botClientOrderId(bot.id, c.timestamp, leg.leg);
        if (!dec.gt(amount, '0')) {
          await emit('skip', { leg: leg.leg, reason: leg.leg === 'close' ? 'no position size to close' : 'order size rounds to 0', clientOrderId }, c.timestamp);
          if (leg.leg === 'close') Object.assign(state, { position: 0, positionSize: '0', entryPrice: null });
          continue;
        }
        // Stop / kill switch / lost lease: re-checked after every await, right before the order.
        if (stopped) return;
        try {
          await deps.guard(bot.userId);
        } catch (err) {
          await emit('skip', { leg: leg.leg, reason: 'trading locked (kill switch)', code: (err as HttpProblem).code, clientOrderId }, c.timestamp);
          return exit('stopped', { killSwitch: true });
        }
        if (stopped || !(await repo.holds(bot.id, deps.instanceId))) {
          if (!stopped) void stop();
          return;
        }
        let result;
        try {
          result = await deps.orders.submit(
            bot.userId,
            {
              keyId: bot.keyId,
              symbol: bot.symbol,
              side: leg.side,
              type: 'market',
              amount,
              clientOrderId,
              botId: bot.id,
              reduceOnly: leg.leg === 'close' && marketType === 'swap' ? true : undefined,
            },
            who,
          );
        } catch (err) {
          const e = err as HttpProblem;
          await emit('order.failed', { leg: leg.leg, side: leg.side, amount, clientOrderId, status: e.statusCode ?? null, code: e.code ?? 'ERROR', detail: e.message }, c.timestamp);
          if (e instanceof HttpProblem && e.statusCode === 423) {
            await saveState(c.timestamp, state);
            return exit('stopped', { killSwitch: true });
          }
          break; // the position stays as it is; the next decisions act from it
        }
        const o = result.order;
        await emit(
          'order',
          { leg: leg.leg, side: leg.side, amount, clientOrderId, orderId: o.id, status: o.status, average: o.average, fee: o.fee, replayed: result.status === 200 },
          c.timestamp,
        );
        if (dec.gt(o.filled, '0')) {
          await emit('fill', { orderId: o.id, filled: o.filled, average: o.average, fee: o.fee, feeCurrency: o.feeCurrency }, c.timestamp);
        }
        const price = o.average ?? c.close;
        const fee = o.fee ?? '0';
        if (leg.leg === 'close') {
          const dir = state.position > 0 ? '1' : '-1';
          const pnl = state.entryPrice ? dec.mul(dec.mul(dec.sub(price, state.entryPrice), state.positionSize), dir) : '0';
          state.dailyPnl = dec.sub(dec.add(state.dailyPnl, pnl), fee);
          Object.assign(state, { position: 0, positionSize: '0', entryPrice: null });
        } else {
          state.dailyPnl = dec.sub(state.dailyPnl, fee);
          Object.assign(state, { position: leg.to, positionSize: amount, entryPrice: price });
        }
      }
    }

    if (!(await saveState(c.timestamp, state))) return;
    // Daily loss: realised today plus the open position marked at this close.
    if (bot.risk.maxDailyLoss !== undefined) {
      const unrealised =
        state.position !== 0 && state.entryPrice
          ? dec.mul(dec.mul(dec.sub(c.close, state.entryPrice), state.positionSize), state.position > 0 ? '1' : '-1')
          : '0';
      const loss = dec.neg(dec.add(state.dailyPnl, unrealised));
      if (dec.ge(loss, bot.risk.maxDailyLoss) && dec.gt(loss, '0')) {
        await emit('risk.tripped', { limit: 'maxDailyLoss', value: dec.normalize(loss), max: bot.risk.maxDailyLoss, realised: state.dailyPnl, unrealised }, c.timestamp);
        return exit('paused', { limit: 'maxDailyLoss', value: dec.normalize(loss), max: bot.risk.maxDailyLoss });
      }
    }
  }

  async function saveState(candleAt: number, state: Pick<BotRow, 'position' | 'positionSize' | 'entryPrice' | 'dailyPnl' | 'dailyPnlDay'>): Promise<boolean> {
    const saved = await repo.saveState(bot.id, deps.instanceId, { ...state, lastCandleAt: candleAt });
    if (!saved) {
      void stop();
      return false;
    }
    bot = saved;
    return true;
  }

  /** Syncs the bot's unsettled orders and compares the position it believes in with the exchange's. */
  async function reconcile(): Promise<void> {
    const active = await repo.activeOrdersOfBot(bot.id);
    for (const o of active) await deps.orders.syncNow(o.id).catch((err: Error) => log.warn({ orderId: o.id, err: err.message }, 'bot order sync failed'));
    let exchangePosition: string | null = null;
    try {
      const account = await deps.trading.resolve(bot.userId, bot.keyId, { marketType });
      if (marketType === 'swap') {
        const positions = await account.adapter.fetchPositions([bot.symbol]);
        const p = positions.find((x) => x.symbol === bot.symbol);
        exchangePosition = p ? (p.side === 'long' ? p.contracts : dec.neg(p.contracts)) : '0';
      } else {
        const base = bot.symbol.split('/')[0];
        exchangePosition = (await account.adapter.fetchBalance())[base]?.total ?? '0';
      }
    } catch (err) {
      log.warn({ botId: bot.id, err: (err as Error).message }, 'bot reconciliation: exchange position unknown');
    }
    const believed = bot.position === 0 ? '0' : bot.position > 0 ? bot.positionSize : dec.neg(bot.positionSize);
    await emit('reconciled', { ordersSynced: active.length, believedPosition: believed, exchangePosition });
  }

  async function warmUp(): Promise<void> {
    // Candles stored after the last one acted on (a crash between storing a candle and saving the state after its
    // orders) are not replayed here: they are acted on again, with the same client order ids.
    const stored = (await repo.candles(bot.id)).filter((c) => bot.lastCandleAt === null || c.ts <= bot.lastCandleAt);
    if (stored.length > 0) {
      for (const c of stored) evaluator.onCandle(toEngineCandle(c));
      if (bot.lastCandleAt === null) bot = (await repo.saveState(bot.id, deps.instanceId, { lastCandleAt: stored.at(-1)!.ts })) ?? bot;
      await emit('warmup', { candles: stored.length, source: 'stored', lastCandleAt: bot.lastCandleAt });
      if (opts.skipMissed) await skipMissed();
      return;
    }
    const history = await candleAdapter.fetchOHLCV(bot.symbol, bot.timeframe, { limit: deps.warmupCandles });
    const closed = closedAfter(history, -1, tfMs, Date.now());
    await repo.insertCandles(closed.map((c) => ({ botId: bot.id, ts: c.timestamp, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, live: false })));
    for (const c of closed) evaluator.onCandle(toEngineCandle(c));
    const lastAt = closed.at(-1)?.timestamp ?? null;
    if (lastAt !== null) bot = (await repo.saveState(bot.id, deps.instanceId, { lastCandleAt: lastAt })) ?? bot;
    await emit('warmup', { candles: closed.length, source: 'exchange', lastCandleAt: lastAt });
  }

  /** Candles closed since the last one acted on: fed (and stored as warm-up) without acting. */
  async function skipMissed(): Promise<void> {
    const last = bot.lastCandleAt ?? 0;
    const candles = await candleAdapter.fetchOHLCV(bot.symbol, bot.timeframe, { since: last + 1, limit: 1000 });
    const missed = closedAfter(candles, last, tfMs, Date.now());
    if (!missed.length) return;
    await repo.insertCandles(missed.map((c) => ({ botId: bot.id, ts: c.timestamp, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, live: false })));
    for (const c of missed) evaluator.onCandle(toEngineCandle(c));
    bot = (await repo.saveState(bot.id, deps.instanceId, { lastCandleAt: missed.at(-1)!.timestamp })) ?? bot;
    await emit('warmup', { candles: missed.length, source: 'missed while stopped', lastCandleAt: bot.lastCandleAt });
  }

  async function watch(): Promise<void> {
    if (stopped || !deps.useStream) return;
    try {
      stream = candleAdapter.watchOHLCV(bot.symbol, bot.timeframe);
      let seen = bot.lastCandleAt ?? 0;
      for await (const c of stream) {
        if (stopped) break;
        // A candle newer than the newest one seen means the previous one closed.
        if (c.timestamp > seen) {
          seen = c.timestamp;
          kick();
        }
      }
    } catch (err) {
      if (stopped) return;
      log.info({ botId: bot.id, err: (err as Error).message }, 'candle stream failed; polling until it is back');
      streamRetry = setTimeout(() => void watch(), 5000);
      streamRetry.unref();
    }
  }

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    clearInterval(pollTimer);
    clearInterval(leaseTimer);
    clearTimeout(streamRetry);
    await stream?.close().catch(() => undefined);
    // The step in progress sees `stopped` after its current await; give it a bounded time to finish.
    if (busy) await Promise.race([busy, new Promise((r) => setTimeout(r, Math.min(2 * deps.leaseTtlMs, 15_000)).unref())]);
    await repo.releaseLease(bot.id, deps.instanceId).catch(() => undefined);
    deps.onExit(bot.id);
  }

  return {
    botId: bot.id,
    userId: bot.userId,
    kick,
    stop,
    async start() {
      try {
        const strategy = await deps.strategies.get(bot.userId, bot.strategyId, bot.strategyVersion);
        evaluator = createEvaluator(strategy.document, bot.params);
        candleAdapter =
          bot.keyId === PAPER_KEY_ID
            ? await deps.trading.publicAdapter(deps.paperPriceExchange, marketType)
            : (await deps.trading.resolve(bot.userId, bot.keyId, { marketType })).adapter;
        leaseTimer = setInterval(async () => {
          const ok = await repo.renewLease(bot.id, deps.instanceId, deps.leaseTtlMs).catch(() => true);
          if (!ok) void stop();
        }, Math.max(50, Math.floor(deps.leaseTtlMs / 3)));
        leaseTimer.unref();
        await reconcile();
        await warmUp();
        if (stopped) return;
        await emit('started', { instance: deps.instanceId, lastCandleAt: bot.lastCandleAt });
        pollTimer = setInterval(kick, deps.pollIntervalMs);
        pollTimer.unref();
        void watch();
        kick();
      } catch (err) {
        const e = err as HttpProblem;
        const transient = !(e instanceof HttpProblem) || e.statusCode >= 500;
        log.warn({ botId: bot.id, err: e.message, transient }, 'bot could not start');
        await emit('error', { stage: 'start', code: e.code ?? 'ERROR', detail: e.message, retried: transient });
        // An exchange or network failure: the lease is released and the scan of some instance retries; anything
        // else (strategy deleted, key refused) puts the bot in error.
        if (transient) await stop();
        else await exit('error', { stage: 'start', code: e.code ?? 'ERROR', detail: e.message });
      }
    },
  };
}
