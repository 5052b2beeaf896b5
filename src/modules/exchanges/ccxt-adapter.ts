/**
 * ExchangeAdapter over ccxt (binance, bitget, okx), spot or USDT-margined perpetual swaps. One ccxt.pro client for
 * REST calls, a second one (created on the first stream) for WebSocket streams. Every ccxt error is mapped to an
 * HttpProblem (see errors.ts).
 */
import ccxt, { errors as ccxtErrors, type Exchange, type Market as CcxtMarket } from 'ccxt';
import { mapExchangeError } from './errors.js';
import { dec, toDecimal, toNumber } from './decimal.js';
import { applyUrlOverrides, type UrlOverride } from './urls.js';
import type {
  Balances,
  Candle,
  CreateOrderRequest,
  CredentialsReport,
  ExchangeAdapter,
  ExchangeId,
  FetchRange,
  Market,
  MarketType,
  Order,
  OrderStatus,
  Position,
  Stream,
  Ticker,
  Trade,
} from './types.js';

export { applyUrlOverrides, parseExchangeUrls, rebaseUrl } from './urls.js';
export type { ExchangeUrls, UrlOverride } from './urls.js';

export interface ExchangeCredentials {
  apiKey: string;
  secret: string;
  /** OKX and Bitget only. */
  passphrase?: string;
}

export interface CcxtAdapterOptions {
  exchange: ExchangeId;
  credentials?: ExchangeCredentials;
  /** Use the exchange's testnet/demo URLs (`setSandboxMode(true)`); URL overrides are applied after that. */
  sandbox?: boolean;
  marketType: MarketType;
  urls?: UrlOverride;
  timeoutMs?: number;
  /** ccxt's client-side throttle; on by default. */
  enableRateLimit?: boolean;
}

type Dict = Record<string, any>;

const WS_RETRY_LIMIT = 5;
const WS_RETRY_BASE_MS = 250;

