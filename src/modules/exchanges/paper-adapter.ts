/**
 * Paper exchange: the ExchangeAdapter interface over a per-account virtual ledger.
 *
 * - Market orders fill at once at the injected price source's price, moved against the trader by `slippageBps`,
 *   and pay `feeBps` of their value in the quote currency.
 * - Limit orders rest (their funds reserved) and fill at their limit price, as makers, when `onPrice`/`onCandle`
 *   reports a price that crosses them.
 * - Spot markets move balances; swap markets keep a net position per symbol (long/short), margin = notional/leverage,
 *   realised PnL booked to the settle currency.
 * - `clientOrderId` is idempotent: placing the same id again returns the order already placed.
 * - State is a JSON-able object of decimal strings saved through `PaperStore` after every change, so a new adapter
 *   over the same store (a restart) continues where the old one stopped.
 */
import { notFound, serviceUnavailable, unprocessable } from '../../errors.js';
import { dec, type Decimal } from './decimal.js';
import {
  validateOrder,
  type Balances,
  type Candle,
  type CreateOrderRequest,
  type ExchangeAdapter,
  type FetchRange,
  type Market,
  type MarketType,
  type Order,
  type Position,
  type Stream,
  type Ticker,
  type Trade,
} from './types.js';

export interface PaperOrder extends Order {
  /** Funds held for a resting order: currency and amount. */
  reserved?: { currency: string; amount: Decimal };
}

export interface PaperPosition {
  /** Signed contracts: > 0 long, < 0 short. */
  contracts: Decimal;
  entryPrice: Decimal;
  realizedPnl: Decimal;
}

export interface PaperState {
  version: 1;
  /** Wallet totals per currency (free + used). */
  balances: Record<string, Decimal>;
  orders: PaperOrder[];
  trades: Trade[];
  positions: Record<string, PaperPosition>;
  /** Spot holdings bought through this account, at average cost incl. buy fees (for spot realised PnL). */
  spotBasis?: Record<string, { amount: Decimal; avgCost: Decimal }>;
  /** Realised PnL in quote/settle currency: swap closes, and spot sells against their average cost (net of fees). */
  realizedPnl: Decimal;
  seq: number;
}

/** Where paper accounts live. The DB-backed store implements the same two methods. */
export interface PaperStore {
  load(accountId: string): Promise<PaperState | null>;
  save(accountId: string, state: PaperState): Promise<void>;
}

export function createMemoryPaperStore(): PaperStore & { snapshot(accountId: string): PaperState | undefined } {
  const data = new Map<string, string>();
  return {
    async load(accountId) {
      const raw = data.get(accountId);
      return raw === undefined ? null : (JSON.parse(raw) as PaperState);
    },
    async save(accountId, state) {
      data.set(accountId, JSON.stringify(state));
    },
    snapshot(accountId) {
      const raw = data.get(accountId);
      return raw === undefined ? undefined : (JSON.parse(raw) as PaperState);
    },
  };
}

export interface PaperPriceSource {
  /** Current price of a symbol; undefined when unknown (the last `onPrice`/`onCandle` price is used then). */
  getPrice(symbol: string): Promise<Decimal | undefined> | Decimal | undefined;
  fetchOHLCV?(symbol: string, timeframe: string, range?: FetchRange): Promise<Candle[]>;
}

export interface PaperAdapterOptions {
  /** One virtual account per user (or per bot). */
  accountId: string;
  store: PaperStore;
  marketType: MarketType;
  /** Markets the account can trade (e.g. from a real adapter's `loadMarkets`); precision and limits are enforced. */
  markets: Market[];
  prices?: PaperPriceSource;
  /** Balances of a new account. */
  startingBalances: Record<string, Decimal>;
  feeBps?: number;
  slippageBps?: number;
  /** Swap only: margin held = notional / leverage. */
  leverage?: Decimal;
  now?: () => number;
}

export interface PaperAdapter extends ExchangeAdapter {
  /** Reports a new last price; resting limit orders it crosses fill. Returns the orders filled. */
  onPrice(symbol: string, price: Decimal): Promise<Order[]>;
  /** Same with a candle: buy limits fill when `low` reaches them, sell limits when `high` does; last price = close. */
  onCandle(symbol: string, candle: Candle): Promise<Order[]>;
  /** Realised PnL so far (swap positions), in the settle currency. */
  realizedPnl(): Promise<Decimal>;
}

