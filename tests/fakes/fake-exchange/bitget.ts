/**
 * Bitget v2 wire format (`/api/v2/spot/...`, `/api/v2/mix/...` with productType USDT-FUTURES; `{code:"00000", msg,
 * requestTime, data}` envelopes) and the v2 public WebSocket (`ticker`, `trade`, `candle<tf>`).
 * Signed requests: ACCESS-KEY/-SIGN/-TIMESTAMP/-PASSPHRASE headers,
 * SIGN = base64(HMAC-SHA256(secret, timestamp + method + path + ('?' + query for GET) + body)).
 * Spot market BUY orders carry their size in quote currency, as on the real exchange.
 */
import type { WebSocket } from 'ws';
import { D, Rejection, type EngineEvent, type FakeFill, type FakeMarket, type FakeOrder } from './engine.js';
import { TIMEFRAMES_MS, WsHub, header, hmacBase64, jsonBody, safeEqual } from './common.js';
import type { Dialect, DialectContext, FakeRequest, FakeResponse } from './types.js';

const ok = (data: unknown): FakeResponse => ({ status: 200, body: { code: '00000', msg: 'success', requestTime: Date.now(), data } });
const fail = (status: number, code: string, msg: string): FakeResponse => ({ status, body: { code, msg, requestTime: Date.now(), data: null } });

const symbolId = (m: FakeMarket) => `${m.base}${m.quote}`;
const decimalsOf = (step: string) => String(step.includes('.') ? step.split('.')[1]!.replace(/0+$/, '').length : 0);
const GRANULARITY: Record<string, number> = { ...TIMEFRAMES_MS, '1min': 60_000, '5min': 300_000, '15min': 900_000, '30min': 1_800_000, '1h': 3_600_000, '4h': 14_400_000, '1day': 86_400_000 };

interface Sub {
  channel: string;
  symbol: string;
  instType: string;
}

