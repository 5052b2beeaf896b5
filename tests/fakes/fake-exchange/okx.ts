/**
 * OKX v5 wire format (`/api/v5/...`, `{code, msg, data}` envelopes) and the public/business WebSocket channels
 * (`tickers`, `trades`, `candle<bar>`). Signed requests: OK-ACCESS-KEY/-SIGN/-TIMESTAMP/-PASSPHRASE headers,
 * SIGN = base64(HMAC-SHA256(secret, timestamp + method + requestPath(+query) + body)).
 */
import type { WebSocket } from 'ws';
import { D, Rejection, type EngineEvent, type FakeFill, type FakeMarket, type FakeOrder } from './engine.js';
import { TIMEFRAMES_MS, WsHub, header, hmacBase64, jsonBody, safeEqual } from './common.js';
import type { Dialect, DialectContext, FakeRequest, FakeResponse } from './types.js';

const ok = (data: unknown[]): FakeResponse => ({ status: 200, body: { code: '0', msg: '', data } });
const fail = (status: number, code: string, msg: string): FakeResponse => ({ status, body: { code, msg, data: [] } });
/** Order endpoints answer HTTP 200 with code "1" and the per-order sCode/sMsg. */
const orderFail = (sCode: string, sMsg: string, clOrdId = ''): FakeResponse => ({
  status: 200,
  body: { code: '1', msg: 'All operations failed', data: [{ clOrdId, ordId: '', tag: '', sCode, sMsg, ts: String(Date.now()) }], inTime: '', outTime: '' },
});

const instId = (m: FakeMarket) => (m.type === 'swap' ? `${m.base}-${m.quote}-SWAP` : `${m.base}-${m.quote}`);
const instType = (m: FakeMarket) => (m.type === 'swap' ? 'SWAP' : 'SPOT');
const BARS: Record<string, number> = { ...TIMEFRAMES_MS, '1H': 3_600_000, '4H': 14_400_000, '1D': 86_400_000 };

interface Sub {
  channel: string;
  symbol: string;
}

