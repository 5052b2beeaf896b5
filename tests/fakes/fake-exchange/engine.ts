/**
 * Exchange-neutral matching engine of the fake exchange: markets, balances, orders, fills, positions, candles.
 * The wire dialects (binance.ts, okx.ts, bitget.ts) translate requests to these calls and results to real formats.
 * All quantities are decimal strings; swap amounts are in contracts.
 */
import { Precise } from 'ccxt';

export const D = {
  add: (a: string, b: string) => Precise.stringAdd(a, b) ?? '0',
  sub: (a: string, b: string) => Precise.stringSub(a, b) ?? '0',
  mul: (a: string, b: string) => Precise.stringMul(a, b) ?? '0',
  div: (a: string, b: string) => Precise.stringDiv(a, b, 12) ?? '0',
  gt: (a: string, b: string) => Precise.stringGt(a, b),
  ge: (a: string, b: string) => Precise.stringGe(a, b),
  lt: (a: string, b: string) => Precise.stringLt(a, b),
  le: (a: string, b: string) => Precise.stringLe(a, b),
  eq: (a: string, b: string) => Precise.stringEq(a, b),
  abs: (a: string) => Precise.stringAbs(a) ?? '0',
  neg: (a: string) => Precise.stringNeg(a) ?? '0',
  mod: (a: string, b: string) => Precise.stringMod(a, b) ?? '0',
  norm: (a: string) => Precise.stringAdd(a, '0') ?? '0',
};

export type Side = 'buy' | 'sell';
export type Kind = 'spot' | 'swap';

export interface FakeMarket {
  /** Unified symbol, e.g. BTC/USDT or BTC/USDT:USDT. */
  symbol: string;
  base: string;
  quote: string;
  type: Kind;
  /** Base units per contract (swap). */
  contractSize: string;
  tickSize: string;
  stepSize: string;
  minQty: string;
  maxQty: string;
  minNotional: string;
}

export interface FakeOrder {
  id: string;
  clientOrderId: string;
  symbol: string;
  side: Side;
  type: 'market' | 'limit';
  price?: string;
  amount: string;
  filled: string;
  /** Quote value filled. */
  cost: string;
  status: 'open' | 'filled' | 'canceled';
  reduceOnly: boolean;
  fee: string;
  feeCurrency: string;
  createdAt: number;
  updatedAt: number;
}

export interface FakeFill {
  id: string;
  orderId: string;
  clientOrderId: string;
  symbol: string;
  side: Side;
  price: string;
  amount: string;
  cost: string;
  fee: string;
  feeCurrency: string;
  maker: boolean;
  realizedPnl: string;
  timestamp: number;
}

export interface FakePosition {
  symbol: string;
  /** Signed size in contracts: > 0 long, < 0 short. */
  contracts: string;
  entryPrice: string;
  realizedPnl: string;
  leverage: string;
}

export interface BalanceRow {
  free: string;
  locked: string;
}

export type RejectKind =
  | 'badSymbol'
  | 'minQty'
  | 'maxQty'
  | 'stepSize'
  | 'tickSize'
  | 'minNotional'
  | 'insufficient'
  | 'duplicate'
  | 'notFound'
  | 'badParam';

/** A business rejection; each dialect renders it as that exchange's own error body. */
export class Rejection extends Error {
  constructor(
    readonly kind: RejectKind,
    message: string,
  ) {
    super(message);
  }
}

export interface PlaceOrder {
  symbol: string;
  side: Side;
  type: 'market' | 'limit';
  amount: string;
  price?: string;
  clientOrderId?: string;
  reduceOnly?: boolean;
}

export type LimitMode = 'auto' | 'rest' | 'fill';

export const DEFAULT_MARKETS: FakeMarket[] = [
  { symbol: 'BTC/USDT', base: 'BTC', quote: 'USDT', type: 'spot', contractSize: '1', tickSize: '0.01', stepSize: '0.00001', minQty: '0.00001', maxQty: '9000', minNotional: '5' },
  { symbol: 'ETH/USDT', base: 'ETH', quote: 'USDT', type: 'spot', contractSize: '1', tickSize: '0.01', stepSize: '0.0001', minQty: '0.0001', maxQty: '9000', minNotional: '5' },
  { symbol: 'BTC/USDT:USDT', base: 'BTC', quote: 'USDT', type: 'swap', contractSize: '1', tickSize: '0.1', stepSize: '0.001', minQty: '0.001', maxQty: '1000', minNotional: '5' },
  { symbol: 'ETH/USDT:USDT', base: 'ETH', quote: 'USDT', type: 'swap', contractSize: '1', tickSize: '0.01', stepSize: '0.001', minQty: '0.001', maxQty: '10000', minNotional: '5' },
];