export function createBitgetDialect(ctx: DialectContext): Dialect {
  const { engine, credentials } = ctx;

  const byId = (id: string | null | undefined, kind: 'spot' | 'swap'): FakeMarket => {
    const m = [...engine.markets.values()].find((x) => x.type === kind && symbolId(x) === id);
    if (!m) throw new Rejection('badSymbol', `Parameter ${id} does not exist`);
    return m;
  };

  function spotSymbol(m: FakeMarket) {
    return { symbol: symbolId(m), baseCoin: m.base, quoteCoin: m.quote, minTradeAmount: m.minQty, maxTradeAmount: m.maxQty, takerFeeRate: engine.takerFee, makerFeeRate: engine.makerFee, pricePrecision: decimalsOf(m.tickSize), quantityPrecision: decimalsOf(m.stepSize), quotePrecision: '8', status: 'online', minTradeUSDT: m.minNotional, buyLimitPriceRatio: '0.05', sellLimitPriceRatio: '0.05', areaSymbol: 'no', orderQuantity: '200', openTime: '1532454360000', offTime: '' };
  }

  function contract(m: FakeMarket) {
    return { symbol: symbolId(m), baseCoin: m.base, quoteCoin: m.quote, buyLimitPriceRatio: '0.05', sellLimitPriceRatio: '0.05', feeRateUpRatio: '0.005', makerFeeRate: engine.makerFee, takerFeeRate: engine.takerFee, openCostUpRatio: '0.01', supportMarginCoins: [m.quote], minTradeNum: m.minQty, priceEndStep: '1', volumePlace: decimalsOf(m.stepSize), pricePlace: decimalsOf(m.tickSize), sizeMultiplier: m.stepSize, symbolType: 'perpetual', minTradeUSDT: m.minNotional, maxSymbolOrderNum: '200', maxProductOrderNum: '400', maxPositionNum: '150', symbolStatus: 'normal', offTime: '-1', limitOpenTime: '-1', deliveryTime: '', deliveryStartTime: '', deliveryPeriod: '', launchTime: '', fundInterval: '8', minLever: '1', maxLever: '125', posLimit: '0.05', maintainTime: '', maxMarketOrderQty: m.maxQty, maxOrderQty: m.maxQty };
  }

  const status = (o: FakeOrder) => (o.status === 'filled' ? 'filled' : o.status === 'canceled' ? 'cancelled' : 'live');
  const avgOf = (o: FakeOrder) => (D.eq(o.filled, '0') ? '0' : D.div(o.cost, o.filled));

  function spotOrder(o: FakeOrder) {
    const m = engine.market(o.symbol);
    const marketBuy = o.type === 'market' && o.side === 'buy';
    const feeDetail = JSON.stringify({
      newFees: { c: 0, d: 0, deduction: false, r: -Number(o.fee), t: -Number(o.fee), totalDeductionFee: 0 },
      [m.quote]: { deduction: false, feeCoinCode: m.quote, totalDeductionFee: 0, totalFee: D.neg(o.fee) },
    });
    return { userId: '1', symbol: symbolId(m), orderId: o.id, clientOid: o.clientOrderId, price: o.price ?? '0', size: marketBuy ? D.mul(o.amount, engine.price(o.symbol)) : o.amount, orderType: o.type, side: o.side, status: status(o), priceAvg: avgOf(o), baseVolume: o.filled, quoteVolume: o.cost, enterPointSource: 'API', feeDetail: o.fee === '0' ? '' : feeDetail, orderSource: o.type === 'market' ? 'market' : 'normal', cancelReason: '', cTime: String(o.createdAt), uTime: String(o.updatedAt) };
  }

  function mixOrder(o: FakeOrder) {
    const m = engine.market(o.symbol);
    return { symbol: symbolId(m), size: o.amount, orderId: o.id, clientOid: o.clientOrderId, baseVolume: o.filled, priceAvg: avgOf(o), fee: D.neg(o.fee), price: o.price ?? '', state: status(o) === 'cancelled' ? 'canceled' : status(o), side: o.side, force: 'gtc', totalProfits: '0', posSide: 'net', marginCoin: m.quote, presetStopSurplusPrice: '', presetStopLossPrice: '', quoteVolume: o.cost, orderType: o.type, leverage: engine.leverage, marginMode: 'crossed', reduceOnly: o.reduceOnly ? 'YES' : 'NO', enterPointSource: 'API', tradeSide: o.side === 'buy' ? 'buy_single' : 'sell_single', posMode: 'one_way_mode', orderSource: 'normal', cancelReason: '', cTime: String(o.createdAt), uTime: String(o.updatedAt) };
  }

  function spotFill(f: FakeFill) {
    const m = engine.market(f.symbol);
    return { userId: '1', symbol: symbolId(m), orderId: f.orderId, tradeId: f.id, orderType: 'limit', side: f.side, priceAvg: f.price, size: f.amount, amount: f.cost, feeDetail: { deduction: 'no', feeCoin: f.feeCurrency, totalDeductionFee: '0', totalFee: D.neg(f.fee) }, tradeScope: f.maker ? 'maker' : 'taker', cTime: String(f.timestamp), uTime: String(f.timestamp) };
  }

  function mixFill(f: FakeFill) {
    const m = engine.market(f.symbol);
    return { tradeId: f.id, symbol: symbolId(m), orderId: f.orderId, price: f.price, baseVolume: f.amount, feeDetail: [{ deduction: 'no', feeCoin: f.feeCurrency, totalDeductionFee: '0', totalFee: D.neg(f.fee) }], side: f.side, quoteVolume: f.cost, profit: f.realizedPnl, enterPointSource: 'API', tradeSide: f.side === 'buy' ? 'buy_single' : 'sell_single', posMode: 'one_way_mode', tradeScope: f.maker ? 'maker' : 'taker', cTime: String(f.timestamp) };
  }

  function tickerJson(m: FakeMarket) {
    const last = engine.price(m.symbol);
    const base = { symbol: symbolId(m), high24h: D.add(last, '100'), open: last, lastPr: last, low24h: D.sub(last, '100'), quoteVolume: D.mul(last, '1000'), baseVolume: '1000', usdtVolume: D.mul(last, '1000'), bidPr: D.sub(last, m.tickSize), askPr: D.add(last, m.tickSize), bidSz: '1', askSz: '1', openUtc: last, ts: String(engine.now()), changeUtc24h: '0', change24h: '0' };
    return m.type === 'swap' ? { ...base, indexPrice: last, fundingRate: '0.0001', holdingAmount: '100', deliveryStartTime: null, deliveryTime: null, deliveryStatus: '', open24h: last, markPrice: last } : base;
  }

  function candles(m: FakeMarket, q: URLSearchParams) {
    const tf = GRANULARITY[q.get('granularity') ?? '1m'] ?? 60_000;
    const since = q.get('startTime') ? Number(q.get('startTime')) : undefined;
    const limit = Math.min(Number(q.get('limit') ?? 100), 1000);
    return engine.ohlcv(m.symbol, tf, since, limit).map(([t, o, h, l, c, v]) => [String(t), o, h, l, c, v, D.mul(v, c), D.mul(v, c)]);
  }

  function authenticate(req: FakeRequest): FakeResponse | undefined {
    const key = header(req.headers, 'access-key');
    if (!key || !safeEqual(key, credentials.apiKey)) return fail(400, '40006', 'Invalid ACCESS_KEY');
    const passphrase = header(req.headers, 'access-passphrase');
    if (!passphrase || !safeEqual(passphrase, credentials.passphrase ?? '')) return fail(400, '40012', 'apikey/password is incorrect');
    const ts = header(req.headers, 'access-timestamp') ?? '';
    const sign = header(req.headers, 'access-sign') ?? '';
    // ccxt signs the query unencoded (rawencode) while sending it url-encoded.
    const query = req.rawQuery ? `?${decodeURIComponent(req.rawQuery)}` : '';
    const expected = hmacBase64(credentials.secret, ts + req.method + req.path + query + req.body);
    if (!safeEqual(sign, expected)) return fail(400, '40009', 'sign signature error');
    return undefined;
  }

  function rejection(e: Rejection): FakeResponse {
    switch (e.kind) {
      case 'insufficient':
        return fail(400, '43012', 'Insufficient balance');
      case 'minNotional':
        return fail(400, '45110', 'less than the minimum amount 5 USDT');
      case 'minQty':
        return fail(400, '45111', 'less than the minimum order quantity');
      case 'stepSize':
      case 'tickSize':
        return fail(400, '40808', `Parameter verification exception ${e.message}`);
      case 'duplicate':
        return fail(400, '40786', 'Duplicate clientOid');
      case 'notFound':
        return fail(400, '40109', 'The data of the order cannot be found, please confirm the order number');
      case 'badSymbol':
        return fail(400, '40034', e.message);
      default:
        return fail(400, '40017', `Parameter verification failed ${e.message}`);
    }
  }

  function place(kind: 'spot' | 'swap', p: Record<string, any>) {
    const m = byId(p.symbol, kind);
    const type = p.orderType;
    if (type !== 'market' && type !== 'limit') throw new Rejection('badParam', `orderType ${type}`);
    let amount = String(p.size ?? '0');
    if (kind === 'spot' && type === 'market' && p.side === 'buy') {
      const base = D.div(amount, engine.price(m.symbol));
      amount = D.sub(base, D.mod(base, m.stepSize));
    }
    const order = engine.place({
      symbol: m.symbol,
      side: p.side === 'sell' ? 'sell' : 'buy',
      type,
      amount,
      price: p.price === undefined ? undefined : String(p.price),
      clientOrderId: p.clientOid || undefined,
      reduceOnly: p.reduceOnly === 'YES',
    });
    return ok({ orderId: order.id, clientOid: order.clientOrderId });
  }

  function spotAssets() {
    return [...engine.balances.spot.entries()].map(([coin, b]) => ({ coin, available: b.free, frozen: b.locked, locked: '0', limitAvailable: '0', uTime: String(engine.now()) }));
  }

  function mixAccounts() {
    return [...engine.balances.swap.entries()].map(([marginCoin, b]) => {
      const equity = D.add(b.free, b.locked);
      return { marginCoin, locked: b.locked, available: b.free, crossedMaxAvailable: b.free, isolatedMaxAvailable: b.free, maxTransferOut: b.free, accountEquity: equity, usdtEquity: equity, btcEquity: '0', crossedRiskRate: '0', crossedMarginLeverage: engine.leverage, isolatedLongLever: engine.leverage, isolatedShortLever: engine.leverage, marginMode: 'crossed', posMode: 'one_way_mode', unrealizedPL: '0', coupon: '0', crossedUnrealizedPL: '0', isolatedUnrealizedPL: '0', assetMode: 'single' };
    });
  }

  function positions(symbol?: string) {
    return [...engine.positions.values()]
      .filter((p) => !D.eq(p.contracts, '0'))
      .map((p) => {
        const m = engine.market(p.symbol);
        const mark = engine.price(p.symbol);
        const size = D.abs(p.contracts);
        const long = D.gt(p.contracts, '0');
        const upl = D.mul(D.mul(D.sub(mark, p.entryPrice), size), long ? '1' : '-1');
        return { marginCoin: m.quote, symbol: symbolId(m), holdSide: long ? 'long' : 'short', openDelegateSize: '0', marginSize: D.div(D.mul(size, p.entryPrice), p.leverage), available: size, locked: '0', total: size, leverage: p.leverage, achievedProfits: p.realizedPnl, openPriceAvg: p.entryPrice, marginMode: 'crossed', posMode: 'one_way_mode', unrealizedPL: upl, liquidationPrice: '0', keepMarginRate: '0.004', markPrice: mark, marginRatio: '0', breakEvenPrice: p.entryPrice, totalFee: '0', deductedFee: '0', assetMode: 'single', uTime: String(engine.now()), autoMargin: 'off', cTime: String(engine.now()) };
      })
      .filter((p) => !symbol || p.symbol === symbol);
  }

  function handle(req: FakeRequest): FakeResponse {
    const q = req.query;
    const route = `${req.method} ${req.path}`;
    try {
      switch (route) {
        case 'GET /api/v2/public/time':
          return ok({ serverTime: String(engine.now()) });
        case 'GET /api/v2/spot/public/symbols':
          return ok([...engine.markets.values()].filter((m) => m.type === 'spot').map(spotSymbol));
        case 'GET /api/v2/spot/public/coins':
          return ok([...new Set([...engine.markets.values()].flatMap((m) => [m.base, m.quote]))].map((coin, i) => ({ coinId: String(i + 1), coin, transfer: 'true', chains: [{ chain: coin, needTag: 'false', withdrawable: 'true', rechargeable: 'true', withdrawFee: '0.0001', extraWithdrawFee: '0', depositConfirm: '1', withdrawConfirm: '1', minDepositAmount: '0.0001', minWithdrawAmount: '0.001', browserUrl: '', contractAddress: '', withdrawStep: '0', withdrawMinScale: '8', congestion: 'normal' }] })));
        case 'GET /api/v2/margin/currencies':
          return ok([]);
        case 'GET /api/v2/mix/market/contracts':
          return ok(q.get('productType') === 'USDT-FUTURES' ? [...engine.markets.values()].filter((m) => m.type === 'swap').map(contract) : []);
        case 'GET /api/v2/spot/market/tickers':
          return ok([tickerJson(byId(q.get('symbol'), 'spot'))]);
        case 'GET /api/v2/mix/market/ticker':
          return ok([tickerJson(byId(q.get('symbol'), 'swap'))]);
        case 'GET /api/v2/spot/market/candles':
        case 'GET /api/v2/spot/market/history-candles':
          return ok(candles(byId(q.get('symbol'), 'spot'), q));
        case 'GET /api/v2/mix/market/candles':
        case 'GET /api/v2/mix/market/history-candles':
          return ok(candles(byId(q.get('symbol'), 'swap'), q));
      }
      const denied = authenticate(req);
      if (denied) return denied;
      const body = jsonBody(req.body);
      switch (route) {
        case 'GET /api/v3/account/settings':
          // A classic (non-UTA) account: ccxt then uses the v2 endpoints.
          return fail(400, '40084', 'You are in Classic Account mode, and cannot use the UTA API');
        case 'GET /api/v2/spot/account/info':
          return ok({ userId: '1', inviterId: '0', ipWhiteList: '', authorities: ['readonly', ...(ctx.permissions.trade ? ['trade'] : []), ...(ctx.permissions.withdraw ? ['withdraw'] : [])], parentId: 1, traderType: 'none', channelCode: '', channel: '', regisTime: '1700000000000' });
        case 'GET /api/v2/spot/account/assets':
          return ok(spotAssets());
        case 'GET /api/v2/mix/account/accounts':
          return ok(mixAccounts());
        case 'GET /api/v2/mix/position/all-position':
        case 'GET /api/v2/mix/position/single-position':
          return ok(positions(q.get('symbol') ?? undefined));
        case 'POST /api/v2/spot/trade/place-order':
          return place('spot', body);
        case 'POST /api/v2/mix/order/place-order':
          return place('swap', body);
        case 'POST /api/v2/spot/trade/cancel-order':
        case 'POST /api/v2/mix/order/cancel-order': {
          const kind = route.includes('/mix/') ? 'swap' : 'spot';
          const o = engine.cancel(byId(body.symbol, kind).symbol, body.orderId, body.clientOid);
          return ok({ orderId: o.id, clientOid: o.clientOrderId });
        }
        case 'GET /api/v2/spot/trade/orderInfo': {
          const o = engine.findOrder(undefined, q.get('orderId') ?? undefined, q.get('clientOid') ?? undefined);
          return ok([spotOrder(o)]);
        }
        case 'GET /api/v2/mix/order/detail': {
          const o = engine.findOrder(byId(q.get('symbol'), 'swap').symbol, q.get('orderId') ?? undefined, q.get('clientOid') ?? undefined);
          return ok(mixOrder(o));
        }
        case 'GET /api/v2/spot/trade/unfilled-orders': {
          const id = q.get('symbol');
          return ok(engine.openOrders(id ? byId(id, 'spot').symbol : undefined).filter((o) => engine.market(o.symbol).type === 'spot').map(spotOrder));
        }
        case 'GET /api/v2/mix/order/orders-pending': {
          const id = q.get('symbol');
          const list = engine.openOrders(id ? byId(id, 'swap').symbol : undefined).filter((o) => engine.market(o.symbol).type === 'swap');
          return ok({ entrustedList: list.length ? list.map(mixOrder) : null, endId: list.at(-1)?.id ?? '' });
        }
        case 'GET /api/v2/spot/trade/fills': {
          const symbol = byId(q.get('symbol'), 'spot').symbol;
          return ok(engine.fills.filter((f) => f.symbol === symbol).reverse().map(spotFill));
        }
        case 'GET /api/v2/mix/order/fills':
        case 'GET /api/v2/mix/order/fill-history': {
          const id = q.get('symbol');
          const fills = engine.fills.filter((f) => engine.market(f.symbol).type === 'swap' && (!id || symbolId(engine.market(f.symbol)) === id));
          return ok({ fillList: fills.reverse().map(mixFill), endId: fills.at(-1)?.id ?? '' });
        }
        default:
          return fail(404, '40404', `fake bitget: no route ${route}`);
      }
    } catch (e) {
      if (e instanceof Rejection) return rejection(e);
      throw e;
    }
  }

  // ---- WebSocket ---------------------------------------------------------------------------------------------------

  const hub = new WsHub<Sub>(engine, (sub, event) => renderWs(sub, event));

  function renderWs(sub: Sub, event: EngineEvent): unknown {
    if (event.type !== 'price' || event.symbol !== sub.symbol) return undefined;
    const m = engine.market(sub.symbol);
    const arg = { instType: sub.instType, channel: sub.channel, instId: symbolId(m) };
    const ts = engine.now();
    if (sub.channel === 'ticker') {
      const t = tickerJson(m);
      return { action: 'snapshot', arg, data: [{ instId: symbolId(m), lastPr: t.lastPr, open24h: t.open, high24h: t.high24h, low24h: t.low24h, change24h: '0', bidPr: t.bidPr, askPr: t.askPr, bidSz: '1', askSz: '1', baseVolume: t.baseVolume, quoteVolume: t.quoteVolume, openUtc: t.openUtc, changeUtc24h: '0', ts: String(ts) }], ts };
    }
    if (sub.channel === 'trade') {
      return { action: 'update', arg, data: [{ ts: String(ts), price: event.price, size: '0.01', side: 'buy', tradeId: engine.nextId() }], ts };
    }
    const tf = GRANULARITY[sub.channel.slice('candle'.length)] ?? 60_000;
    const [t, o, h, l, c, v] = engine.ohlcv(m.symbol, tf, undefined, 1).at(-1)!;
    return { action: 'update', arg, data: [[String(t), o, h, l, c, v, D.mul(v, c), D.mul(v, c)]], ts };
  }

  function onWsConnection(socket: WebSocket): void {
    socket.on('message', (data) => {
      const text = String(data);
      if (text === 'ping') return socket.send('pong');
      let msg: { op?: string; args?: Array<{ instType: string; channel: string; instId: string }> };
      try {
        msg = JSON.parse(text);
      } catch {
        return;
      }
      if (msg.op !== 'subscribe') return;
      for (const arg of msg.args ?? []) {
        const kind = arg.instType === 'SPOT' ? 'spot' : 'swap';
        const m = [...engine.markets.values()].find((x) => x.type === kind && symbolId(x) === arg.instId);
        if (!m) {
          socket.send(JSON.stringify({ event: 'error', arg, code: 30001, msg: `instType:${arg.instType},channel:${arg.channel},instId:${arg.instId} doesn't exist` }));
          continue;
        }
        hub.add(socket, { channel: arg.channel, symbol: m.symbol, instType: arg.instType });
        socket.send(JSON.stringify({ event: 'subscribe', arg }));
      }
    });
  }

  return {
    handle,
    onWsConnection,
    authError: () => fail(400, '40006', 'Invalid ACCESS_KEY'),
    rateLimited: (retryAfter) => ({ status: 429, headers: { 'retry-after': String(retryAfter) }, body: { code: '429', msg: 'Too Many Requests', requestTime: Date.now(), data: null } }),
    // The gateway answers 5xx with a plain page.
    serverError: (status) => ({ status, headers: { 'content-type': 'text/html' }, body: `<html><body>${status} Service Unavailable</body></html>` }),
  };
}
