/**
 * The one interface every exchange implementation (ccxt-backed or paper) offers to the rest of the backend.
 *
 * Amounts, prices, costs and balances cross this boundary as decimal STRINGS ("0.001", "64250.5"), never as JS
 * numbers. For swap markets `amount` is in contracts, as on the exchange (see `Market.contractSize`).
 */
import { unprocessable } from '../../errors.js';
import { dec, isDecimal, isMultipleOf, type Decimal } from './decimal.js';

export type { Decimal } from './decimal.js';

export const EXCHANGE_IDS = ['binance', 'bitget', 'okx'] as const;
export type ExchangeId = (typeof EXCHANGE_IDS)[number];
export type MarketType = 'spot' | 'swap';
export type OrderSide = 'buy' | 'sell';
export type OrderType = 'market' | 'limit';
export type OrderStatus = 'open' | 'closed' | 'canceled' | 'expired' | 'rejected';

export interface MinMax {
  min?: Decimal;
  max?: Decimal;
}

export interface Market {
  /** Unified symbol: `BTC/USDT` (spot) or `BTC/USDT:USDT` (USDT-margined perpetual swap). */
  symbol: string;
  /** The exchange's own id, e.g. `BTCUSDT` or `BTC-USDT-SWAP`. */
  id: string;
  base: string;
  quote: string;
  settle?: string;
  type: MarketType;
  active: boolean;
  /** Base units per contract (swap only). */
  contractSize?: Decimal;
  /** Tick sizes: every amount must be a multiple of `amount`, every price a multiple of `price`. */
  precision: { amount?: Decimal; price?: Decimal };
  limits: { amount: MinMax; price: MinMax; cost: MinMax };
}

export interface BalanceEntry {
  free: Decimal;
  used: Decimal;
  total: Decimal;
}

/** Balances keyed by currency code (`USDT`, `BTC`); currencies with a zero total are left out. */
export type Balances = Record<string, BalanceEntry>;

export interface Position {
  symbol: string;
  side: 'long' | 'short';
  /** Open size in contracts (always positive; see `side`). */
  contracts: Decimal;
  contractSize?: Decimal;
  entryPrice?: Decimal;
  markPrice?: Decimal;
  unrealizedPnl?: Decimal;
  realizedPnl?: Decimal;
  leverage?: Decimal;
  marginMode?: 'cross' | 'isolated';
}

export interface Fee {
  currency: string;
  cost: Decimal;
}

export interface CreateOrderRequest {
  symbol: string;
  side: OrderSide;
  type: OrderType;
  amount: Decimal;
  /** Required for limit orders. */
  price?: Decimal;
  reduceOnly?: boolean;
  /**
   * Our id for the order; the exchange stores it, so after a timeout the order can be found again with
   * `fetchOrderByClientId`. Keep it short and alphanumeric (OKX: max 32 chars `[A-Za-z0-9]`).
   */
  clientOrderId: string;
}

export interface Order {
  id: string;
  clientOrderId?: string;
  symbol: string;
  side: OrderSide;
  type: OrderType;
  status: OrderStatus;
  price?: Decimal;
  /** Average fill price. */
  average?: Decimal;
  amount: Decimal;
  filled: Decimal;
  remaining: Decimal;
  cost: Decimal;
  fee?: Fee;
  reduceOnly?: boolean;
  timestamp?: number;
}

export interface Trade {
  id: string;
  orderId?: string;
  clientOrderId?: string;
  symbol: string;
  side: OrderSide;
  price: Decimal;
  amount: Decimal;
  cost: Decimal;
  fee?: Fee;
  takerOrMaker?: 'taker' | 'maker';
  timestamp: number;
}

export interface Candle {
  /** Open time, ms since epoch. */
  timestamp: number;
  open: Decimal;
  high: Decimal;
  low: Decimal;
  close: Decimal;
  volume: Decimal;
}

export interface Ticker {
  symbol: string;
  timestamp?: number;
  last?: Decimal;
  bid?: Decimal;
  ask?: Decimal;
  high?: Decimal;
  low?: Decimal;
  baseVolume?: Decimal;
  quoteVolume?: Decimal;
}

export interface FetchRange {
  since?: number;
  limit?: number;
}

/** What a signed call proved about the keys. `canWithdraw` is undefined when the exchange does not say. */
export interface CredentialsReport {
  ok: true;
  exchange: ExchangeId | 'paper';
  canTrade?: boolean;
  canWithdraw?: boolean;
  /** Exchange-specific permission names that were reported (e.g. OKX `read_only,trade`). */
  permissions?: string[];
}

/**
 * A live stream of updates. Iterate with `for await`; leaving the loop (break/return) or calling `close()` stops it.
 * A dropped connection is retried by the stream itself; other errors end the iteration by throwing.
 */