export interface EngineOptions {
  markets?: FakeMarket[];
  takerFee?: string;
  makerFee?: string;
  leverage?: string;
  /** Clock in ms; tests may freeze it. */
  now?: () => number;
  /** One wallet for spot and swap (OKX unified account); the default keeps separate spot and futures wallets. */
  unifiedAccount?: boolean;
}

type Listener = (event: EngineEvent) => void;
export type EngineEvent =
  | { type: 'price'; symbol: string; price: string }
  | { type: 'fill'; fill: FakeFill }
  | { type: 'order'; order: FakeOrder };

export class Engine {
  readonly markets: Map<string, FakeMarket>;
  readonly prices = new Map<string, string>();
  readonly balances: Record<Kind, Map<string, BalanceRow>> = { spot: new Map(), swap: new Map() };
  readonly orders: FakeOrder[] = [];
  readonly fills: FakeFill[] = [];
  readonly positions = new Map<string, FakePosition>();
  readonly candles = new Map<string, Array<[number, string, string, string, string, string]>>();
  limitMode: LimitMode = 'auto';
  takerFee: string;
  makerFee: string;
  leverage: string;
  now: () => number;
  readonly unifiedAccount: boolean;
  private seq = 1000;
  private listeners = new Set<Listener>();

  constructor(opts: EngineOptions = {}) {
    this.markets = new Map((opts.markets ?? DEFAULT_MARKETS).map((m) => [m.symbol, m]));
    this.takerFee = opts.takerFee ?? '0.001';
    this.makerFee = opts.makerFee ?? '0.0008';
    this.leverage = opts.leverage ?? '10';
    this.now = opts.now ?? (() => Date.now());
    this.unifiedAccount = opts.unifiedAccount ?? false;
    for (const m of this.markets.values()) this.prices.set(m.symbol, m.base === 'BTC' ? '50000' : '3000');
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: EngineEvent): void {
    for (const l of this.listeners) l(event);
  }

  nextId(): string {
    this.seq += 1;
    return String(this.seq);
  }

  market(symbol: string): FakeMarket {
    const m = this.markets.get(symbol);
    if (!m) throw new Rejection('badSymbol', `unknown symbol ${symbol}`);
    return m;
  }

  // ---- scripting ----------------------------------------------------------------------------------------------

  setBalance(asset: string, free: string, kind: Kind = 'spot'): void {
    const row = this.balance(kind, asset);
    row.free = D.norm(free);
  }

  balance(kind: Kind, asset: string): BalanceRow {
    if (this.unifiedAccount) kind = 'spot';
    let row = this.balances[kind].get(asset);
    if (!row) {
      row = { free: '0', locked: '0' };
      this.balances[kind].set(asset, row);
    }
    return row;
  }

  price(symbol: string): string {
    const p = this.prices.get(symbol);
    if (p === undefined) throw new Rejection('badSymbol', `no price for ${symbol}`);
    return p;
  }

  /** Sets the last price; resting limit orders that it crosses fill (unless limitMode is 'rest'). */
  setPrice(symbol: string, price: string): void {
    this.market(symbol);
    this.prices.set(symbol, D.norm(price));
    this.emit({ type: 'price', symbol, price });
    if (this.limitMode === 'rest') return;
    for (const order of this.orders) {
      if (order.symbol !== symbol || order.status !== 'open' || order.price === undefined) continue;
      const crosses = order.side === 'buy' ? D.le(price, order.price) : D.ge(price, order.price);
      if (crosses) this.fill(order, order.price, true);
    }
  }

  /** Candles for a symbol, oldest first: [openTimeMs, open, high, low, close, volume]. Generated when not set. */
  ohlcv(symbol: string, timeframeMs: number, since: number | undefined, limit: number): Array<[number, string, string, string, string, string]> {
    const stored = this.candles.get(symbol);
    // Without `since` an exchange answers the most recent candles (the one still forming last).
    if (stored) return since === undefined ? stored.slice(-limit) : stored.filter((c) => c[0] >= since).slice(0, limit);
    const last = this.price(symbol);
    const end = Math.floor(this.now() / timeframeMs) * timeframeMs;
    const start = since !== undefined ? Math.ceil(since / timeframeMs) * timeframeMs : end - (limit - 1) * timeframeMs;
    const rows: Array<[number, string, string, string, string, string]> = [];
    for (let t = start, i = 0; t <= end && rows.length < limit; t += timeframeMs, i++) {
      const wobble = String((i % 5) - 2);
      const open = D.add(last, wobble);
      const close = t === end ? last : D.add(last, String(((i + 1) % 5) - 2));
      const high = D.add(Precise.stringMax(open, close) ?? open, '3');
      const low = D.sub(Precise.stringMin(open, close) ?? open, '3');
      rows.push([t, open, high, low, close, String(10 + i)]);
    }
    return rows;
  }

