/**
 * Orders through one API: idempotent submission (pending row BEFORE the exchange call, unique client order id),
 * reconciliation of unknown outcomes (promptly in the background, and at startup), sync of open orders and fills,
 * cancel, history and trades with cursor pagination, balances and positions. Works the same for saved exchange keys
 * and the paper account.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/client.js';
import { HttpProblem, conflict, notFound } from '../../errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { EventBus } from '../../plugins/event-bus.js';
import { audit, type AuditEntry } from '../audit/index.js';
import { dec, isOrderOutcomeUnknown, validateOrder, type Order, type Trade } from '../exchanges/index.js';
import { PAPER_KEY_ID, marketTypeOf, type ResolvedAccount, type TradingService } from '../trading/index.js';
import { createOrdersRepository, type OrderRow, type TradeRow } from './orders.repository.js';
import type { OrderHistoryQuery, OrderView, SubmitOrderBody, TradeView, TradesQuery } from './orders.schemas.js';

export type AuditCtx = Pick<AuditEntry, 'actorId' | 'ip' | 'requestId'>;

const norm = (v: string | null | undefined) => (v === null || v === undefined ? null : dec.normalize(v));

export function toOrderView(r: OrderRow): OrderView {
  return {
    id: r.id,
    keyId: r.keyId,
    exchange: r.exchange,
    marketType: r.marketType,
    botId: r.botId,
    symbol: r.symbol,
    side: r.side,
    type: r.type,
    amount: dec.normalize(r.amount),
    price: norm(r.price),
    reduceOnly: r.reduceOnly,
    clientOrderId: r.clientOrderId,
    exchangeOrderId: r.exchangeOrderId,
    status: r.status,
    filled: dec.normalize(r.filled),
    average: norm(r.average),
    cost: dec.normalize(r.cost),
    fee: norm(r.fee),
    feeCurrency: r.feeCurrency,
    error: r.error ?? null,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

export function toTradeView(r: TradeRow): TradeView {
  return {
    id: r.id,
    orderId: r.orderId,
    keyId: r.keyId,
    exchange: r.exchange,
    botId: r.botId,
    exchangeTradeId: r.exchangeTradeId,
    symbol: r.symbol,
    side: r.side,
    price: dec.normalize(r.price),
    amount: dec.normalize(r.amount),
    cost: dec.normalize(r.cost),
    fee: norm(r.fee),
    feeCurrency: r.feeCurrency,
    realizedPnl: norm(r.realizedPnl),
    takerOrMaker: r.takerOrMaker,
    executedAt: r.executedAt.toISOString(),
  };
}

/** An exchange-safe client order id: 32 characters of [a-z0-9] (OKX allows at most 32 alphanumerics). */
export const newClientOrderId = () => `at${randomBytes(15).toString('hex')}`;

export interface SubmitResult {
  order: OrderView;
  /** 201 placed now, 200 the same client order id was seen before, 202 outcome not known yet (reconciling). */
  status: 200 | 201 | 202;
}

export interface OrdersServiceDeps {
  db: Db;
  trading: TradingService;
  bus: EventBus;
  log: FastifyBaseLogger;
  /** Exchange request timeout: a pending row older than this is no longer being placed by anyone. */
  exchangeTimeoutMs: number;
  syncIntervalMs: number;
}

/** Back-off of the background reconciliation of one order whose outcome is unknown. */
const RECONCILE_DELAYS_MS = [250, 500, 1000, 2000, 3000, 5000, 8000, 15_000, 30_000];