export interface Stream<T> extends AsyncIterable<T> {
  close(): Promise<void>;
}

export interface ExchangeAdapter {
  readonly exchange: ExchangeId | 'paper';
  readonly marketType: MarketType;

  /** Loads (or, with `reload`, reloads) the market list. Other calls load it on first use. */
  loadMarkets(reload?: boolean): Promise<Record<string, Market>>;
  /** Markets of this adapter's market type, keyed by unified symbol. Empty before `loadMarkets`. */
  markets(): Record<string, Market>;
  market(symbol: string): Promise<Market>;

  fetchBalance(): Promise<Balances>;
  fetchPositions(symbols?: string[]): Promise<Position[]>;

  createOrder(order: CreateOrderRequest): Promise<Order>;
  cancelOrder(id: string, symbol: string): Promise<Order>;
  fetchOrder(id: string, symbol: string): Promise<Order>;
  /** Finds an order by the client order id it was placed with; null when the exchange has no such order. */
  fetchOrderByClientId(clientOrderId: string, symbol: string): Promise<Order | null>;
  fetchOpenOrders(symbol?: string): Promise<Order[]>;
  fetchMyTrades(symbol: string, range?: FetchRange): Promise<Trade[]>;

  fetchOHLCV(symbol: string, timeframe: string, range?: FetchRange): Promise<Candle[]>;
  fetchTicker(symbol: string): Promise<Ticker>;

  watchTicker(symbol: string): Stream<Ticker>;
  watchTrades(symbol: string): Stream<Trade>;
  watchOHLCV(symbol: string, timeframe: string): Stream<Candle>;

  verifyCredentials(): Promise<CredentialsReport>;
  close(): Promise<void>;
}

/**
 * Checks an order against a market's tick sizes and limits before it is sent. Throws a 422 `ORDER_LIMIT_VIOLATION`
 * naming the limit (`amount.min`, `price.precision`, `cost.min`, ...). `referencePrice` is used for the cost check of
 * market orders (which carry no price).
 */
export function validateOrder(market: Market, order: CreateOrderRequest, referencePrice?: Decimal): void {
  const fail = (limit: string, detail: string, required?: Decimal) => {
    throw unprocessable(`${order.symbol}: ${detail}`, 'ORDER_LIMIT_VIOLATION', {
      extensions: { limit, symbol: order.symbol, ...(required === undefined ? {} : { required }) },
    });
  };

  if (!isDecimal(order.amount) || !dec.gt(order.amount, '0')) fail('amount', `amount ${order.amount} must be a positive decimal`);
  if (order.type === 'limit' && order.price === undefined) fail('price', 'a limit order needs a price');
  if (order.price !== undefined && (!isDecimal(order.price) || !dec.gt(order.price, '0'))) {
    fail('price', `price ${order.price} must be a positive decimal`);
  }

  const { precision, limits } = market;
  if (precision.amount && !isMultipleOf(order.amount, precision.amount)) {
    fail('amount.precision', `amount ${order.amount} is not a multiple of the step size ${precision.amount}`, precision.amount);
  }
  if (limits.amount.min && dec.lt(order.amount, limits.amount.min)) {
    fail('amount.min', `amount ${order.amount} is below the minimum amount ${limits.amount.min}`, limits.amount.min);
  }
  if (limits.amount.max && dec.gt(order.amount, limits.amount.max)) {
    fail('amount.max', `amount ${order.amount} is above the maximum amount ${limits.amount.max}`, limits.amount.max);
  }

  if (order.price !== undefined) {
    if (precision.price && !isMultipleOf(order.price, precision.price)) {
      fail('price.precision', `price ${order.price} is not a multiple of the tick size ${precision.price}`, precision.price);
    }
    if (limits.price.min && dec.lt(order.price, limits.price.min)) {
      fail('price.min', `price ${order.price} is below the minimum price ${limits.price.min}`, limits.price.min);
    }
    if (limits.price.max && dec.gt(order.price, limits.price.max)) {
      fail('price.max', `price ${order.price} is above the maximum price ${limits.price.max}`, limits.price.max);
    }
  }

  const price = order.type === 'limit' ? order.price : (referencePrice ?? order.price);
  if (price !== undefined) {
    const cost = dec.mul(dec.mul(order.amount, market.contractSize ?? '1'), price);
    if (limits.cost.min && dec.lt(cost, limits.cost.min)) {
      fail('cost.min', `order value ${cost} ${market.quote} is below the minimum notional ${limits.cost.min}`, limits.cost.min);
    }
    if (limits.cost.max && dec.gt(cost, limits.cost.max)) {
      fail('cost.max', `order value ${cost} ${market.quote} is above the maximum notional ${limits.cost.max}`, limits.cost.max);
    }
  }
}