const bps = (value: number) => dec.div(String(value), '10000');

export function createPaperAdapter(opts: PaperAdapterOptions): PaperAdapter {
  const { accountId, store, marketType } = opts;
  const markets: Record<string, Market> = Object.fromEntries(
    opts.markets.filter((m) => m.type === marketType).map((m) => [m.symbol, m]),
  );
  const feeRate = bps(opts.feeBps ?? 10);
  const slippage = bps(opts.slippageBps ?? 5);
  const leverage = opts.leverage ?? '1';
  const now = opts.now ?? (() => Date.now());
  const lastPrices = new Map<string, Decimal>();
  const tickerListeners = new Set<(t: Ticker) => void>();
  const tradeListeners = new Set<(t: Trade) => void>();
  let state: PaperState | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  /** Runs `fn` alone (one operation at a time per adapter), with the state loaded. */
  function exclusive<T>(fn: (s: PaperState) => Promise<T> | T): Promise<T> {
    const run = queue.then(async () => {
      state ??= (await store.load(accountId)) ?? initialState();
      return fn(state);
    });
    queue = run.catch(() => undefined);
    return run;
  }

  function initialState(): PaperState {
    const balances: Record<string, Decimal> = {};
    for (const [currency, amount] of Object.entries(opts.startingBalances)) balances[currency] = dec.normalize(amount);
    return { version: 1, balances, orders: [], trades: [], positions: {}, realizedPnl: '0', seq: 0 };
  }

  const save = (s: PaperState) => store.save(accountId, s);

  function market(symbol: string): Market {
    const m = markets[symbol];
    if (!m) throw unprocessable(`paper: no ${marketType} market ${symbol}`, 'EXCHANGE_BAD_SYMBOL');
    return m;
  }

  async function currentPrice(symbol: string): Promise<Decimal> {
    const fromSource = await opts.prices?.getPrice(symbol);
    const price = fromSource ?? lastPrices.get(symbol);
    if (price === undefined) throw serviceUnavailable(`paper: no price known for ${symbol}`, 5, 'PAPER_NO_PRICE');
    return price;
  }

  const nextId = (s: PaperState, prefix: string) => {
    s.seq += 1;
    return `${prefix}-${s.seq}`;
  };

  function used(s: PaperState): Record<string, Decimal> {
    const out: Record<string, Decimal> = {};
    const add = (c: string, a: Decimal) => (out[c] = dec.add(out[c] ?? '0', a));
    for (const o of s.orders) if (o.status === 'open' && o.reserved) add(o.reserved.currency, o.reserved.amount);
    for (const [symbol, p] of Object.entries(s.positions)) {
      const m = markets[symbol];
      if (m && !dec.isZero(p.contracts)) add(m.settle ?? m.quote, marginFor(m, dec.abs(p.contracts), p.entryPrice));
    }
    return out;
  }

  const free = (s: PaperState, currency: string) => dec.sub(s.balances[currency] ?? '0', used(s)[currency] ?? '0');
  const notional = (m: Market, amount: Decimal, price: Decimal) => dec.mul(dec.mul(amount, m.contractSize ?? '1'), price);
  const marginFor = (m: Market, amount: Decimal, price: Decimal) => dec.div(notional(m, amount, price), leverage);
  const credit = (s: PaperState, currency: string, amount: Decimal) => {
    s.balances[currency] = dec.add(s.balances[currency] ?? '0', amount);
  };

  function insufficient(currency: string, need: Decimal, have: Decimal): never {
    throw unprocessable(`paper: insufficient ${currency}: needs ${need}, ${have} available`, 'EXCHANGE_INSUFFICIENT_FUNDS');
  }

  /** Checks funds and returns what a resting order must reserve. */
  function requiredFunds(s: PaperState, m: Market, req: CreateOrderRequest, price: Decimal): { currency: string; amount: Decimal } {
    const value = notional(m, req.amount, price);
    if (m.type === 'spot') {
      return req.side === 'buy'
        ? { currency: m.quote, amount: dec.add(value, dec.mul(value, feeRate)) }
        : { currency: m.base, amount: req.amount };
    }
    const settle = m.settle ?? m.quote;
    const position = s.positions[m.symbol]?.contracts ?? '0';
    const signed = req.side === 'buy' ? req.amount : dec.neg(req.amount);
    if (req.reduceOnly) {
      const reduces = !dec.isZero(position) && dec.lt(dec.mul(position, signed), '0') && dec.le(req.amount, dec.abs(position));
      if (!reduces) throw unprocessable(`paper: reduce-only order would not reduce the ${m.symbol} position`, 'EXCHANGE_INVALID_ORDER');
      return { currency: settle, amount: dec.mul(value, feeRate) };
    }
    return { currency: settle, amount: dec.add(dec.div(value, leverage), dec.mul(value, feeRate)) };
  }

  function fill(s: PaperState, order: PaperOrder, price: Decimal, takerOrMaker: 'taker' | 'maker'): void {
    const m = market(order.symbol);
    order.reserved = undefined;
    const cost = notional(m, order.amount, price);
    const fee = dec.mul(cost, feeRate);
    const settle = m.settle ?? m.quote;
    if (m.type === 'spot') {
      if (order.side === 'buy') {
        credit(s, m.quote, dec.neg(dec.add(cost, fee)));
        credit(s, m.base, order.amount);
      } else {
        credit(s, m.base, dec.neg(order.amount));
        credit(s, m.quote, dec.sub(cost, fee));
      }
      s.realizedPnl = dec.add(s.realizedPnl, applyToSpotBasis(s, m, order.side, order.amount, cost, fee));
    } else {
      const realized = applyToPosition(s, m, order.side, order.amount, price);
      credit(s, settle, dec.sub(realized, fee));
      s.realizedPnl = dec.add(s.realizedPnl, realized);
    }
    Object.assign(order, { status: 'closed', filled: order.amount, remaining: '0', cost, average: price, fee: { currency: m.quote, cost: fee } });
    const trade: Trade = {
      id: nextId(s, 'paper-trade'),
      orderId: order.id,
      clientOrderId: order.clientOrderId,
      symbol: order.symbol,
      side: order.side,
      price,
      amount: order.amount,
      cost,
      fee: { currency: m.quote, cost: fee },
      takerOrMaker,
      timestamp: now(),
    };
    s.trades.push(trade);
    for (const l of tradeListeners) l(trade);
  }

  /**
   * Average-cost bookkeeping for spot: buys raise the basis (fees included); sells realise (proceeds - fee) minus the
   * basis of what they sell. Coins the account started with have no basis and realise nothing.
   */
  function applyToSpotBasis(s: PaperState, m: Market, side: 'buy' | 'sell', amount: Decimal, cost: Decimal, fee: Decimal): Decimal {
    s.spotBasis ??= {};
    const basis = s.spotBasis[m.symbol] ?? { amount: '0', avgCost: '0' };
    if (side === 'buy') {
      const total = dec.add(basis.amount, amount);
      basis.avgCost = dec.div(dec.add(dec.mul(basis.amount, basis.avgCost), dec.add(cost, fee)), total);
      basis.amount = total;
      s.spotBasis[m.symbol] = basis;
      return '0';
    }
    const matched = dec.min(amount, basis.amount);
    if (dec.isZero(matched)) return '0';
    const proceeds = dec.mul(dec.sub(cost, fee), dec.div(matched, amount));
    const realized = dec.sub(proceeds, dec.mul(matched, basis.avgCost));
    basis.amount = dec.sub(basis.amount, matched);
    if (dec.isZero(basis.amount)) basis.avgCost = '0';
    s.spotBasis[m.symbol] = basis;
    return dec.round(realized, 12);
  }

  function applyToPosition(s: PaperState, m: Market, side: 'buy' | 'sell', amount: Decimal, price: Decimal): Decimal {
    const p = s.positions[m.symbol] ?? { contracts: '0', entryPrice: '0', realizedPnl: '0' };
    const signed = side === 'buy' ? amount : dec.neg(amount);
    let realized = '0';
    if (dec.isZero(p.contracts) || dec.gt(dec.mul(p.contracts, signed), '0')) {
      const size = dec.add(dec.abs(p.contracts), amount);
      p.entryPrice = dec.div(dec.add(dec.mul(dec.abs(p.contracts), p.entryPrice), dec.mul(amount, price)), size);
    } else {
      const closing = dec.min(amount, dec.abs(p.contracts));
      const direction = dec.gt(p.contracts, '0') ? '1' : '-1';
      realized = dec.mul(dec.mul(dec.sub(price, p.entryPrice), dec.mul(closing, m.contractSize ?? '1')), direction);
      const after = dec.add(p.contracts, signed);
      if (dec.isZero(after)) p.entryPrice = '0';
      else if (dec.gt(after, '0') !== dec.gt(p.contracts, '0')) p.entryPrice = price;
    }
    p.contracts = dec.add(p.contracts, signed);
    p.realizedPnl = dec.add(p.realizedPnl, realized);
    s.positions[m.symbol] = p;
    return realized;
  }

  const publicOrder = (o: PaperOrder): Order => {
    const { reserved: _reserved, ...order } = o;
    return structuredClone(order);
  };

  async function crossAndFill(symbol: string, low: Decimal, high: Decimal, last: Decimal): Promise<Order[]> {
    lastPrices.set(symbol, last);
    const ticker: Ticker = { symbol, last, timestamp: now() };
    for (const l of tickerListeners) l(ticker);
    return exclusive(async (s) => {
      const filled: Order[] = [];
      for (const o of s.orders) {
        if (o.symbol !== symbol || o.status !== 'open' || o.price === undefined) continue;
        const crosses = o.side === 'buy' ? dec.le(low, o.price) : dec.ge(high, o.price);
        if (!crosses) continue;
        fill(s, o, o.price, 'maker');
        filled.push(publicOrder(o));
      }
      if (filled.length > 0) await save(s);
      return filled;
    });
  }

  function stream<T>(listeners: Set<(item: T) => void>, accept: (item: T) => boolean): Stream<T> {
    const buffer: T[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const listener = (item: T) => {
      if (!accept(item)) return;
      buffer.push(item);
      wake?.();
    };
    listeners.add(listener);
    const stop = () => {
      done = true;
      listeners.delete(listener);
      wake?.();
    };
    async function* run(): AsyncGenerator<T> {
      try {
        while (!done) {
          if (buffer.length === 0) await new Promise<void>((r) => (wake = r));
          wake = undefined;
          while (buffer.length > 0) yield buffer.shift()!;
        }
      } finally {
        stop();
      }
    }
    const iterator = run();
    return { [Symbol.asyncIterator]: () => iterator, close: async () => stop() };
  }

  const adapter: PaperAdapter = {
    exchange: 'paper',
    marketType,

    loadMarkets: async () => ({ ...markets }),
    markets: () => ({ ...markets }),
    market: async (symbol) => market(symbol),

    fetchBalance: () =>
      exclusive((s) => {
        const held = used(s);
        const out: Balances = {};
        for (const [currency, total] of Object.entries(s.balances)) {
          const u = held[currency] ?? '0';
          if (dec.isZero(total) && dec.isZero(u)) continue;
          out[currency] = { total, used: u, free: dec.sub(total, u) };
        }
        return out;
      }),

    fetchPositions: (symbols) =>
      exclusive(async (s) => {
        const out: Position[] = [];
        for (const [symbol, p] of Object.entries(s.positions)) {
          if (dec.isZero(p.contracts) || (symbols && !symbols.includes(symbol))) continue;
          const m = market(symbol);
          const mark = (await opts.prices?.getPrice(symbol)) ?? lastPrices.get(symbol);
          const size = dec.abs(p.contracts);
          const long = dec.gt(p.contracts, '0');
          out.push({
            symbol,
            side: long ? 'long' : 'short',
            contracts: size,
            contractSize: m.contractSize ?? '1',
            entryPrice: p.entryPrice,
            markPrice: mark,
            unrealizedPnl: mark === undefined ? undefined : dec.mul(dec.mul(dec.sub(mark, p.entryPrice), dec.mul(size, m.contractSize ?? '1')), long ? '1' : '-1'),
            realizedPnl: p.realizedPnl,
            leverage,
            marginMode: 'cross',
          });
        }
        return out;
      }),

    async createOrder(req) {
      const m = market(req.symbol);
      const reference = req.type === 'market' ? await currentPrice(req.symbol) : req.price;
      return exclusive(async (s) => {
        const existing = s.orders.find((o) => o.clientOrderId === req.clientOrderId);
        if (existing) return publicOrder(existing); // idempotent retry
        validateOrder(m, req, reference);
        const execPrice =
          req.type === 'market'
            ? dec.mul(reference!, req.side === 'buy' ? dec.add('1', slippage) : dec.sub('1', slippage))
            : req.price!;
        const need = requiredFunds(s, m, req, execPrice);
        const have = free(s, need.currency);
        if (dec.lt(have, need.amount)) insufficient(need.currency, need.amount, have);
        const order: PaperOrder = {
          id: nextId(s, 'paper'),
          clientOrderId: req.clientOrderId,
          symbol: req.symbol,
          side: req.side,
          type: req.type,
          status: 'open',
          price: req.type === 'limit' ? req.price : undefined,
          amount: req.amount,
          filled: '0',
          remaining: req.amount,
          cost: '0',
          reduceOnly: req.reduceOnly,
          timestamp: now(),
          reserved: need,
        };
        s.orders.push(order);
        if (req.type === 'market') fill(s, order, execPrice, 'taker');
        await save(s);
        return publicOrder(order);
      });
    },

    cancelOrder: (id, symbol) =>
      exclusive(async (s) => {
        const order = s.orders.find((o) => o.id === id && o.symbol === symbol);
        if (!order) throw notFound('Order', id, 'EXCHANGE_ORDER_NOT_FOUND');
        if (order.status !== 'open') throw notFound('Open order', id, 'EXCHANGE_ORDER_NOT_FOUND');
        order.status = 'canceled';
        order.reserved = undefined;
        await save(s);
        return publicOrder(order);
      }),

    fetchOrder: (id, symbol) =>
      exclusive((s) => {
        const order = s.orders.find((o) => o.id === id && o.symbol === symbol);
        if (!order) throw notFound('Order', id, 'EXCHANGE_ORDER_NOT_FOUND');
        return publicOrder(order);
      }),

    fetchOrderByClientId: (clientOrderId, symbol) =>
      exclusive((s) => {
        const order = s.orders.find((o) => o.clientOrderId === clientOrderId && o.symbol === symbol);
        return order ? publicOrder(order) : null;
      }),

    fetchOpenOrders: (symbol) =>
      exclusive((s) => s.orders.filter((o) => o.status === 'open' && (!symbol || o.symbol === symbol)).map(publicOrder)),

    fetchMyTrades: (symbol, range = {}) =>
      exclusive((s) => {
        const trades = s.trades.filter((t) => t.symbol === symbol && (range.since === undefined || t.timestamp >= range.since));
        return structuredClone(range.limit === undefined ? trades : trades.slice(-range.limit));
      }),

    async fetchOHLCV(symbol, timeframe, range) {
      market(symbol);
      if (!opts.prices?.fetchOHLCV) throw unprocessable('paper: no candle source configured', 'EXCHANGE_NOT_SUPPORTED');
      return opts.prices.fetchOHLCV(symbol, timeframe, range);
    },

    async fetchTicker(symbol) {
      market(symbol);
      return { symbol, last: await currentPrice(symbol), timestamp: now() };
    },

    watchTicker: (symbol) => stream(tickerListeners, (t) => t.symbol === symbol),
    watchTrades: (symbol) => stream(tradeListeners, (t) => t.symbol === symbol),
    watchOHLCV() {
      const problem = unprocessable('paper: candle streams come from the market data feed', 'EXCHANGE_NOT_SUPPORTED');
      return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(problem) }), close: async () => undefined };
    },

    verifyCredentials: async () => ({ ok: true, exchange: 'paper', canTrade: true, canWithdraw: false }),

    onPrice: (symbol, price) => crossAndFill(symbol, price, price, price),
    onCandle: (symbol, candle) => crossAndFill(symbol, candle.low, candle.high, candle.close),
    realizedPnl: () => exclusive((s) => s.realizedPnl),

    async close() {
      await queue;
      tickerListeners.clear();
      tradeListeners.clear();
    },
  };
  return adapter;
}
