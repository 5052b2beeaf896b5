/**
 * Bots: CRUD, start/stop, the runners of this process (leases decide which instance runs a bot), events, the
 * reconciliation report, and the kill switches (the trading guard the orders service calls before every order).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/client.js';
import { HttpProblem, conflict, locked, notFound, validationFailed } from '../../errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { EventBus } from '../../plugins/event-bus.js';
import { createEvaluator, resolveAction, StrategyError } from '../../../workers/engine/evaluator.js';
import { audit, type AuditEntry } from '../audit/index.js';
import { dec } from '../exchanges/index.js';
import type { KeysService } from '../account/keys.service.js';
import type { OrdersService } from '../orders/orders.service.js';
import type { StrategiesService } from '../strategies/strategies.service.js';
import { PAPER_KEY_ID, type TradingService } from '../trading/index.js';
import { createBotsRepository, type BotEventRow, type BotRow, type KillSwitchRow } from './bots.repository.js';
import { botClientOrderId, createRunner, legsOf, toEngineCandle, type Runner } from './bots.runner.js';
import type { BotEventView, BotView, CreateBotBody, KillSwitchResult, KillSwitchView, Reconciliation, UpdateBotBody } from './bots.schemas.js';

type Who = Pick<AuditEntry, 'actorId' | 'ip' | 'requestId'>;

export interface BotsServiceDeps {
  db: Db;
  orders: OrdersService;
  trading: TradingService;
  strategies: StrategiesService;
  keys: KeysService;
  bus: EventBus;
  log: FastifyBaseLogger;
  config: {
    requireBacktest: boolean;
    leaseTtlMs: number;
    pollIntervalMs: number;
    warmupCandles: number;
    useStream: boolean;
    paperPriceExchange: 'binance' | 'bitget' | 'okx';
    assumedFeeBps: number;
    assumedSlippageBps: number;
  };
  observeLag?: (seconds: number) => void;
  /** Identifies this process in leases (default: a random uuid). */
  instanceId?: string;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toBotView(r: BotRow): BotView {
  return {
    id: r.id,
    name: r.name,
    strategyId: r.strategyId,
    strategyVersion: r.strategyVersion,
    keyId: r.keyId,
    symbol: r.symbol,
    timeframe: r.timeframe,
    params: r.params,
    sizing: r.sizing,
    risk: r.risk,
    status: r.status,
    statusReason: r.statusReason ?? null,
    position: r.position,
    positionSize: dec.normalize(r.positionSize),
    entryPrice: r.entryPrice === null ? null : dec.normalize(r.entryPrice),
    dailyPnl: dec.normalize(r.dailyPnl),
    lastCandleAt: iso(r.lastCandleAt),
    startedAt: r.startedAt?.toISOString() ?? null,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

export const toEventView = (r: BotEventRow): BotEventView => ({
  id: r.id,
  botId: r.botId,
  type: r.type,
  candleAt: iso(r.candleAt),
  data: r.data,
  createdAt: r.createdAt.toISOString(),
});

export function createBotsService(deps: BotsServiceDeps) {
  const { db, bus, log, config } = deps;
  const repo = createBotsRepository(db);
  const instanceId = deps.instanceId ?? randomUUID();
  const runners = new Map<string, Runner>();
  let scanTimer: NodeJS.Timeout | undefined;
  let closed = false;

  async function event(bot: Pick<BotRow, 'id' | 'userId'>, type: string, data: Record<string, unknown>, candleAt?: number): Promise<void> {
    const row = await repo.insertEvent({ botId: bot.id, userId: bot.userId, type, data, candleAt: candleAt ?? null });
    await bus
      .publish(`user:${bot.userId}`, { type: 'bot.event', event: toEventView(row) })
      .catch((err: Error) => log.warn({ err: err.message }, 'could not publish a bot event'));
  }

  async function guard(userId: string): Promise<void> {
    const lock = await repo.lockOf(userId);
    if (lock) {
      throw locked(
        lock.scope === 'global' ? 'Trading is locked for everyone by the global kill switch' : 'Trading is locked: your kill switch is engaged (release it to trade again)',
        'KILL_SWITCH_ENGAGED',
      );
    }
  }

  async function halt(bot: BotRow, status: 'paused' | 'error' | 'stopped', reason: Record<string, unknown>): Promise<void> {
    const row = await repo.updateIf(bot.id, ['running'], { status, statusReason: reason, leaseOwner: null, leaseExpiresAt: null });
    if (row) await event(bot, status === 'paused' ? 'paused' : status, { reason });
  }

  function launch(row: BotRow, skipMissed: boolean): void {
    if (closed || runners.has(row.id)) return;
    const runner = createRunner(row, {
      repo,
      orders: deps.orders,
      trading: deps.trading,
      strategies: deps.strategies,
      log,
      instanceId,
      leaseTtlMs: config.leaseTtlMs,
      pollIntervalMs: config.pollIntervalMs,
      warmupCandles: config.warmupCandles,
      paperPriceExchange: config.paperPriceExchange,
      useStream: config.useStream,
      event,
      halt,
      guard,
      observeLag: (s) => deps.observeLag?.(s),
      onExit: (id) => {
        if (runners.get(id) === runner) runners.delete(id);
      },
    }, { skipMissed });
    runners.set(row.id, runner);
    void runner.start();
  }

  /** Takes the lease of a running bot and runs it here; false when another live instance holds it. */
  async function tryRun(id: string, skipMissed = false): Promise<boolean> {
    if (closed || runners.has(id)) return runners.has(id);
    const row = await repo.acquireLease(id, instanceId, config.leaseTtlMs);
    if (!row) return false;
    launch(row, skipMissed);
    return true;
  }

  /** Resumes every running bot nobody holds (at start, then periodically: takes over bots of a dead instance). */
  async function scan(): Promise<void> {
    for (const id of await repo.unleased()) {
      if (closed) return;
      await tryRun(id).catch((err: Error) => log.warn({ botId: id, err: err.message }, 'could not resume a bot'));
    }
  }

  async function stopLocal(id: string): Promise<void> {
    await runners.get(id)?.stop();
  }

  async function findOwned(userId: string, id: string): Promise<BotRow> {
    const row = await repo.findOwned(userId, id);
    if (!row) throw notFound('Bot', id, 'BOT_NOT_FOUND');
    return row;
  }

  /** Strategy version exists, params are valid for it, the key is the user's. */
  async function validateConfig(userId: string, c: Pick<BotRow, 'strategyId' | 'strategyVersion' | 'params' | 'keyId'>): Promise<void> {
    const strategy = await deps.strategies.get(userId, c.strategyId, c.strategyVersion);
    try {
      createEvaluator(strategy.document, c.params);
    } catch (err) {
      if (err instanceof StrategyError) {
        throw validationFailed('Bot params are invalid for this strategy version', err.issues.map((i) => ({ path: `/body/params${i.path}`, message: i.message })), 'INVALID_BOT_PARAMS');
      }
      throw err;
    }
    if (c.keyId !== PAPER_KEY_ID) await deps.keys.get(userId, c.keyId);
  }

  async function cancelOpenOrders(userId: string, who: Who): Promise<{ canceled: number; errors: KillSwitchResult['cancelErrors'] }> {
    let canceled = 0;
    const errors: KillSwitchResult['cancelErrors'] = [];
    // Orders the API knows about: cancelled through the orders service (rows updated, audited).
    for (const o of await repo.activeOrdersOfUser(userId)) {
      if (o.status === 'pending') await deps.orders.syncNow(o.id).catch(() => undefined);
      try {
        const after = await deps.orders.cancel(userId, o.id, who);
        if (after.status === 'canceled') canceled++;
      } catch (err) {
        const e = err as HttpProblem;
        if (e.code !== 'ORDER_NOT_OPEN') errors.push({ keyId: o.keyId, code: e.code ?? 'ERROR', detail: e.message });
      }
    }
    // Anything else still open on each connected account (each saved key, and both paper accounts).
    const keys = await deps.keys.list(userId);
    const accounts: { keyId: string; marketType?: 'spot' | 'swap' }[] = [
      ...keys.map((k) => ({ keyId: k.id })),
      { keyId: PAPER_KEY_ID, marketType: 'spot' },
      { keyId: PAPER_KEY_ID, marketType: 'swap' },
    ];
    const symbols = [...new Set((await repo.runningOfUser(userId)).map((b) => b.symbol))];
    for (const a of accounts) {
      try {
        const account = await deps.trading.resolve(userId, a.keyId, { marketType: a.marketType });
        const open = await account.adapter.fetchOpenOrders().catch(async () => {
          // Some exchanges want a symbol: fall back to the symbols of this user's orders and bots.
          const known = new Set([...symbols, ...(await repo.activeOrdersOfUser(userId)).map((o) => o.symbol)]);
          return (await Promise.all([...known].map((s) => account.adapter.fetchOpenOrders(s).catch(() => [])))).flat();
        });
        for (const o of open) {
          await account.adapter.cancelOrder(o.id, o.symbol).then(
            () => canceled++,
            (err: HttpProblem) => {
              if (err.code !== 'EXCHANGE_ORDER_NOT_FOUND') errors.push({ keyId: a.keyId, code: err.code ?? 'ERROR', detail: err.message });
            },
          );
        }
      } catch (err) {
        const e = err as HttpProblem;
        errors.push({ keyId: a.keyId, code: e.code ?? 'ERROR', detail: e.message });
      }
    }
    return { canceled, errors };
  }

  const switchView = (row: KillSwitchRow | null, scope: 'user' | 'global', global: KillSwitchRow | null): KillSwitchView => ({
    engaged: row !== null,
    scope,
    engagedAt: row?.engagedAt.toISOString() ?? null,
    reason: row?.reason ?? null,
    globalEngaged: global !== null,
  });

  /** Stops bots (status stopped, reason kill switch) and waits for the runners of this process to finish. */
  async function stopBots(rows: BotRow[]): Promise<string[]> {
    const stopped: string[] = [];
    for (const b of rows) {
      const row = await repo.updateIf(b.id, ['running'], { status: 'stopped', statusReason: { killSwitch: true }, leaseOwner: null, leaseExpiresAt: null });
      if (row) {
        stopped.push(b.id);
        await event(b, 'stopped', { reason: 'kill switch' });
      }
    }
    await Promise.all(rows.map((b) => stopLocal(b.id)));
    return stopped;
  }

  return {
    instanceId,
    guard,
    /** Ids of the bots this process runs now. */
    runningHere: () => [...runners.keys()],

    async create(userId: string, input: CreateBotBody, who: Who): Promise<BotView> {
      await validateConfig(userId, { ...input, params: input.params ?? {} });
      return db.transaction(async (tx) => {
        const row = await createBotsRepository(tx).insert({
          userId,
          name: input.name,
          strategyId: input.strategyId,
          strategyVersion: input.strategyVersion,
          keyId: input.keyId,
          symbol: input.symbol,
          timeframe: input.timeframe,
          params: input.params ?? {},
          sizing: input.sizing,
          risk: input.risk ?? {},
        });
        await audit(tx, { ...who, action: 'bot.created', targetType: 'bot', targetId: row.id, details: { name: row.name, keyId: row.keyId, symbol: row.symbol } });
        return toBotView(row);
      });
    },

    async list(userId: string, q: { limit: number; cursor?: string }) {
      const rows = await repo.list(userId, decodeCursor(q.cursor), q.limit);
      return toPage(rows, q.limit, (r) => ({ at: r.createdAt, id: r.id }), toBotView);
    },

    async get(userId: string, id: string): Promise<BotView> {
      return toBotView(await findOwned(userId, id));
    },

    async update(userId: string, id: string, input: UpdateBotBody, who: Who): Promise<BotView> {
      const current = await findOwned(userId, id);
      if (current.status === 'running') throw conflict('stop the bot before changing it', 'BOT_RUNNING');
      const next = { ...current, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) } as BotRow;
      await validateConfig(userId, next);
      const changesMarket = input.symbol !== undefined || input.timeframe !== undefined || input.strategyId !== undefined || input.strategyVersion !== undefined || input.params !== undefined;
      const patch = {
        name: next.name,
        strategyId: next.strategyId,
        strategyVersion: next.strategyVersion,
        keyId: next.keyId,
        symbol: next.symbol,
        timeframe: next.timeframe,
        params: next.params,
        sizing: next.sizing,
        risk: next.risk,
        // A new strategy, symbol or timeframe starts from a fresh warm-up.
        ...(changesMarket ? { lastCandleAt: null } : {}),
      };
      const row = await db.transaction(async (tx) => {
        const updated = await createBotsRepository(tx).updateIf(id, ['stopped', 'paused', 'error'], patch);
        if (!updated) throw conflict('stop the bot before changing it', 'BOT_RUNNING');
        if (changesMarket) await createBotsRepository(tx).deleteCandles(id, tx);
        await audit(tx, { ...who, action: 'bot.updated', targetType: 'bot', targetId: id, details: { fields: Object.keys(input) } });
        return updated;
      });
      return toBotView(row);
    },

    async remove(userId: string, id: string, who: Who): Promise<void> {
      const bot = await findOwned(userId, id);
      await repo.updateIf(id, ['running'], { status: 'stopped', leaseOwner: null, leaseExpiresAt: null });
      await stopLocal(id);
      await db.transaction(async (tx) => {
        await createBotsRepository(tx).remove(id, tx);
        await audit(tx, { ...who, action: 'bot.deleted', targetType: 'bot', targetId: id, details: { name: bot.name } });
      });
    },

    async start(userId: string, id: string, who: Who): Promise<BotView> {
      const bot = await findOwned(userId, id);
      if (bot.status === 'running') return toBotView(bot);
      await guard(userId);
      if (bot.keyId !== PAPER_KEY_ID && config.requireBacktest && !(await repo.hasSucceededBacktest(userId, bot.strategyId, bot.strategyVersion))) {
        throw conflict(
          `strategy ${bot.strategyId} version ${bot.strategyVersion} has no completed backtest: run one (POST /backtest/start) before trading it on a real exchange, or use a paper bot`,
          'BACKTEST_REQUIRED',
        );
      }
      await validateConfig(userId, bot);
      const row = await repo.updateIf(id, ['stopped', 'paused', 'error'], { status: 'running', statusReason: null, startedAt: new Date(), leaseOwner: null, leaseExpiresAt: null });
      if (!row) return toBotView((await repo.findById(id))!);
      await audit(db, { ...who, action: 'bot.started', targetType: 'bot', targetId: id, details: { keyId: bot.keyId, symbol: bot.symbol } });
      // Started by the user: candles that closed while it was stopped are not acted on (a resume after a crash is).
      await tryRun(id, true);
      return toBotView((await repo.findById(id)) ?? row);
    },

    async stop(userId: string, id: string, who: Who): Promise<BotView> {
      await findOwned(userId, id);
      const row = await repo.updateIf(id, ['running', 'paused', 'error'], { status: 'stopped', statusReason: { by: 'user' }, leaseOwner: null, leaseExpiresAt: null });
      await stopLocal(id);
      if (row) {
        await event(row, 'stopped', { reason: 'user' });
        await audit(db, { ...who, action: 'bot.stopped', targetType: 'bot', targetId: id });
      }
      return toBotView((await repo.findById(id))!);
    },

    async events(userId: string, id: string, q: { limit: number; cursor?: string; type?: string }) {
      await findOwned(userId, id);
      const rows = await repo.listEvents(id, decodeCursor(q.cursor), q.limit, q.type);
      return toPage(rows, q.limit, (r) => ({ at: r.createdAt, id: r.id }), toEventView);
    },

    /**
     * Replays the candles the bot saw through a fresh evaluator (warm-up candles without acting, live ones acting
     * from a flat position) and compares the predicted orders (deterministic client order ids) with the orders placed.
     */
    async reconciliation(userId: string, id: string): Promise<Reconciliation> {
      const bot = await findOwned(userId, id);
      const strategy = await deps.strategies.get(userId, bot.strategyId, bot.strategyVersion);
      const evaluator = createEvaluator(strategy.document, bot.params);
      const candles = await repo.candles(id);
      const placed = await repo.ordersOfBot(id);
      const byClientId = new Map(placed.map((o) => [o.clientOrderId, o]));
      const expected: Reconciliation['matched'] = [];
      let position = 0;
      let live = 0;
      for (const c of candles) {
        const d = evaluator.onCandle(toEngineCandle(c));
        if (!c.live) continue;
        live++;
        const action = resolveAction(position, d.signals);
        for (const leg of legsOf(action, position)) {
          const clientOrderId = botClientOrderId(id, c.ts, leg.leg);
          const o = byClientId.get(clientOrderId);
          const realised = o?.average ?? null;
          const slip =
            realised === null ? null : ((Number(realised) - Number(c.close)) / Number(c.close)) * 1e4 * (leg.side === 'buy' ? 1 : -1);
          expected.push({
            candleAt: new Date(c.ts).toISOString(),
            leg: leg.leg,
            side: leg.side,
            clientOrderId,
            orderId: o?.id ?? null,
            status: o?.status ?? null,
            assumedPrice: dec.normalize(c.close),
            realisedPrice: realised === null ? null : dec.normalize(realised),
            slippageBps: slip === null ? null : Math.round(slip * 100) / 100,
            assumedFee: o ? dec.normalize(dec.div(dec.mul(dec.mul(o.amount, c.close), String(config.assumedFeeBps)), '10000', 12)) : null,
            realisedFee: o?.fee ? dec.normalize(o.fee) : null,
          });
          position = leg.to;
        }
      }
      const ok = (s: string | null) => s !== null && s !== 'rejected';
      const matched = expected.filter((e) => ok(e.status));
      const missed = expected.filter((e) => !ok(e.status));
      const expectedIds = new Set(expected.map((e) => e.clientOrderId));
      const extra = placed
        .filter((o) => !expectedIds.has(o.clientOrderId))
        .map((o) => ({ orderId: o.id, clientOrderId: o.clientOrderId, side: o.side, amount: dec.normalize(o.amount), status: o.status }));
      const slips = matched.map((m) => m.slippageBps).filter((s): s is number => s !== null);
      const sum = (xs: (string | null)[]) => dec.normalize(xs.reduce<string>((a, x) => (x === null ? a : dec.add(a, x)), '0'));
      return {
        botId: id,
        candles: candles.length,
        liveCandles: live,
        expectedOrders: expected.length,
        matched,
        missed,
        extra,
        slippage: { averageBps: slips.length ? Math.round((slips.reduce((a, b) => a + b, 0) / slips.length) * 100) / 100 : null, assumedBps: config.assumedSlippageBps },
        fees: { assumed: sum(matched.map((m) => m.assumedFee)), realised: sum(matched.map((m) => m.realisedFee)), assumedBps: config.assumedFeeBps },
      };
    },

    // ---- kill switches -----------------------------------------------------------------------------------------
    async killSwitchStatus(userId: string): Promise<KillSwitchView> {
      return switchView(await repo.userSwitch(userId), 'user', await repo.globalSwitch());
    },

    async engageKillSwitch(userId: string, reason: string | undefined, who: Who): Promise<KillSwitchResult> {
      // 1. Lock first: from here on the guard refuses every order of this user (checked right before exchange calls).
      const row = await repo.engage('user', userId, who.actorId ?? userId, reason ?? null);
      await audit(db, { ...who, action: 'killswitch.engaged', targetType: 'user', targetId: userId, details: { reason: reason ?? null } });
      // 2. Stop the bots (a runner in the middle of a decision re-checks the guard and the lease before its order).
      const stoppedBots = await stopBots(await repo.runningOfUser(userId));
      // 3. Cancel what is open on every connected exchange.
      const { canceled, errors } = await cancelOpenOrders(userId, who);
      await bus.publish(`user:${userId}`, { type: 'killswitch.engaged', engagedAt: row.engagedAt.toISOString() }).catch(() => undefined);
      return { ...switchView(row, 'user', await repo.globalSwitch()), stoppedBots, canceledOrders: canceled, cancelErrors: errors };
    },

    async releaseKillSwitch(userId: string, who: Who): Promise<KillSwitchView> {
      const released = await repo.release('user', userId);
      if (released) {
        await audit(db, { ...who, action: 'killswitch.released', targetType: 'user', targetId: userId });
        await bus.publish(`user:${userId}`, { type: 'killswitch.released' }).catch(() => undefined);
      }
      return switchView(null, 'user', await repo.globalSwitch());
    },

    async globalKillSwitchStatus(): Promise<KillSwitchView> {
      const g = await repo.globalSwitch();
      return switchView(g, 'global', g);
    },

    async engageGlobalKillSwitch(reason: string | undefined, who: Who): Promise<KillSwitchResult> {
      const row = await repo.engage('global', null, who.actorId ?? null, reason ?? null);
      await audit(db, { ...who, action: 'killswitch.global.engaged', targetType: 'system', details: { reason: reason ?? null } });
      const stoppedBots = await stopBots(await repo.allRunning());
      return { ...switchView(row, 'global', row), stoppedBots, canceledOrders: 0, cancelErrors: [] };
    },

    async releaseGlobalKillSwitch(who: Who): Promise<KillSwitchView> {
      if (await repo.release('global', null)) await audit(db, { ...who, action: 'killswitch.global.released', targetType: 'system' });
      return switchView(null, 'global', null);
    },

    /**
     * Stops the runners of a user about to be deleted (their rows go with the user). Runs inside the delete
     * transaction: no query here (the runner stops acting at once; its lease release waits for the commit).
     */
    onUserDeleted(userId: string): void {
      for (const r of runners.values()) if (r.userId === userId) void r.stop();
    },

    orderCountsByStatus: () => repo.orderCountsByStatus(),

    /** Resumes running bots now, then keeps looking for bots whose lease expired (a dead instance's). */
    async startScanning(): Promise<void> {
      await scan();
      scanTimer = setInterval(() => void scan().catch((err: Error) => log.warn({ err: err.message }, 'bot scan failed')), Math.max(50, Math.floor(config.leaseTtlMs / 2)));
      scanTimer.unref();
    },

    /** Stops every runner of this process (leases released: another instance resumes the bots). */
    async close(): Promise<void> {
      closed = true;
      clearInterval(scanTimer);
      await Promise.all([...runners.values()].map((r) => r.stop()));
    },
  };
}

export type BotsService = ReturnType<typeof createBotsService>;