export function createOkxDialect(ctx: DialectContext): Dialect {
  const { engine, credentials } = ctx;

  const byInstId = (id: string | null | undefined): FakeMarket => {
    const m = [...engine.markets.values()].find((x) => instId(x) === id);
    if (!m) throw new Rejection('badSymbol', `Instrument ID ${id} does not exist`);
    return m;
  };

  function instrument(m: FakeMarket) {
    const common = { instType: instType(m), instId: instId(m), tickSz: m.tickSize, lotSz: m.stepSize, minSz: m.minQty, maxLmtSz: m.maxQty, maxMktSz: m.maxQty, maxLmtAmt: '20000000', maxMktAmt: '1000000', state: 'live', listTime: '1606468572000', expTime: '', ruleType: 'normal', alias: '', category: '1', optType: '', stk: '' };
    if (m.type === 'swap') {
      return { ...common, uly: `${m.base}-${m.quote}`, instFamily: `${m.base}-${m.quote}`, baseCcy: '', quoteCcy: '', settleCcy: m.quote, ctValCcy: m.base, ctVal: m.contractSize, ctMult: '1', ctType: 'linear', lever: '100' };
    }
    return { ...common, uly: '', instFamily: '', baseCcy: m.base, quoteCcy: m.quote, settleCcy: '', ctValCcy: '', ctVal: '', ctMult: '', ctType: '', lever: '10' };
  }

  function orderJson(o: FakeOrder) {
    const m = engine.market(o.symbol);
    const state = o.status === 'filled' ? 'filled' : o.status === 'canceled' ? 'canceled' : 'live';
    const avg = D.eq(o.filled, '0') ? '' : D.div(o.cost, D.mul(o.filled, m.contractSize));
    return {
      instType: instType(m), instId: instId(m), ccy: '', ordId: o.id, clOrdId: o.clientOrderId, tag: '', px: o.price ?? '',
      pxUsd: '', pxVol: '', pxType: '', sz: o.amount, pnl: '0', ordType: o.type, side: o.side, posSide: 'net',
      tdMode: m.type === 'swap' ? 'cross' : 'cash', accFillSz: o.filled, fillPx: avg, tradeId: '', fillSz: o.filled,
      fillTime: o.status === 'filled' ? String(o.updatedAt) : '', avgPx: avg, state, lever: m.type === 'swap' ? engine.leverage : '',
      attachAlgoClOrdId: '', tpTriggerPx: '', tpTriggerPxType: '', tpOrdPx: '', slTriggerPx: '', slTriggerPxType: '', slOrdPx: '',
      attachAlgoOrds: [], stpId: '', stpMode: '', feeCcy: o.feeCurrency, fee: o.fee === '0' ? '0' : D.neg(o.fee), rebateCcy: o.feeCurrency, rebate: '0',
      source: '', tgtCcy: '', category: 'normal', reduceOnly: String(o.reduceOnly), isTpLimit: 'false', cancelSource: '', quickMgnType: '',
      algoClOrdId: '', algoId: '', uTime: String(o.updatedAt), cTime: String(o.createdAt),
    };
  }

  function fillJson(f: FakeFill) {
    const m = engine.market(f.symbol);
    return { instType: instType(m), instId: instId(m), tradeId: f.id, ordId: f.orderId, clOrdId: f.clientOrderId, billId: f.id, subType: '1', tag: '', fillPx: f.price, fillSz: f.amount, fillIdxPx: '', fillPnl: f.realizedPnl, fillPxVol: '', fillPxUsd: '', fillMarkVol: '', fillFwdPx: '', fillMarkPx: '', side: f.side, posSide: 'net', execType: f.maker ? 'M' : 'T', feeCcy: f.feeCurrency, fee: D.neg(f.fee), ts: String(f.timestamp), fillTime: String(f.timestamp) };
  }

  function tickerJson(m: FakeMarket) {
    const last = engine.price(m.symbol);
    const ts = String(engine.now());
    return { instType: instType(m), instId: instId(m), last, lastSz: '0.01', askPx: D.add(last, m.tickSize), askSz: '1', bidPx: D.sub(last, m.tickSize), bidSz: '1', open24h: last, high24h: D.add(last, '100'), low24h: D.sub(last, '100'), volCcy24h: D.mul(last, '1000'), vol24h: '1000', sodUtc0: last, sodUtc8: last, ts };
  }

  function candleRows(m: FakeMarket, bar: string, limit: number) {
    const tf = BARS[bar] ?? 60_000;
    const rows = engine.ohlcv(m.symbol, tf, undefined, limit);
    // OKX lists candles newest first; the last one is still open (confirm "0").
    return rows.map(([t, o, h, l, c, v], i) => [String(t), o, h, l, c, v, D.mul(v, c), D.mul(v, c), i === rows.length - 1 ? '0' : '1']).reverse();
  }

  function authenticate(req: FakeRequest): FakeResponse | undefined {
    const key = header(req.headers, 'ok-access-key');
    if (!key || !safeEqual(key, credentials.apiKey)) return fail(401, '50111', 'Invalid OK-ACCESS-KEY');
    const passphrase = header(req.headers, 'ok-access-passphrase');
    if (!passphrase || !safeEqual(passphrase, credentials.passphrase ?? '')) return fail(401, '50105', 'Your OK-ACCESS-PASSPHRASE is incorrect');
    const ts = header(req.headers, 'ok-access-timestamp') ?? '';
    const sign = header(req.headers, 'ok-access-sign') ?? '';
    const requestPath = req.path + (req.rawQuery ? `?${req.rawQuery}` : '');
    const expected = hmacBase64(credentials.secret, ts + req.method + requestPath + req.body);
    if (!safeEqual(sign, expected)) return fail(401, '50113', 'Invalid Sign');
    return undefined;
  }

  function rejection(e: Rejection, clOrdId = ''): FakeResponse {
    switch (e.kind) {
      case 'insufficient':
        return orderFail('51008', 'Order failed. Insufficient USDT balance in account.', clOrdId);
      case 'minQty':
      case 'minNotional':
        return orderFail('51020', 'Your order should meet or exceed the minimum order amount.', clOrdId);
      case 'stepSize':
        return orderFail('51121', 'Order count should be the integer multiples of the lot size', clOrdId);
      case 'tickSize':
        return orderFail('51000', 'Parameter px error', clOrdId);
      case 'duplicate':
        return orderFail('51016', 'Duplicated client order ID', clOrdId);
      case 'notFound':
        return fail(200, '51603', 'Order does not exist');
      case 'badSymbol':
        return fail(200, '51001', e.message);
      default:
        return orderFail('51000', `Parameter error: ${e.message}`, clOrdId);
    }
  }

  function placeOne(p: Record<string, any>) {
    const m = byInstId(p.instId);
    let amount = String(p.sz ?? '0');
    if (p.ordType === 'market' && p.side === 'buy' && p.tgtCcy === 'quote_ccy') {
      const raw = D.div(amount, engine.price(m.symbol));
      amount = D.sub(raw, D.mod(raw, m.stepSize));
    }
    if (p.ordType !== 'market' && p.ordType !== 'limit') throw new Rejection('badParam', `ordType ${p.ordType}`);
    const order = engine.place({
      symbol: m.symbol,
      side: p.side === 'sell' ? 'sell' : 'buy',
      type: p.ordType,
      amount,
      price: p.px === undefined ? undefined : String(p.px),
      clientOrderId: p.clOrdId || undefined,
      reduceOnly: p.reduceOnly === true || p.reduceOnly === 'true',
    });
    return { clOrdId: order.clientOrderId, ordId: order.id, tag: p.tag ?? '', ts: String(order.createdAt), sCode: '0', sMsg: 'Order placed' };
  }

  function balanceJson() {
    const rows = [...engine.balances.spot.entries()];
    const details = rows.map(([ccy, b]) => {
      const eq = D.add(b.free, b.locked);
      return { ccy, eq, cashBal: eq, uTime: String(engine.now()), isoEq: '0', availEq: b.free, disEq: eq, availBal: b.free, frozenBal: b.locked, ordFrozen: b.locked, liab: '0', upl: '0', uplLiab: '0', crossLiab: '0', isoLiab: '0', mgnRatio: '', interest: '0', twap: '0', maxLoan: '', eqUsd: eq, notionalLever: '', stgyEq: '0', isoUpl: '' };
    });
    return [{ adjEq: '', borrowFroz: '', imr: '', isoEq: '0', mgnRatio: '', mmr: '', notionalUsd: '', ordFroz: '', totalEq: '0', uTime: String(engine.now()), upl: '0', details }];
  }

  function positionsJson(filter?: string) {
    return [...engine.positions.values()]
      .filter((p) => !D.eq(p.contracts, '0'))
      .map((p) => {
        const m = engine.market(p.symbol);
        const mark = engine.price(p.symbol);
        const base = D.mul(p.contracts, m.contractSize);
        const upl = D.mul(D.sub(mark, p.entryPrice), base);
        const imr = D.div(D.abs(D.mul(base, mark)), p.leverage);
        return { adl: '1', availPos: '', avgPx: p.entryPrice, cTime: '1700000000000', ccy: m.quote, deltaBS: '', deltaPA: '', gammaBS: '', gammaPA: '', imr, instId: instId(m), instType: 'SWAP', interest: '0', idxPx: mark, last: mark, usdPx: '', bePx: p.entryPrice, lever: p.leverage, liab: '', liabCcy: '', liqPx: '', markPx: mark, margin: '', mgnMode: 'cross', mgnRatio: '', mmr: D.mul(imr, '0.1'), notionalUsd: D.abs(D.mul(base, mark)), optVal: '', pendingCloseOrdLiabVal: '', pos: p.contracts, posCcy: '', posId: `pos-${instId(m)}`, posSide: 'net', spotInUseAmt: '', spotInUseCcy: '', thetaBS: '', thetaPA: '', tradeId: '', bizRefId: '', bizRefType: '', quoteBal: '', baseBal: '', baseBorrowed: '', baseInterest: '', quoteBorrowed: '', quoteInterest: '', uTime: String(engine.now()), upl, uplLastPx: upl, uplRatio: '0', uplRatioLastPx: '0', vegaBS: '', vegaPA: '', realizedPnl: p.realizedPnl, pnl: p.realizedPnl, fee: '0', fundingFee: '0', liqPenalty: '', closeOrderAlgo: [] };
      })
      .filter((p) => !filter || filter.split(',').includes(p.instId));
  }

  function handle(req: FakeRequest): FakeResponse {
    const endpoint = req.path.replace(/^\/api\/v5\//, '');
    const q = req.query;
    try {
      switch (`${req.method} ${endpoint}`) {
        case 'GET public/time':
          return ok([{ ts: String(engine.now()) }]);
        case 'GET public/instruments': {
          const type = q.get('instType');
          return ok([...engine.markets.values()].filter((m) => instType(m) === type).map(instrument));
        }
        case 'GET public/underlying':
          return ok([[]]);
        case 'GET market/ticker':
          return ok([tickerJson(byInstId(q.get('instId')))]);
        case 'GET market/candles':
        case 'GET market/history-candles':
          return ok(candleRows(byInstId(q.get('instId')), q.get('bar') ?? '1m', Math.min(Number(q.get('limit') ?? 100), 300)));
      }
      const denied = authenticate(req);
      if (denied) return denied;
      const body = jsonBody(req.body);
      switch (`${req.method} ${endpoint}`) {
        case 'GET account/config':
          return ok([{ uid: '44705892343619584', mainUid: '44705892343619584', acctLv: '2', acctStpMode: 'cancel_maker', posMode: 'net_mode', autoLoan: false, greeksType: 'PA', level: 'Lv1', levelTmp: '', ctIsoMode: 'automatic', mgnIsoMode: 'automatic', spotOffsetType: '', roleType: '0', traderInsts: [], spotRoleType: '0', spotTraderInsts: [], opAuth: '0', kycLv: '2', label: 'fake', ip: '', perm: ['read_only', ctx.permissions.trade ? 'trade' : '', ctx.permissions.withdraw ? 'withdraw' : ''].filter(Boolean).join(','), liquidationGear: '-1', enableSpotBorrow: false, spotBorrowAutoRepay: false, type: '0' }]);
        case 'GET asset/currencies':
          return ok([...new Set([...engine.markets.values()].flatMap((m) => [m.base, m.quote]))].map((ccy) => ({ ccy, chain: `${ccy}-${ccy}`, name: ccy, logoLink: '', canDep: true, canWd: true, canInternal: true, minDep: '0.00000001', minWd: '0.001', maxWd: '9000', wdTickSz: '8', wdQuota: '10000000', usedWdQuota: '0', minFee: '0.0001', maxFee: '0.0002', mainNet: true, needTag: false, minDepArrivalConfirm: '1', minWdUnlockConfirm: '2', depQuotaFixed: '', usedDepQuotaFixed: '', depQuoteDailyLayer2: '', burningFeeRate: '', ctAddr: '', depEstOpenTime: '', wdEstOpenTime: '', minInternal: '0', minFeeForCtAddr: '', maxFeeForCtAddr: '' })));
        case 'GET account/balance':
          return ok(balanceJson());
        case 'GET account/positions':
          return ok(positionsJson(q.get('instId') ?? undefined));
        case 'POST trade/order':
        case 'POST trade/batch-orders': {
          const list: Record<string, any>[] = Array.isArray(JSON.parse(req.body || '[]')) ? JSON.parse(req.body) : [body];
          const results = [];
          for (const p of list) {
            try {
              results.push(placeOne(p));
            } catch (e) {
              if (e instanceof Rejection) return rejection(e, p.clOrdId);
              throw e;
            }
          }
          return { status: 200, body: { code: '0', msg: '', data: results, inTime: '', outTime: '' } };
        }
        case 'POST trade/cancel-order': {
          const m = byInstId(body.instId);
          try {
            const o = engine.cancel(m.symbol, body.ordId, body.clOrdId);
            return ok([{ clOrdId: o.clientOrderId, ordId: o.id, ts: String(o.updatedAt), sCode: '0', sMsg: '' }]);
          } catch (e) {
            if (e instanceof Rejection && e.kind === 'notFound') return orderFail('51400', 'Order cancellation failed as the order has been filled, canceled or does not exist.', body.clOrdId);
            throw e;
          }
        }
        case 'GET trade/order': {
          const m = byInstId(q.get('instId'));
          return ok([orderJson(engine.findOrder(m.symbol, q.get('ordId') ?? undefined, q.get('clOrdId') ?? undefined))]);
        }
        case 'GET trade/orders-pending': {
          const id = q.get('instId');
          const type = q.get('instType');
          return ok(
            engine
              .openOrders(id ? byInstId(id).symbol : undefined)
              .filter((o) => !type || instType(engine.market(o.symbol)) === type)
              .reverse()
              .map(orderJson),
          );
        }
        case 'GET trade/fills-history':
        case 'GET trade/fills': {
          const id = q.get('instId');
          return ok(engine.fills.filter((f) => !id || instId(engine.market(f.symbol)) === id).reverse().map(fillJson));
        }
        default:
          return fail(404, '50000', `fake okx: no route ${req.method} ${req.path}`);
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
    const arg = { channel: sub.channel, instId: instId(m) };
    if (sub.channel === 'tickers') return { arg, data: [tickerJson(m)] };
    if (sub.channel === 'trades') {
      return { arg, data: [{ instId: instId(m), tradeId: engine.nextId(), px: event.price, sz: '0.01', side: 'buy', ts: String(engine.now()), count: '1' }] };
    }
    const bar = sub.channel.slice('candle'.length);
    return { arg, data: candleRows(m, bar, 1) };
  }

  function onWsConnection(socket: WebSocket): void {
    socket.on('message', (data) => {
      const text = String(data);
      if (text === 'ping') return socket.send('pong');
      let msg: { op?: string; args?: Array<{ channel: string; instId: string }>; id?: string };
      try {
        msg = JSON.parse(text);
      } catch {
        return;
      }
      if (msg.op !== 'subscribe') return;
      for (const arg of msg.args ?? []) {
        const m = [...engine.markets.values()].find((x) => instId(x) === arg.instId);
        if (!m || !/^(tickers|trades|candle\w+)$/.test(arg.channel)) {
          socket.send(JSON.stringify({ event: 'error', code: '60018', msg: `Wrong URL or channel:${arg.channel},instId:${arg.instId} doesn't exist`, connId: 'fake' }));
          continue;
        }
        hub.add(socket, { channel: arg.channel, symbol: m.symbol });
        socket.send(JSON.stringify({ ...(msg.id ? { id: msg.id } : {}), event: 'subscribe', arg, connId: 'fake' }));
      }
    });
  }

  return {
    handle,
    onWsConnection,
    authError: () => fail(401, '50111', 'Invalid OK-ACCESS-KEY'),
    rateLimited: (retryAfter) => ({ status: 429, headers: { 'retry-after': String(retryAfter) }, body: { msg: 'Too Many Requests', code: '50011' } }),
    serverError: (status) => fail(status, '50026', 'System error. Try again later.'),
  };
}