export function createCcxtAdapter(opts: CcxtAdapterOptions): ExchangeAdapter {
  const { exchange: id, marketType, credentials } = opts;
  const client = newClient(opts);
  const secrets = [credentials?.apiKey, credentials?.secret, credentials?.passphrase];
  let closed = false;

  /** Runs one ccxt call and maps its failure to an HttpProblem. */
  async function call<T>(operation: string, fn: () => Promise<T>, clientOrderId?: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const headers = (client.last_response_headers ?? {}) as Record<string, string>;
      const retryAfterHeader = headers['retry-after'] ?? headers['Retry-After'];
      throw mapExchangeError(err, { exchange: id, operation, secrets, retryAfterHeader, clientOrderId });
    }
  }

  const ensureMarkets = () => call('loadMarkets', () => client.loadMarkets());

  let normalized: { source: unknown; markets: Record<string, Market> } | undefined;

  /** Our market type's markets, normalized once per ccxt market load. */
  function ownMarkets(): Record<string, Market> {
    const source = client.markets;
    if (normalized && normalized.source === source) return { ...normalized.markets };
    const markets: Record<string, Market> = {};
    for (const m of Object.values(source ?? {})) {
      const market = toMarket(m);
      if (market && market.type === marketType) markets[market.symbol] = market;
    }
    normalized = { source, markets };
    return { ...markets };
  }

  async function market(symbol: string): Promise<Market> {
    await ensureMarkets();
    const found = ownMarkets()[symbol];
    if (!found) {
      throw mapExchangeError(new ccxtErrors.BadSymbol(`${id} has no ${marketType} market ${symbol}`), {
        exchange: id,
        operation: 'market',
      });
    }
    return found;
  }

  async function fetchOrderByClientId(clientOrderId: string, symbol: string): Promise<Order | null> {
    await ensureMarkets();
    try {
      const order = await call('fetchOrderByClientId', () =>
        client.fetchOrder(undefined as unknown as string, symbol, { clientOrderId }),
      );
      return toOrder(order);
    } catch (err) {
      if ((err as { code?: string }).code === 'EXCHANGE_ORDER_NOT_FOUND') return null;
      throw err;
    }
  }

  /**
   * The WebSocket client: a second ccxt.pro instance sharing the REST client's markets, with ccxt's throttle off.
   * With the throttle on, ccxt 4.5 sends a queued subscription without handling its failure, so a subscription
   * racing a dropped connection ends in an unhandled rejection (which would take the process down).
   */
  let wsClient: Promise<Exchange> | undefined;
  function ws(): Promise<Exchange> {
    wsClient ??= (async () => {
      await ensureMarkets();
      const c = newClient({ ...opts, enableRateLimit: false });
      c.setMarkets(client.markets, client.currencies as never); // (ccxt types the 2nd argument as `undefined`)
      // ccxt.pro only builds its ws:// agent lazily; without this a plain ws:// URL (our loopback fake) fails.
      await c.loadHttpProxyAgent();
      return c;
    })().catch((err) => {
      wsClient = undefined; // let the next stream try again
      throw err;
    });
    return wsClient;
  }

  /**
   * Turns repeated `watch*` calls into an async iterator. `close()` (or leaving the for-await loop) ends it at once,
   * even while a watch call is pending.
   */
  function stream<T>(operation: string, watch: (c: Exchange) => Promise<T[]>): Stream<T> {
    const STOP = Symbol('stop');
    let stop!: () => void;
    const stopped = new Promise<typeof STOP>((resolve) => (stop = () => resolve(STOP)));
    let isStopped = false;
    const until = <V>(p: Promise<V>) => {
      p.catch(() => undefined); // a watch abandoned by close() may still reject later
      return Promise.race([p, stopped]);
    };

    async function* run(): AsyncGenerator<T> {
      const c = await until(ws());
      if (c === STOP) return;
      let failures = 0;
      while (!isStopped && !closed) {
        let batch: T[] | typeof STOP;
        try {
          batch = await until(watch(c));
          failures = 0;
        } catch (err) {
          if (isStopped || closed) return;
          // ccxt.pro does not reconnect by itself: the next watch* call does. Retry network drops a few times.
          if (err instanceof ccxtErrors.NetworkError && failures < WS_RETRY_LIMIT) {
            failures += 1;
            await until(new Promise((r) => setTimeout(r, WS_RETRY_BASE_MS * 2 ** (failures - 1))));
            continue;
          }
          throw mapExchangeError(err, { exchange: id, operation, secrets });
        }
        if (batch === STOP) return;
        for (const item of batch) yield item;
      }
    }

    const iterator = run();
    return {
      [Symbol.asyncIterator]: () => iterator,
      async close() {
        isStopped = true;
        stop();
        await iterator.return(undefined);
      },
    };
  }

  const adapter: ExchangeAdapter = {
    exchange: id,
    marketType,

    async loadMarkets(reload = false) {
      await call('loadMarkets', () => client.loadMarkets(reload));
      return ownMarkets();
    },
    markets: ownMarkets,
    market,

    async fetchBalance() {
      await ensureMarkets();
      const balance = await call('fetchBalance', () => client.fetchBalance());
      return toBalances(balance as unknown as Dict);
    },

    async fetchPositions(symbols) {
      if (marketType !== 'swap') return [];
      await ensureMarkets();
      const positions = await call('fetchPositions', () => client.fetchPositions(symbols));
      return positions.map(toPosition).filter((p): p is Position => p !== null);
    },

    async createOrder(req: CreateOrderRequest) {
      await market(req.symbol);
      const params: Dict = { clientOrderId: req.clientOrderId };
      if (req.reduceOnly) params.reduceOnly = true;
      let price = req.price === undefined ? undefined : toNumber(req.price);
      if (id === 'bitget' && marketType === 'spot' && req.type === 'market' && req.side === 'buy' && price === undefined) {
        // Bitget sizes spot market buys in quote currency: ccxt needs a price to turn the amount into a cost.
        const ticker = await call('fetchTicker', () => client.fetchTicker(req.symbol));
        price = ticker.last ?? undefined;
      }
      const order = await call(
        'createOrder',
        () => client.createOrder(req.symbol, req.type, req.side, toNumber(req.amount), price, params),
        req.clientOrderId,
      );
      if (order.status === undefined) {
        // OKX and Bitget acknowledge with ids only: read the order back for its state and fills. If that read fails,
        // the order still exists: report the acknowledgement rather than an error.
        const placed = await call('fetchOrder', () => client.fetchOrder(String(order.id), req.symbol)).catch(() => undefined);
        if (placed) return toOrder(placed);
      }
      const normalized = toOrder(order);
      return {
        ...normalized,
        clientOrderId: normalized.clientOrderId ?? req.clientOrderId,
        symbol: normalized.symbol || req.symbol,
        side: normalized.side ?? req.side,
        type: normalized.type ?? req.type,
        amount: order.amount === undefined ? req.amount : normalized.amount,
        price: normalized.price ?? req.price,
      };
    },

    async cancelOrder(orderId, symbol) {
      await ensureMarkets();
      const order = await call('cancelOrder', () => client.cancelOrder(orderId, symbol));
      return toOrder(order);
    },

    async fetchOrder(orderId, symbol) {
      await ensureMarkets();
      return toOrder(await call('fetchOrder', () => client.fetchOrder(orderId, symbol)));
    },

    fetchOrderByClientId,

    async fetchOpenOrders(symbol) {
      await ensureMarkets();
      const orders = await call('fetchOpenOrders', () => client.fetchOpenOrders(symbol));
      return orders.map(toOrder);
    },

    async fetchMyTrades(symbol, range: FetchRange = {}) {
      await ensureMarkets();
      const trades = await call('fetchMyTrades', () => client.fetchMyTrades(symbol, range.since, range.limit));
      return trades.map(toTrade);
    },

    async fetchOHLCV(symbol, timeframe, range: FetchRange = {}) {
      await ensureMarkets();
      const rows = await call('fetchOHLCV', () => client.fetchOHLCV(symbol, timeframe, range.since, range.limit));
      return rows.map(toCandle);
    },

    async fetchTicker(symbol) {
      await ensureMarkets();
      return toTicker(await call('fetchTicker', () => client.fetchTicker(symbol)));
    },

    watchTicker(symbol) {
      return stream('watchTicker', async (c) => [toTicker(await c.watchTicker(symbol))]);
    },

    watchTrades(symbol) {
      return stream('watchTrades', async (c) => (await c.watchTrades(symbol)).map(toTrade));
    },

    watchOHLCV(symbol, timeframe) {
      return stream('watchOHLCV', async (c) => (await c.watchOHLCV(symbol, timeframe)).map(toCandle));
    },

    verifyCredentials: () => call('verifyCredentials', () => verify(client, id, marketType)),

    async close() {
      if (closed) return;
      closed = true;
      const streaming = await wsClient?.catch(() => undefined);
      await Promise.all([client.close(), streaming?.close()].map((p) => p?.catch(() => undefined)));
    },
  };
  return adapter;
}