  // ---- trading --------------------------------------------------------------------------------------------------

  findOrder(symbol: string | undefined, id?: string, clientOrderId?: string): FakeOrder {
    const order = this.orders.find(
      (o) => (symbol === undefined || o.symbol === symbol) && (id ? o.id === id : o.clientOrderId === clientOrderId),
    );
    if (!order) throw new Rejection('notFound', 'Order does not exist.');
    return order;
  }

  openOrders(symbol?: string): FakeOrder[] {
    return this.orders.filter((o) => o.status === 'open' && (symbol === undefined || o.symbol === symbol));
  }

  place(req: PlaceOrder): FakeOrder {
    const m = this.market(req.symbol);
    const amount = D.norm(req.amount);
    if (!(D.gt(amount, '0'))) throw new Rejection('badParam', 'amount must be positive');
    if (req.type === 'limit' && req.price === undefined) throw new Rejection('badParam', 'price required for limit orders');
    if (D.lt(amount, m.minQty)) throw new Rejection('minQty', `amount ${amount} below minimum ${m.minQty}`);
    if (D.gt(amount, m.maxQty)) throw new Rejection('maxQty', `amount ${amount} above maximum ${m.maxQty}`);
    if (!D.eq(D.mod(amount, m.stepSize), '0')) throw new Rejection('stepSize', `amount ${amount} not a multiple of ${m.stepSize}`);
    if (req.price !== undefined && !D.eq(D.mod(req.price, m.tickSize), '0')) {
      throw new Rejection('tickSize', `price ${req.price} not a multiple of ${m.tickSize}`);
    }
    const refPrice = req.type === 'limit' ? req.price! : this.price(m.symbol);
    const notional = D.mul(D.mul(amount, m.contractSize), refPrice);
    if (D.lt(notional, m.minNotional)) throw new Rejection('minNotional', `notional ${notional} below ${m.minNotional}`);
    const clientOrderId = req.clientOrderId ?? `fake${this.nextId()}`;
    if (this.orders.some((o) => o.clientOrderId === clientOrderId)) {
      throw new Rejection('duplicate', `duplicate client order id ${clientOrderId}`);
    }

    this.reserve(m, req.side, amount, refPrice, req.reduceOnly ?? false);
    const now = this.now();
    const order: FakeOrder = {
      id: this.nextId(),
      clientOrderId,
      symbol: m.symbol,
      side: req.side,
      type: req.type,
      price: req.type === 'limit' ? D.norm(req.price!) : undefined,
      amount,
      filled: '0',
      cost: '0',
      status: 'open',
      reduceOnly: req.reduceOnly ?? false,
      fee: '0',
      feeCurrency: m.quote,
      createdAt: now,
      updatedAt: now,
    };
    this.orders.push(order);

    const last = this.price(m.symbol);
    if (req.type === 'market') {
      this.fill(order, last, false);
    } else if (this.limitMode === 'fill') {
      this.fill(order, order.price!, false);
    } else if (this.limitMode === 'auto') {
      const marketable = req.side === 'buy' ? D.ge(order.price!, last) : D.le(order.price!, last);
      if (marketable) this.fill(order, last, false);
    }
    this.emit({ type: 'order', order });
    return order;
  }

  cancel(symbol: string | undefined, id?: string, clientOrderId?: string): FakeOrder {
    const order = this.findOrder(symbol, id, clientOrderId);
    if (order.status !== 'open') throw new Rejection('notFound', 'Unknown order sent.');
    const m = this.market(order.symbol);
    this.release(m, order.side, D.sub(order.amount, order.filled), order.price!, order.reduceOnly);
    order.status = 'canceled';
    order.updatedAt = this.now();
    this.emit({ type: 'order', order });
    return order;
  }

  /** Funds a new order needs: spot buy locks quote, spot sell locks base, swap locks initial margin. */
  private reserve(m: FakeMarket, side: Side, amount: string, price: string, reduceOnly: boolean): void {
    if (m.type === 'spot') {
      const [asset, need] = side === 'buy' ? [m.quote, D.mul(D.mul(amount, price), D.add('1', this.takerFee))] : [m.base, amount];
      const row = this.balance('spot', asset);
      if (D.lt(row.free, need)) throw new Rejection('insufficient', `insufficient ${asset}: need ${need}, have ${row.free}`);
      row.free = D.sub(row.free, need);
      row.locked = D.add(row.locked, need);
      return;
    }
    if (reduceOnly) return;
    const margin = D.div(D.mul(D.mul(amount, m.contractSize), price), this.leverage);
    const need = D.add(margin, D.mul(D.mul(D.mul(amount, m.contractSize), price), this.takerFee));
    const row = this.balance('swap', m.quote);
    if (D.lt(row.free, need)) throw new Rejection('insufficient', `insufficient margin: need ${need}, have ${row.free}`);
    row.free = D.sub(row.free, need);
    row.locked = D.add(row.locked, need);
  }

