/**
 * Binance wire format: spot `api/v3`, USDT-M futures `fapi`, the `sapi` calls ccxt makes on loadMarkets with keys,
 * and the market-data WebSocket (`SUBSCRIBE` to `<symbol>@ticker|@trade|@kline_<tf>`).
 * Signed requests carry `X-MBX-APIKEY` and a hex HMAC-SHA256 `signature` of the query string (or form body).
 */
import type { WebSocket } from 'ws';
import { D, Rejection, type FakeMarket, type FakeOrder, type FakeFill, type EngineEvent, type Kind } from './engine.js';
import { TIMEFRAMES_MS, WsHub, hmacHex, header, safeEqual } from './common.js';
import type { Dialect, DialectContext, FakeRequest, FakeResponse } from './types.js';

const ok = (body: unknown): FakeResponse => ({ status: 200, body });
const err = (status: number, code: number, msg: string): FakeResponse => ({ status, body: { code, msg } });

const marketId = (m: FakeMarket) => `${m.base}${m.quote}`;

interface Sub {
  stream: string;
  symbol: string;
  kind: Kind;
  channel: 'ticker' | 'miniTicker' | 'trade' | 'kline';
  interval?: string;
}

export function createBinanceDialect(ctx: DialectContext): Dialect {
  const { engine, credentials } = ctx;

  const byId = (id: string | null, kind: Kind): FakeMarket => {
    const m = [...engine.markets.values()].find((x) => x.type === kind && marketId(x) === id);
    if (!m) throw new Rejection('badSymbol', 'Invalid symbol.');
    return m;
  };

  function exchangeInfo(kind: Kind) {
    const symbols = [...engine.markets.values()]
      .filter((m) => m.type === kind)
      .map((m) => ({
        symbol: marketId(m),
        status: 'TRADING',
        baseAsset: m.base,
        quoteAsset: m.quote,
        ...(kind === 'swap'
          ? { pair: marketId(m), contractType: 'PERPETUAL', deliveryDate: 4133404800000, onboardDate: 1569398400000, marginAsset: m.quote, pricePrecision: 2, quantityPrecision: 3, baseAssetPrecision: 8, quotePrecision: 8, underlyingType: 'COIN', settlePlan: 0, triggerProtect: '0.0500', liquidationFee: '0.012500', marketTakeBound: '0.05', orderTypes: ['LIMIT', 'MARKET'], timeInForce: ['GTC', 'IOC', 'FOK', 'GTX'] }
          : { baseAssetPrecision: 8, quotePrecision: 8, quoteAssetPrecision: 8, baseCommissionPrecision: 8, quoteCommissionPrecision: 8, orderTypes: ['LIMIT', 'LIMIT_MAKER', 'MARKET'], icebergAllowed: true, ocoAllowed: true, quoteOrderQtyMarketAllowed: true, isSpotTradingAllowed: true, isMarginTradingAllowed: true, permissions: ['SPOT', 'MARGIN'] }),
        filters: [
          { filterType: 'PRICE_FILTER', minPrice: '0.01', maxPrice: '1000000', tickSize: m.tickSize },
          { filterType: 'LOT_SIZE', minQty: m.minQty, maxQty: m.maxQty, stepSize: m.stepSize },
          { filterType: 'MARKET_LOT_SIZE', minQty: m.minQty, maxQty: m.maxQty, stepSize: m.stepSize },
          kind === 'swap'
            ? { filterType: 'MIN_NOTIONAL', notional: m.minNotional }
            : { filterType: 'NOTIONAL', minNotional: m.minNotional, applyMinToMarket: true, maxNotional: '9000000', applyMaxToMarket: false, avgPriceMins: 5 },
        ],
      }));
    return { timezone: 'UTC', serverTime: engine.now(), rateLimits: [], exchangeFilters: [], symbols, assets: [] };
  }

  function orderJson(o: FakeOrder, kind: Kind) {
    const m = engine.market(o.symbol);
    const status = o.status === 'filled' ? 'FILLED' : o.status === 'canceled' ? 'CANCELED' : 'NEW';
    const avg = D.eq(o.filled, '0') ? '0' : D.div(o.cost, D.mul(o.filled, m.contractSize));
    const common = {
      symbol: marketId(m),
      orderId: Number(o.id),
      clientOrderId: o.clientOrderId,
      price: o.price ?? '0',
      origQty: o.amount,
      executedQty: o.filled,
      status,
      timeInForce: 'GTC',
      type: o.type.toUpperCase(),
      side: o.side.toUpperCase(),
      updateTime: o.updatedAt,
    };
    if (kind === 'swap') {
      return { ...common, avgPrice: avg, cumQty: o.filled, cumQuote: o.cost, reduceOnly: o.reduceOnly, closePosition: false, positionSide: 'BOTH', stopPrice: '0', workingType: 'CONTRACT_PRICE', priceProtect: false, origType: o.type.toUpperCase(), time: o.createdAt };
    }
    return { ...common, orderListId: -1, cummulativeQuoteQty: o.cost, stopPrice: '0', icebergQty: '0', time: o.createdAt, isWorking: true, workingTime: o.createdAt, origQuoteOrderQty: '0', selfTradePreventionMode: 'EXPIRE_MAKER' };
  }

  function tradeJson(f: FakeFill, kind: Kind) {
    const m = engine.market(f.symbol);
    const common = { symbol: marketId(m), id: Number(f.id), orderId: Number(f.orderId), price: f.price, qty: f.amount, quoteQty: f.cost, commission: f.fee, commissionAsset: f.feeCurrency, time: f.timestamp };
    if (kind === 'swap') {
      return { ...common, side: f.side.toUpperCase(), realizedPnl: f.realizedPnl, marginAsset: m.quote, positionSide: 'BOTH', buyer: f.side === 'buy', maker: f.maker };
    }
    return { ...common, orderListId: -1, isBuyer: f.side === 'buy', isMaker: f.maker, isBestMatch: true };
  }

  function ticker(m: FakeMarket) {
    const last = engine.price(m.symbol);
    const now = engine.now();
    return {
      symbol: marketId(m),
      priceChange: '0',
      priceChangePercent: '0',
      weightedAvgPrice: last,
      lastPrice: last,
      lastQty: '0.01',
      ...(m.type === 'spot' ? { bidPrice: D.sub(last, m.tickSize), bidQty: '1', askPrice: D.add(last, m.tickSize), askQty: '1', prevClosePrice: last } : {}),
      openPrice: last,
      highPrice: D.add(last, '100'),
      lowPrice: D.sub(last, '100'),
      volume: '1000',
      quoteVolume: D.mul(last, '1000'),
      openTime: now - 86_400_000,
      closeTime: now,
      firstId: 1,
      lastId: 1000,
      count: 1000,
    };
  }

  function klines(m: FakeMarket, q: URLSearchParams) {
    const tf = TIMEFRAMES_MS[q.get('interval') ?? '1m'] ?? 60_000;
    const since = q.get('startTime') ? Number(q.get('startTime')) : undefined;
    const limit = Number(q.get('limit') ?? 500);
    return engine.ohlcv(m.symbol, tf, since, limit).map(([t, o, h, l, c, v]) => [t, o, h, l, c, v, t + tf - 1, D.mul(v, c), 10, v, D.mul(v, c), '0']);
  }

  /** Checks API key and signature; returns an error response when they are wrong. */
  function authenticate(req: FakeRequest): FakeResponse | undefined {
    const key = header(req.headers, 'x-mbx-apikey');
    if (!key || !safeEqual(key, credentials.apiKey)) return err(401, -2015, 'Invalid API-key, IP, or permissions for action.');
    const payload = req.method === 'GET' || req.method === 'DELETE' ? req.rawQuery : req.body;
    const match = /^(.*)&signature=([0-9a-f]+)$/.exec(payload);
    if (!match || !safeEqual(match[2]!, hmacHex(credentials.secret, match[1]!))) {
      return err(400, -1022, 'Signature for this request is not valid.');
    }
    return undefined;
  }

  function params(req: FakeRequest): URLSearchParams {
    const p = new URLSearchParams(req.rawQuery);
    if (req.body) for (const [k, v] of new URLSearchParams(req.body)) p.set(k, v);
    return p;
  }

  function rejection(e: Rejection, kind: Kind): FakeResponse {
    switch (e.kind) {
      case 'insufficient':
        return kind === 'swap' ? err(400, -2019, 'Margin is insufficient.') : err(400, -2010, 'Account has insufficient balance for requested action.');
      case 'minNotional':
        return kind === 'swap'
          ? err(400, -4164, "Order's notional must be no smaller than 5 (unless you choose reduce only).")
          : err(400, -1013, 'Filter failure: NOTIONAL');
      case 'minQty':
      case 'maxQty':
      case 'stepSize':
        return err(400, -1013, 'Filter failure: LOT_SIZE');
      case 'tickSize':
        return err(400, -1013, 'Filter failure: PRICE_FILTER');
      case 'duplicate':
        return err(400, -2010, 'Duplicate order sent.');
      case 'notFound':
        return err(400, -2013, 'Order does not exist.');
      case 'badSymbol':
        return err(400, -1121, 'Invalid symbol.');
      default:
        return err(400, -1102, e.message);
    }
  }

  function balances(kind: Kind) {
    return [...engine.balances[kind].entries()];
  }

  function privateRoute(req: FakeRequest, kind: Kind, endpoint: string): FakeResponse {
    const p = params(req);
    const symbolParam = p.get('symbol');
    const market = () => byId(symbolParam, kind);
    const route = `${req.method} ${endpoint}`;
    switch (route) {
      case 'GET account':
        if (kind === 'spot') {
          return ok({
            makerCommission: 10, takerCommission: 10, buyerCommission: 0, sellerCommission: 0,
            canTrade: ctx.permissions.trade, canWithdraw: ctx.permissions.withdraw, canDeposit: true,
            updateTime: engine.now(), accountType: 'SPOT', permissions: ['SPOT'],
            balances: balances('spot').map(([asset, b]) => ({ asset, free: b.free, locked: b.locked })),
          });
        }
        return ok({
          totalInitialMargin: '0', totalMaintMargin: '0', totalWalletBalance: '0', totalUnrealizedProfit: '0',
          totalMarginBalance: '0', availableBalance: '0', maxWithdrawAmount: '0',
          assets: balances('swap').map(([asset, b]) => {
            const total = D.add(b.free, b.locked);
            return { asset, walletBalance: total, unrealizedProfit: '0', marginBalance: total, maintMargin: '0', initialMargin: b.locked, positionInitialMargin: '0', openOrderInitialMargin: b.locked, crossWalletBalance: total, crossUnPnl: '0', availableBalance: b.free, maxWithdrawAmount: b.free, updateTime: engine.now() };
          }),
          positions: [],
        });
      case 'POST order': {
        const type = (p.get('type') ?? '').toLowerCase();
        if (type !== 'market' && type !== 'limit') return err(400, -1116, 'Invalid orderType.');
        const order = engine.place({
          symbol: market().symbol,
          side: (p.get('side') ?? '').toLowerCase() === 'sell' ? 'sell' : 'buy',
          type,
          amount: p.get('quantity') ?? '0',
          price: p.get('price') ?? undefined,
          clientOrderId: p.get('newClientOrderId') ?? undefined,
          reduceOnly: p.get('reduceOnly') === 'true',
        });
        const body: Record<string, unknown> = { ...orderJson(order, kind), transactTime: order.createdAt };
        if (kind === 'spot') {
          body.fills = engine.fills.filter((f) => f.orderId === order.id).map((f) => ({ price: f.price, qty: f.amount, commission: f.fee, commissionAsset: f.feeCurrency, tradeId: Number(f.id) }));
        }
        return ok(body);
      }
      case 'GET order': {
        const o = engine.findOrder(market().symbol, p.get('orderId') ?? undefined, p.get('origClientOrderId') ?? undefined);
        return ok(orderJson(o, kind));
      }
      case 'DELETE order': {
        try {
          const o = engine.cancel(market().symbol, p.get('orderId') ?? undefined, p.get('origClientOrderId') ?? undefined);
          return ok(orderJson(o, kind));
        } catch (e) {
          if (e instanceof Rejection && e.kind === 'notFound') return err(400, -2011, 'Unknown order sent.');
          throw e;
        }
      }
      case 'GET openOrders':
        return ok(engine.openOrders(symbolParam ? market().symbol : undefined).filter((o) => engine.market(o.symbol).type === kind).map((o) => orderJson(o, kind)));
      case 'GET myTrades':
      case 'GET userTrades': {
        const symbol = market().symbol;
        const since = p.get('startTime') ? Number(p.get('startTime')) : 0;
        return ok(engine.fills.filter((f) => f.symbol === symbol && f.timestamp >= since).map((f) => tradeJson(f, kind)));
      }
      case 'GET positionRisk':
        return ok(
          [...engine.positions.values()]
            .filter((pos) => !D.eq(pos.contracts, '0'))
            .map((pos) => {
              const m = engine.market(pos.symbol);
              const mark = engine.price(pos.symbol);
              const notional = D.mul(pos.contracts, mark);
              const upnl = D.mul(D.sub(mark, pos.entryPrice), pos.contracts);
              const im = D.div(D.abs(notional), pos.leverage);
              return { symbol: marketId(m), positionSide: 'BOTH', positionAmt: pos.contracts, entryPrice: pos.entryPrice, breakEvenPrice: pos.entryPrice, markPrice: mark, unRealizedProfit: upnl, liquidationPrice: '0', isolatedMargin: '0', notional, marginAsset: m.quote, isolatedWallet: '0', initialMargin: im, maintMargin: D.mul(D.abs(notional), '0.004'), positionInitialMargin: im, openOrderInitialMargin: '0', adl: 1, bidNotional: '0', askNotional: '0', updateTime: engine.now() };
            }),
        );
      case 'GET leverageBracket':
        return ok([...engine.markets.values()].filter((m) => m.type === 'swap').map((m) => ({ symbol: marketId(m), brackets: [{ bracket: 1, initialLeverage: 125, notionalCap: 50000, notionalFloor: 0, maintMarginRatio: 0.004, cum: 0 }] })));
      default:
        return err(404, -1000, `fake binance: no route ${route}`);
    }
  }

  function sapi(req: FakeRequest, endpoint: string): FakeResponse {
    switch (endpoint) {
      case 'capital/config/getall':
        return ok(
          [...new Set([...engine.markets.values()].flatMap((m) => [m.base, m.quote]))].map((coin) => {
            const b = engine.balances.spot.get(coin);
            return { coin, depositAllEnable: true, withdrawAllEnable: true, name: coin, free: b?.free ?? '0', locked: b?.locked ?? '0', freeze: '0', withdrawing: '0', ipoing: '0', ipoable: '0', storage: '0', isLegalMoney: false, trading: true, networkList: [{ network: coin, coin, withdrawIntegerMultiple: '0.00000001', isDefault: true, depositEnable: true, withdrawEnable: true, depositDesc: '', withdrawDesc: '', name: coin, resetAddressStatus: false, withdrawFee: '0.0001', withdrawMin: '0.001', withdrawMax: '9000', minConfirm: 1, unLockConfirm: 2 }] };
          }),
        );
      case 'margin/allPairs':
        return ok([...engine.markets.values()].filter((m) => m.type === 'spot').map((m) => ({ id: '1', symbol: marketId(m), base: m.base, quote: m.quote, isMarginTrade: true, isBuyAllowed: true, isSellAllowed: true })));
      case 'margin/isolated/allPairs':
        return ok([]);
      case 'account/apiRestrictions':
        return ok({ ipRestrict: false, createTime: 1700000000000, enableReading: true, enableWithdrawals: ctx.permissions.withdraw, enableInternalTransfer: false, enableMargin: false, enableFutures: ctx.permissions.trade, permitsUniversalTransfer: false, enableVanillaOptions: false, enableFixApiTrade: false, enableFixReadOnly: true, enableSpotAndMarginTrading: ctx.permissions.trade, enablePortfolioMarginTrading: false });
      default:
        return err(404, -1000, `fake binance: no route ${req.method} sapi ${endpoint}`);
    }
  }

  function handle(req: FakeRequest): FakeResponse {
    const m = /^\/(api|fapi|dapi|sapi)\/v\d\/(.+)$/.exec(req.path);
    if (!m) return err(404, -1000, `fake binance: unknown path ${req.path}`);
    const [, family, endpoint] = m as unknown as [string, string, string];
    const kind: Kind = family === 'fapi' ? 'swap' : 'spot';
    try {
      if (family === 'dapi') return ok(endpoint === 'exchangeInfo' ? { timezone: 'UTC', serverTime: engine.now(), symbols: [] } : []);
      switch (endpoint) {
        case 'ping':
          return ok({});
        case 'time':
          return ok({ serverTime: engine.now() });
        case 'exchangeInfo':
          return ok(exchangeInfo(kind));
        case 'klines':
          return ok(klines(byId(req.query.get('symbol'), kind), req.query));
        case 'ticker/24hr':
          return ok(ticker(byId(req.query.get('symbol'), kind)));
      }
      const denied = authenticate(req);
      if (denied) return denied;
      return family === 'sapi' ? sapi(req, endpoint) : privateRoute(req, kind, endpoint);
    } catch (e) {
      if (e instanceof Rejection) return rejection(e, kind);
      throw e;
    }
  }

  // ---- WebSocket market streams ----------------------------------------------------------------------------------

  const hub = new WsHub<Sub>(engine, (sub, event) => renderWs(sub, event));

  function renderWs(sub: Sub, event: EngineEvent): unknown {
    if (event.type !== 'price' || event.symbol !== sub.symbol) return undefined;
    const m = engine.market(sub.symbol);
    const now = engine.now();
    const id = marketId(m);
    if (sub.channel === 'ticker') {
      const t = ticker(m);
      return { e: '24hrTicker', E: now, s: id, p: '0', P: '0', w: t.weightedAvgPrice, c: t.lastPrice, Q: '0.01', b: t.bidPrice ?? t.lastPrice, B: '1', a: t.askPrice ?? t.lastPrice, A: '1', o: t.openPrice, h: t.highPrice, l: t.lowPrice, v: t.volume, q: t.quoteVolume, O: t.openTime, C: now, F: 1, L: 1000, n: 1000 };
    }
    if (sub.channel === 'miniTicker') {
      const t = ticker(m);
      return { e: '24hrMiniTicker', E: now, s: id, c: t.lastPrice, o: t.openPrice, h: t.highPrice, l: t.lowPrice, v: t.volume, q: t.quoteVolume };
    }
    if (sub.channel === 'trade') {
      return { e: 'trade', E: now, s: id, t: Number(engine.nextId()), p: event.price, q: '0.01', T: now, m: false, M: true };
    }
    const tf = TIMEFRAMES_MS[sub.interval ?? '1m'] ?? 60_000;
    const [t, o, h, l, c, v] = engine.ohlcv(m.symbol, tf, undefined, 1).at(-1)!;
    return { e: 'kline', E: now, s: id, k: { t, T: t + tf - 1, s: id, i: sub.interval, f: 1, L: 2, o, c, h: D.gt(h, c) ? h : c, l: D.lt(l, c) ? l : c, v, n: 2, x: false, q: D.mul(v, c), V: '0', Q: '0', B: '0' } };
  }

  function onWsConnection(socket: WebSocket, path: string): void {
    const kind: Kind = path.includes('fstream') || path.startsWith('/ws-f') ? 'swap' : 'spot';
    socket.on('message', (data) => {
      let msg: { method?: string; params?: string[]; id?: number };
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if (msg.method === 'SUBSCRIBE') {
        for (const stream of msg.params ?? []) {
          const [idLower, channelRaw = ''] = stream.split('@');
          const [channel, interval] = channelRaw.split('_');
          const market = [...engine.markets.values()].find((x) => marketId(x).toLowerCase() === idLower && x.type === kind);
          if (!market || (channel !== 'ticker' && channel !== 'miniTicker' && channel !== 'trade' && channel !== 'kline')) continue;
          hub.add(socket, { stream, symbol: market.symbol, kind, channel, interval });
        }
      }
      socket.send(JSON.stringify({ result: null, id: msg.id }));
    });
  }

  return {
    handle,
    onWsConnection,
    authError: () => err(401, -2015, 'Invalid API-key, IP, or permissions for action.'),
    rateLimited: (retryAfter) => ({
      status: 429,
      headers: { 'retry-after': String(retryAfter) },
      body: { code: -1003, msg: 'Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. Please use WebSocket Streams for live updates to avoid polling the API.' },
    }),
    // Binance's gateway answers 5xx with an HTML page, not a JSON error.
    serverError: (status) => ({ status, headers: { 'content-type': 'text/html' }, body: `<html><body><h1>${status} Service Temporarily Unavailable</h1></body></html>` }),
  };
}