/**
 * A signed call proving the keys work. Binance reports `canWithdraw` from `sapi/v1/account/apiRestrictions`
 * (`enableWithdrawals`); OKX from `account/config` `perm`; Bitget from what `spot/account/info` lists.
 * Throws a 422 `EXCHANGE_AUTH_FAILED` problem when the exchange rejects the keys.
 */
export function verifyCredentials(adapter: ExchangeAdapter): Promise<CredentialsReport> {
  return adapter.verifyCredentials();
}

function newClient(opts: CcxtAdapterOptions): Exchange {
  const ExchangeClass = (ccxt.pro as unknown as Record<string, new (config: Dict) => Exchange>)[opts.exchange];
  if (!ExchangeClass) throw new Error(`unsupported exchange ${opts.exchange}`);
  // defaultType picks the account / market family of calls without a symbol (balance, positions, open orders).
  const options: Dict = { defaultType: opts.marketType };
  // Load only the market family we trade: spares the exchangeInfo/instruments calls for futures, options, etc.
  if (opts.exchange === 'binance') options.fetchMarkets = { types: opts.marketType === 'spot' ? ['spot'] : ['linear'] };
  if (opts.exchange === 'okx' || opts.exchange === 'bitget') options.fetchMarkets = { types: [opts.marketType] };
  const client = new ExchangeClass({
    apiKey: opts.credentials?.apiKey,
    secret: opts.credentials?.secret,
    password: opts.credentials?.passphrase,
    timeout: opts.timeoutMs ?? 10_000,
    enableRateLimit: opts.enableRateLimit ?? true,
    options,
  });
  if (opts.sandbox) client.setSandboxMode(true);
  if (opts.urls) applyUrlOverrides(client as unknown as Parameters<typeof applyUrlOverrides>[0], opts.urls);
  return client;
}