  private release(m: FakeMarket, side: Side, amount: string, price: string, reduceOnly: boolean): void {
    if (m.type === 'spot') {
      const [asset, held] = side === 'buy' ? [m.quote, D.mul(D.mul(amount, price), D.add('1', this.takerFee))] : [m.base, amount];
      const row = this.balance('spot', asset);
      row.locked = D.sub(row.locked, held);
      row.free = D.add(row.free, held);
      return;
    }
    if (reduceOnly) return;
    const notional = D.mul(D.mul(amount, m.contractSize), price);
    const held = D.add(D.div(notional, this.leverage), D.mul(notional, this.takerFee));
    const row = this.balance('swap', m.quote);
    row.locked = D.sub(row.locked, held);
    row.free = D.add(row.free, held);
  }

  /** Fills the rest of an order at `price`. */
  private fill(order: FakeOrder, price: string, maker: boolean): void {
    const m = this.market(order.symbol);
    const qty = D.sub(order.amount, order.filled);
    const reservedAt = order.type === 'limit' ? order.price! : price;
    this.release(m, order.side, qty, reservedAt, order.reduceOnly);
    const base = D.mul(qty, m.contractSize);
    const cost = D.mul(base, price);
    const fee = D.mul(cost, maker ? this.makerFee : this.takerFee);
    let realizedPnl = '0';
    if (m.type === 'spot') {
      const quote = this.balance('spot', m.quote);
      const baseRow = this.balance('spot', m.base);
      if (order.side === 'buy') {
        quote.free = D.sub(quote.free, D.add(cost, fee));
        baseRow.free = D.add(baseRow.free, base);
      } else {
        baseRow.free = D.sub(baseRow.free, base);
        quote.free = D.add(quote.free, D.sub(cost, fee));
      }
    } else {
      realizedPnl = this.applyToPosition(m, order.side, qty, price);
      const wallet = this.balance('swap', m.quote);
      wallet.free = D.sub(D.add(wallet.free, realizedPnl), fee);
    }
    order.filled = order.amount;
    order.cost = D.add(order.cost, cost);
    order.fee = D.add(order.fee, fee);
    order.status = 'filled';
    order.updatedAt = this.now();
    const fill: FakeFill = {
      id: this.nextId(),
      orderId: order.id,
      clientOrderId: order.clientOrderId,
      symbol: order.symbol,
      side: order.side,
      price,
      amount: qty,
      cost,
      fee,
      feeCurrency: m.quote,
      maker,
      realizedPnl,
      timestamp: this.now(),
    };
    this.fills.push(fill);
    this.emit({ type: 'fill', fill });
  }

  /** Nets a swap fill into the position; returns realised PnL. Margin for the open part is tracked as `locked`. */
  private applyToPosition(m: FakeMarket, side: Side, qty: string, price: string): string {
    const pos = this.positions.get(m.symbol) ?? { symbol: m.symbol, contracts: '0', entryPrice: '0', realizedPnl: '0', leverage: this.leverage };
    const signed = side === 'buy' ? qty : D.neg(qty);
    const before = pos.contracts;
    let realized = '0';
    const sameDirection = D.eq(before, '0') || D.gt(before, '0') === D.gt(signed, '0');
    if (sameDirection) {
      const total = D.add(D.abs(before), qty);
      pos.entryPrice = D.div(D.add(D.mul(D.abs(before), pos.entryPrice), D.mul(qty, price)), total);
      pos.contracts = D.add(before, signed);
    } else {
      const closing = Precise.stringMin(qty, D.abs(before)) ?? qty;
      const direction = D.gt(before, '0') ? '1' : '-1';
      realized = D.mul(D.mul(D.mul(D.sub(price, pos.entryPrice), closing), m.contractSize), direction);
      pos.contracts = D.add(before, signed);
      if (D.eq(pos.contracts, '0')) pos.entryPrice = '0';
      else if (D.gt(pos.contracts, '0') !== D.gt(before, '0')) pos.entryPrice = price;
    }
    pos.realizedPnl = D.add(pos.realizedPnl, realized);
    this.positions.set(m.symbol, pos);
    return realized;
  }
}
