/**
 * Loopback fake of Binance / Bitget / OKX that speaks their real REST (and WebSocket) wire formats, so the real ccxt
 * library can be tested offline: point ccxt's URLs at `url` / `wsUrl` (createCcxtAdapter's `urls` option).
 *
 *   const fake = await startFakeExchange({ exchange: 'binance' });
 *   fake.engine.setBalance('USDT', '1000');            // spot wallet; ('USDT', '1000', 'swap') for futures
 *   fake.engine.setPrice('BTC/USDT', '50000');         // fills resting limits it crosses, pushes WS updates
 *   fake.engine.limitMode = 'rest';                    // 'auto' (fill when marketable) | 'rest' | 'fill'
 *   fake.failNext({ kind: 'timeout', method: 'POST' }); // order recorded, never answered
 *   fake.orders();                                     // every order the exchange holds
 *   await fake.close();
 *
 * Signed requests are checked against `credentials` (HMAC-SHA256 per exchange scheme, plus the passphrase for
 * OKX/Bitget) and refused with the exchange's own auth error. Client order ids are unique as on the exchange.
 * Binance WebSocket streams serve spot markets (after URL rewriting the path no longer tells spot from futures).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { createBinanceDialect } from './binance.js';
import { createBitgetDialect } from './bitget.js';
import { createOkxDialect } from './okx.js';
import { DEFAULT_MARKETS, Engine, type EngineOptions, type FakeMarket, type FakeOrder } from './engine.js';
import type { Credentials, Dialect, DialectContext, FakeExchangeId, FakeRequest, FakeResponse } from './types.js';

export { Engine, DEFAULT_MARKETS } from './engine.js';
export type { FakeMarket, FakeOrder, FakeFill, FakePosition, LimitMode } from './engine.js';
export type { FakeExchangeId, Credentials } from './types.js';

export type FaultKind =
  /** Process the request (e.g. record the order) but never answer it. */
  | 'timeout'
  /** Process the request and answer after `delayMs`. */
  | 'delay'
  /** 429 with the exchange's rate-limit body and a Retry-After header. */
  | 'rateLimit'
  /** 5xx (default 503) without processing. */
  | 'serverError'
  /** The exchange's invalid-key body, as if the key were revoked. */
  | 'auth';

export interface Fault {
  kind: FaultKind;
  /** Matches when the request path contains this string (or matches the RegExp). Any path when omitted. */
  path?: string | RegExp;
  method?: string;
  retryAfterSeconds?: number;
  status?: number;
  delayMs?: number;
}

export interface StartFakeExchangeOptions extends EngineOptions {
  exchange: FakeExchangeId;
  credentials?: Partial<Credentials>;
  permissions?: { trade?: boolean; withdraw?: boolean };
}

export interface RequestLogEntry {
  method: string;
  path: string;
}

export interface FakeExchange {
  exchange: FakeExchangeId;
  /** `http://127.0.0.1:<port>`: use as the REST override. */
  url: string;
  /** `ws://127.0.0.1:<port>`: use as the WebSocket override. */
  wsUrl: string;
  credentials: Credentials;
  engine: Engine;
  /** Orders the exchange holds (all states). */
  orders(): FakeOrder[];
  /** Every request received, in order. */
  requests: RequestLogEntry[];
  /** Injects a fault into the NEXT request matching it. Faults queue in order. */
  failNext(fault: Fault): void;
  /** Number of WebSocket clients connected now. */
  wsClients(): number;
  /** Drops every WebSocket connection (as an exchange does on maintenance or after 24 h). */
  dropWsConnections(): void;
  close(): Promise<void>;
}

export const DEFAULT_CREDENTIALS: Credentials = {
  apiKey: 'fake-api-key-0123456789',
  secret: 'fake-secret-abcdefghijklmnop',
  passphrase: 'fake-passphrase',
};

const DIALECTS: Record<FakeExchangeId, (ctx: DialectContext) => Dialect> = {
  binance: createBinanceDialect,
  okx: createOkxDialect,
  bitget: createBitgetDialect,
};

/** Market definitions shaped like each exchange's (OKX swaps trade in 0.01 BTC contracts). */
function defaultMarkets(exchange: FakeExchangeId): FakeMarket[] {
  if (exchange !== 'okx') return DEFAULT_MARKETS;
  return DEFAULT_MARKETS.map((m) =>
    m.type === 'swap' ? { ...m, contractSize: m.base === 'BTC' ? '0.01' : '0.1', stepSize: '0.01', minQty: '0.01', maxQty: '100000' } : m,
  );
}

export async function startFakeExchange(opts: StartFakeExchangeOptions): Promise<FakeExchange> {
  const engine = new Engine({
    markets: defaultMarkets(opts.exchange),
    unifiedAccount: opts.exchange === 'okx',
    ...opts,
  });
  const credentials: Credentials = { ...DEFAULT_CREDENTIALS, ...opts.credentials };
  const ctx: DialectContext = {
    engine,
    credentials,
    permissions: { trade: opts.permissions?.trade ?? true, withdraw: opts.permissions?.withdraw ?? false },
  };
  const dialect = DIALECTS[opts.exchange](ctx);
  const faults: Fault[] = [];
  const requests: RequestLogEntry[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const takeFault = (req: FakeRequest): Fault | undefined => {
    const index = faults.findIndex(
      (f) =>
        (f.method === undefined || f.method.toUpperCase() === req.method) &&
        (f.path === undefined || (typeof f.path === 'string' ? req.path.includes(f.path) : f.path.test(req.path))),
    );
    return index === -1 ? undefined : faults.splice(index, 1)[0];
  };

  const send = (res: ServerResponse, out: FakeResponse) => {
    if (res.writableEnded || res.destroyed) return;
    const body = typeof out.body === 'string' ? out.body : JSON.stringify(out.body);
    res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers });
    res.end(body);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = req.url ?? '/';
      const q = raw.indexOf('?');
      const request: FakeRequest = {
        method: (req.method ?? 'GET').toUpperCase(),
        path: q === -1 ? raw : raw.slice(0, q),
        rawQuery: q === -1 ? '' : raw.slice(q + 1),
        query: new URLSearchParams(q === -1 ? '' : raw.slice(q + 1)),
        body: Buffer.concat(chunks).toString('utf8'),
        headers: req.headers,
      };
      requests.push({ method: request.method, path: request.path });
      const fault = takeFault(request);
      if (fault?.kind === 'rateLimit') return send(res, dialect.rateLimited(fault.retryAfterSeconds ?? 7));
      if (fault?.kind === 'serverError') return send(res, dialect.serverError(fault.status ?? 503));
      if (fault?.kind === 'auth') return send(res, dialect.authError());

      let out: FakeResponse;
      try {
        out = dialect.handle(request);
      } catch (err) {
        out = { status: 500, body: { error: String(err) } };
      }
      if (fault?.kind === 'timeout') return; // accepted and processed, never answered (socket destroyed on close)
      if (fault?.kind === 'delay') {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send(res, out);
        }, fault.delayMs ?? 5_000);
        timers.add(timer);
        return;
      }
      send(res, out);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket, req) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (dialect.onWsConnection) dialect.onWsConnection(socket, path);
    else socket.close(1008, 'no websocket on this fake');
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    exchange: opts.exchange,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    credentials,
    engine,
    orders: () => [...engine.orders],
    requests,
    failNext: (fault) => void faults.push(fault),
    wsClients: () => wss.clients.size,
    dropWsConnections: () => {
      for (const client of wss.clients) client.terminate();
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