/** A signed call proving the keys work, plus what the exchange tells about their permissions. */
async function verify(client: Exchange, id: ExchangeId, marketType: MarketType): Promise<CredentialsReport> {
  const c = client as unknown as Record<string, (params?: Dict) => Promise<any>>;
  if (id === 'binance') {
    const r: Dict = await c.sapiGetAccountApiRestrictions!();
    const permissions = Object.keys(r).filter((k) => k.startsWith('enable') && r[k] === true);
    return {
      ok: true,
      exchange: id,
      canTrade: marketType === 'spot' ? r.enableSpotAndMarginTrading === true : r.enableFutures === true,
      canWithdraw: r.enableWithdrawals === true,
      permissions,
    };
  }
  if (id === 'okx') {
    const r: Dict = await c.privateGetAccountConfig!();
    const perm = String(r?.data?.[0]?.perm ?? '');
    const permissions = perm.split(',').filter(Boolean);
    return {
      ok: true,
      exchange: id,
      canTrade: permissions.includes('trade'),
      canWithdraw: permissions.includes('withdraw'),
      permissions,
    };
  }
  const r: Dict = await c.privateSpotGetV2SpotAccountInfo!();
  const permissions: string[] = Array.isArray(r?.data?.authorities) ? r.data.authorities.map(String) : [];
  return {
    ok: true,
    exchange: id,
    canTrade: permissions.includes('trade'),
    canWithdraw: permissions.includes('withdraw'),
    permissions,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// ccxt structures -> our normalized types (numbers become exact decimal strings)

const d = toDecimal;

function toMarket(m: CcxtMarket): Market | null {
  if (!m || (m.type !== 'spot' && m.type !== 'swap')) return null;
  if (m.type === 'swap' && !m.linear) return null;
  return {
    symbol: m.symbol,
    id: String(m.id),
    base: m.base,
    quote: m.quote,
    settle: m.settle ?? undefined,
    type: m.type,
    active: m.active !== false,
    contractSize: m.type === 'swap' ? d(m.contractSize) ?? '1' : undefined,
    precision: { amount: d(m.precision?.amount), price: d(m.precision?.price) },
    limits: {
      amount: { min: d(m.limits?.amount?.min), max: d(m.limits?.amount?.max) },
      price: { min: d(m.limits?.price?.min), max: d(m.limits?.price?.max) },
      cost: { min: d(m.limits?.cost?.min), max: d(m.limits?.cost?.max) },
    },
  };
}

function toBalances(balance: Dict): Balances {
  const out: Balances = {};
  const totals = (balance.total ?? {}) as Dict;
  for (const code of Object.keys(totals)) {
    const entry = (balance[code] ?? {}) as Dict;
    const free = d(entry.free) ?? '0';
    const used = d(entry.used) ?? '0';
    const total = d(entry.total) ?? dec.add(free, used);
    if (dec.isZero(total) && dec.isZero(free)) continue;
    out[code] = { free, used, total };
  }
  return out;
}

const STATUS: Record<string, OrderStatus> = {
  open: 'open',
  closed: 'closed',
  canceled: 'canceled',
  cancelled: 'canceled',
  expired: 'expired',
  rejected: 'rejected',
};

function toOrder(o: Dict): Order {
  const amount = d(o.amount) ?? '0';
  const filled = d(o.filled) ?? '0';
  return {
    id: String(o.id),
    clientOrderId: o.clientOrderId ?? undefined,
    symbol: o.symbol,
    side: o.side,
    type: o.type === 'market' ? 'market' : 'limit',
    status: STATUS[String(o.status)] ?? 'open',
    price: d(o.price),
    average: d(o.average),
    amount,
    filled,
    remaining: d(o.remaining) ?? dec.sub(amount, filled),
    cost: d(o.cost) ?? '0',
    fee: o.fee?.currency && o.fee?.cost !== undefined ? { currency: o.fee.currency, cost: d(o.fee.cost) ?? '0' } : undefined,
    reduceOnly: o.reduceOnly ?? undefined,
    timestamp: o.timestamp ?? undefined,
  };
}

function toTrade(t: Dict): Trade {
  const price = d(t.price) ?? '0';
  const amount = d(t.amount) ?? '0';
  return {
    id: String(t.id),
    orderId: t.order ?? undefined,
    clientOrderId: t.clientOrderId ?? undefined,
    symbol: t.symbol,
    side: t.side,
    price,
    amount,
    cost: d(t.cost) ?? dec.mul(price, amount),
    fee: t.fee?.currency && t.fee?.cost !== undefined ? { currency: t.fee.currency, cost: d(t.fee.cost) ?? '0' } : undefined,
    takerOrMaker: t.takerOrMaker ?? undefined,
    timestamp: t.timestamp,
  };
}

function toPosition(p: Dict): Position | null {
  const contracts = d(p.contracts);
  if (!contracts || dec.isZero(contracts) || (p.side !== 'long' && p.side !== 'short')) return null;
  return {
    symbol: p.symbol,
    side: p.side,
    contracts: dec.abs(contracts),
    contractSize: d(p.contractSize),
    entryPrice: d(p.entryPrice),
    markPrice: d(p.markPrice),
    unrealizedPnl: d(p.unrealizedPnl),
    realizedPnl: d(p.realizedPnl),
    leverage: d(p.leverage),
    marginMode: p.marginMode === 'isolated' || p.marginMode === 'cross' ? p.marginMode : undefined,
  };
}

function toCandle(row: Array<number | undefined>): Candle {
  const [timestamp, open, high, low, close, volume] = row;
  return {
    timestamp: timestamp ?? 0,
    open: d(open) ?? '0',
    high: d(high) ?? '0',
    low: d(low) ?? '0',
    close: d(close) ?? '0',
    volume: d(volume) ?? '0',
  };
}

function toTicker(t: Dict): Ticker {
  return {
    symbol: t.symbol,
    timestamp: t.timestamp ?? undefined,
    last: d(t.last),
    bid: d(t.bid),
    ask: d(t.ask),
    high: d(t.high),
    low: d(t.low),
    baseVolume: d(t.baseVolume),
    quoteVolume: d(t.quoteVolume),
  };
}