export function createOrdersService(deps: OrdersServiceDeps) {
  const { db, trading, bus, log } = deps;
  const repo = createOrdersRepository(db);
  /** An exchange that has no order for the client id this long after it was sent did not take it. */
  const notPlacedAfterMs = 2 * deps.exchangeTimeoutMs + 1000;
  const inFlight = new Set<string>();
  const locks = new Map<string, Promise<unknown>>();
  const timers = new Map<string, NodeJS.Timeout>();
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;
  let stopped = false;

  /** One sync at a time per order row (background timers, the sweep and requests may race). */
  function withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(id) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    locks.set(id, tail);
    void tail.then(() => {
      if (locks.get(id) === tail) locks.delete(id);
    });
    return run;
  }

  const publish = (userId: string, event: Record<string, unknown> & { type: string }) =>
    bus.publish(`user:${userId}`, event).catch((err: Error) => log.warn({ err: err.message }, 'could not publish an order event'));

  async function saveChange(before: OrderRow, patch: Partial<OrderRow>): Promise<OrderRow> {
    const after = await repo.update(before.id, patch);
    if (after.status !== before.status || !dec.eq(after.filled, before.filled)) {
      await publish(after.userId, { type: 'order.updated', order: toOrderView(after) });
    }
    return after;
  }

  /** Applies what the exchange says about the order to its row, then stores its fills. */
  async function applyExchangeOrder(row: OrderRow, order: Order, account: ResolvedAccount): Promise<OrderRow> {
    // Fills first: whoever sees the order filled finds its fills stored.
    if (dec.gt(order.filled, '0')) {
      await syncTrades({ ...row, exchangeOrderId: order.id }, account).catch((err: HttpProblem) =>
        log.warn({ orderId: row.id, err: err.message }, 'could not fetch the fills of an order (retried on the next sync)'),
      );
    }
    return saveChange(row, {
      exchangeOrderId: order.id,
      status: order.status,
      filled: order.filled,
      average: order.average ?? row.average,
      cost: order.cost,
      fee: order.fee?.cost ?? row.fee,
      feeCurrency: order.fee?.currency ?? row.feeCurrency,
      error: null,
    });
  }

  async function syncTrades(row: OrderRow, account: ResolvedAccount): Promise<void> {
    if (!row.exchangeOrderId) return;
    const since = row.createdAt.getTime() - 60_000;
    const fills = (await account.adapter.fetchMyTrades(row.symbol, { since })).filter(
      (t: Trade) => t.orderId === row.exchangeOrderId || (t.orderId === undefined && t.clientOrderId === row.clientOrderId),
    );
    const inserted = await repo.insertTrades(
      fills.map((t) => ({
        userId: row.userId,
        orderId: row.id,
        keyId: row.keyId,
        exchange: row.exchange,
        botId: row.botId,
        exchangeTradeId: t.id,
        symbol: row.symbol,
        side: t.side ?? row.side,
        price: t.price,
        amount: t.amount,
        cost: t.cost,
        fee: t.fee?.cost ?? null,
        feeCurrency: t.fee?.currency ?? null,
        realizedPnl: null,
        takerOrMaker: t.takerOrMaker ?? null,
        executedAt: new Date(t.timestamp),
      })),
    );
    for (const t of inserted) await publish(row.userId, { type: 'trade.filled', trade: toTradeView(t) });
  }

  const resolveFor = (row: Pick<OrderRow, 'userId' | 'keyId' | 'marketType'>) =>
    trading.resolve(row.userId, row.keyId, { marketType: row.marketType });

  /**
   * Brings one row up to date with the exchange: a pending row is looked up by its client order id (found -> its
   * state; not found long enough after it was sent -> rejected), an open one is re-read.
   */
  function syncRow(id: string): Promise<OrderRow | null> {
    return withLock(id, async () => {
      const row = await repo.findById(id);
      if (!row || (row.status !== 'pending' && row.status !== 'open')) return row;
      const account = await resolveFor(row);
      if (account.paper) await trading.refreshPaper(account.paper);
      if (row.status === 'pending') {
        const found = await account.adapter.fetchOrderByClientId(row.clientOrderId, row.symbol);
        if (found) return applyExchangeOrder(row, found, account);
        if (Date.now() - row.createdAt.getTime() < notPlacedAfterMs) return row;
        log.info({ orderId: row.id }, 'order outcome reconciled: the exchange never took it');
        return saveChange(row, {
          status: 'rejected',
          error: { code: 'ORDER_NOT_PLACED', detail: `${row.exchange} has no order with client order id ${row.clientOrderId}` },
        });
      }
      const current = await account.adapter.fetchOrder(row.exchangeOrderId!, row.symbol);
      return applyExchangeOrder(row, current, account);
    });
  }

  /** Reconciles one unknown outcome in the background until it is settled (seconds, with back-off). */
  function scheduleReconcile(id: string, attempt = 0): void {
    if (stopped || timers.has(id)) return;
    const delay = RECONCILE_DELAYS_MS[Math.min(attempt, RECONCILE_DELAYS_MS.length - 1)];
    const timer = setTimeout(async () => {
      timers.delete(id);
      try {
        const row = await syncRow(id);
        if (row?.status === 'pending') scheduleReconcile(id, attempt + 1);
      } catch (err) {
        log.warn({ orderId: id, err: (err as Error).message }, 'order reconciliation failed; retrying');
        if (!(err instanceof HttpProblem && err.statusCode === 404)) scheduleReconcile(id, attempt + 1);
      }
    }, delay);
    timer.unref();
    timers.set(id, timer);
  }

  /** Every pending row no request is still placing, and every open order: synced with its exchange. */
  async function sweep(): Promise<void> {
    const rows = await repo.active(200);
    for (const row of rows) {
      if (stopped) return;
      if (inFlight.has(row.id) || timers.has(row.id)) continue;
      if (row.status === 'pending' && Date.now() - row.updatedAt.getTime() < deps.exchangeTimeoutMs) continue;
      await syncRow(row.id).catch((err: Error) => {
        // A deleted key cannot be synced any more: not worth a warning every sweep.
        const keyGone = err instanceof HttpProblem && err.code === 'KEY_NOT_FOUND';
        log[keyGone ? 'debug' : 'warn']({ orderId: row.id, err: err.message }, 'order sync failed');
        // Rows are processed least recently synced first: mark this one as visited.
        return repo.update(row.id, {}).catch(() => undefined);
      });
    }
  }

  /** A client order id is an idempotency key: reusing it for a different order is a client bug (409). */
  function assertSameOrder(row: OrderRow, input: SubmitOrderBody): void {
    const same =
      row.symbol === input.symbol &&
      row.side === input.side &&
      row.type === input.type &&
      dec.eq(row.amount, input.amount) &&
      (input.type === 'market' || (row.price !== null && input.price !== undefined && dec.eq(row.price, input.price)));
    if (!same) {
      throw conflict(`client order id ${row.clientOrderId} was already used for a different order (${row.id})`, 'CLIENT_ORDER_ID_REUSED');
    }
  }

  async function findOwned(userId: string, id: string): Promise<OrderRow> {
    const row = await repo.findOwned(userId, id);
    if (!row) throw notFound('Order', id, 'ORDER_NOT_FOUND');
    return row;
  }

  return {
    async submit(userId: string, input: SubmitOrderBody, who: AuditCtx): Promise<SubmitResult> {
      await trading.guard.assertAllowed(userId);
      const clientOrderId = input.clientOrderId ?? newClientOrderId();
      const existing = await repo.findByClientId(userId, input.keyId, clientOrderId);
      if (existing) {
        assertSameOrder(existing, input);
        return { order: toOrderView(existing), status: 200 };
      }

      const account = await trading.resolve(userId, input.keyId, { marketType: marketTypeOf(input.symbol) });
      const market = await account.adapter.market(input.symbol);
      const request = {
        symbol: input.symbol,
        side: input.side,
        type: input.type,
        amount: dec.normalize(input.amount),
        price: input.type === 'limit' && input.price !== undefined ? dec.normalize(input.price) : undefined,
        reduceOnly: input.reduceOnly,
        clientOrderId,
      };
      const reference =
        input.type === 'market'
          ? account.paper
            ? (await account.adapter.fetchTicker(input.symbol)).last
            : (await trading.marketData.get(`key:${input.keyId}:ticker:${input.symbol}`, () => account.adapter.fetchTicker(input.symbol))).last
          : undefined;
      validateOrder(market, request, reference);

      const row = await db.transaction(async (tx) => {
        const created = await repo.insertPending(
          {
            userId,
            keyId: input.keyId,
            exchange: account.exchange,
            marketType: account.marketType,
            botId: input.botId ?? null,
            symbol: input.symbol,
            side: input.side,
            type: input.type,
            amount: request.amount,
            price: request.price ?? null,
            reduceOnly: input.reduceOnly ?? false,
            clientOrderId,
          },
          tx,
        );
        if (created) {
          await audit(tx, {
            ...who,
            action: 'order.submitted',
            targetType: 'order',
            targetId: created.id,
            details: { keyId: input.keyId, exchange: account.exchange, symbol: input.symbol, side: input.side, type: input.type, amount: request.amount, clientOrderId },
          });
        }
        return created;
      });
      if (!row) {
        // A concurrent request with the same client order id won the insert: answer with its order.
        const winner = await repo.findByClientId(userId, input.keyId, clientOrderId);
        if (!winner) throw conflict(`order ${clientOrderId} is being placed`, 'ORDER_IN_PROGRESS');
        assertSameOrder(winner, input);
        return { order: toOrderView(winner), status: 200 };
      }

      inFlight.add(row.id);
      try {
        // The kill switch again, right before the exchange call: it may have been engaged during the awaits above
        // (a 423 here marks the row rejected; nothing reached the exchange).
        await trading.guard.assertAllowed(userId);
        const placed = await account.adapter.createOrder(request);
        const updated = await withLock(row.id, () => applyExchangeOrder(row, placed, account));
        return { order: toOrderView(updated), status: 201 };
      } catch (err) {
        if (isOrderOutcomeUnknown(err) || !(err instanceof HttpProblem)) {
          log.warn({ orderId: row.id, err: (err as Error).message }, 'order outcome unknown; reconciling by client order id');
          const settled = await withLock(row.id, async () => {
            const found = await account.adapter.fetchOrderByClientId(clientOrderId, input.symbol).catch(() => undefined);
            return found ? applyExchangeOrder(row, found, account) : undefined;
          }).catch(() => undefined);
          if (settled) return { order: toOrderView(settled), status: 201 };
          scheduleReconcile(row.id);
          return { order: toOrderView((await repo.findById(row.id)) ?? row), status: 202 };
        }
        await saveChange(row, { status: 'rejected', error: { code: err.code, detail: err.message } });
        throw err;
      } finally {
        inFlight.delete(row.id);
      }
    },

    async get(userId: string, id: string, opts: { sync?: boolean } = {}): Promise<OrderView> {
      const row = await findOwned(userId, id);
      if (opts.sync && (row.status === 'pending' || row.status === 'open')) {
        return toOrderView((await syncRow(row.id)) ?? row);
      }
      return toOrderView(row);
    },

    async cancel(userId: string, id: string, who: AuditCtx): Promise<OrderView> {
      const row = await findOwned(userId, id);
      if (row.status === 'pending') throw conflict('the order is still being placed; try again in a few seconds', 'ORDER_PENDING');
      if (row.status !== 'open') throw conflict(`the order is ${row.status}, not open`, 'ORDER_NOT_OPEN');
      await trading.guard.assertAllowed(userId).catch((err: unknown) => {
        // Cancelling reduces risk: allowed even while trading is locked.
        log.debug({ err: (err as Error).message }, 'cancel while trading is locked');
      });
      const account = await resolveFor(row);
      return withLock(row.id, async () => {
        let result: Order;
        try {
          result = await account.adapter.cancelOrder(row.exchangeOrderId!, row.symbol);
        } catch (err) {
          if (!(err instanceof HttpProblem) || err.code !== 'EXCHANGE_ORDER_NOT_FOUND') throw err;
          const current = await account.adapter.fetchOrder(row.exchangeOrderId!, row.symbol);
          const updated = await applyExchangeOrder(row, current, account);
          throw conflict(`the order is ${updated.status}, not open`, 'ORDER_NOT_OPEN');
        }
        const updated = await applyExchangeOrder(row, { ...result, status: result.status === 'open' ? 'canceled' : result.status }, account);
        await audit(db, { ...who, action: 'order.canceled', targetType: 'order', targetId: row.id, details: { keyId: row.keyId, symbol: row.symbol } });
        return toOrderView(updated);
      });
    },

    async history(userId: string, q: OrderHistoryQuery) {
      const rows = await repo.list(
        userId,
        { ...q, from: q.from ? new Date(q.from) : undefined, to: q.to ? new Date(q.to) : undefined },
        decodeCursor(q.cursor),
        q.limit,
      );
      return toPage(rows, q.limit, (r) => ({ at: r.createdAt, id: r.id }), toOrderView);
    },

    async trades(userId: string, q: TradesQuery) {
      const rows = await repo.listTrades(
        userId,
        { ...q, from: q.from ? new Date(q.from) : undefined, to: q.to ? new Date(q.to) : undefined },
        decodeCursor(q.cursor),
        q.limit,
      );
      return toPage(rows, q.limit, (r) => ({ at: r.executedAt, id: r.id }), toTradeView);
    },

    async balance(userId: string, keyId: string, marketType?: 'spot' | 'swap') {
      const account = await trading.resolve(userId, keyId, { marketType });
      if (account.paper) await trading.refreshPaper(account.paper);
      const balances = await account.adapter.fetchBalance();
      return {
        keyId,
        exchange: account.exchange,
        marketType: account.marketType,
        balances: Object.entries(balances)
          .map(([currency, b]) => ({ currency, free: b.free, used: b.used, total: b.total }))
          .sort((a, b) => a.currency.localeCompare(b.currency)),
      };
    },

    async positions(userId: string, keyId: string) {
      const account = await trading.resolve(userId, keyId, { marketType: keyId === PAPER_KEY_ID ? 'swap' : undefined });
      const positions = await account.adapter.fetchPositions();
      return {
        keyId,
        exchange: account.exchange,
        marketType: account.marketType,
        items: positions.map((p) => ({
          symbol: p.symbol,
          side: p.side,
          contracts: p.contracts,
          contractSize: p.contractSize ?? null,
          entryPrice: p.entryPrice ?? null,
          markPrice: p.markPrice ?? null,
          unrealizedPnl: p.unrealizedPnl ?? null,
          realizedPnl: p.realizedPnl ?? null,
          leverage: p.leverage ?? null,
          marginMode: p.marginMode ?? null,
        })),
      };
    },

    /** Syncs pending (left by a crash or a timeout) and open orders now, then every `syncIntervalMs`. */
    start(): void {
      const tick = () => {
        if (stopped || sweeping) return;
        sweeping = sweep()
          .catch((err: Error) => log.warn({ err: err.message }, 'order sweep failed'))
          .finally(() => (sweeping = undefined));
      };
      tick();
      sweepTimer = setInterval(tick, deps.syncIntervalMs);
      sweepTimer.unref();
    },

    async stop(): Promise<void> {
      stopped = true;
      if (sweepTimer) clearInterval(sweepTimer);
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      await sweeping;
      await Promise.allSettled([...locks.values()]);
    },

    /** Syncs one order now (tests, admin tools). */
    syncNow: (id: string) => syncRow(id),
  };
}

export type OrdersService = ReturnType<typeof createOrdersService>;
