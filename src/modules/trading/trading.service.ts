/**
 * Adapter resolution for trading routes: a request names `keyId` (a saved exchange key's id, or `paper`) and gets the
 * live adapter for it. ccxt clients are cached per key record (markets loaded once, reloaded on a schedule, closed on
 * shutdown); paper accounts are per user and market type, persisted in the database, priced by the public ticker of
 * PAPER_PRICE_EXCHANGE. Public (unauthenticated) adapters serve market data.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { badRequest } from '../../errors.js';
import type { KeysService } from '../account/keys.service.js';
import {
  EXCHANGE_IDS,
  createAdapterCache,
  createCcxtAdapter,
  createPaperAdapter,
  dec,
  parseExchangeUrls,
  type Decimal,
  type ExchangeAdapter,
  type ExchangeId,
  type MarketType,
  type PaperAdapter,
  type Ticker,
} from '../exchanges/index.js';
import { createDbPaperStore, paperAccountId } from './paper-store.js';
import { createTtlCache } from './ttl-cache.js';

export const PAPER_KEY_ID = 'paper';

export interface ResolvedAccount {
  keyId: string;
  exchange: ExchangeId | 'paper';
  marketType: MarketType;
  adapter: ExchangeAdapter;
  /** Set for paper accounts. */
  paper?: PaperAdapter;
}

/** Hook point for the kill switch: the bots module installs a check that throws 423 while trading is locked. */
export interface TradingGuard {
  assertAllowed(userId: string): Promise<void>;
  setCheck(check: (userId: string) => Promise<void> | void): void;
}

export function createTradingGuard(): TradingGuard {
  let check: (userId: string) => Promise<void> | void = () => undefined;
  return {
    async assertAllowed(userId) {
      await check(userId);
    },
    setCheck(next) {
      check = next;
    },
  };
}

/** Parses PAPER_START_BALANCES (`USDT=10000,BTC=0.5`). */
export function parseStartBalances(raw: string): Record<string, Decimal> {
  const out: Record<string, Decimal> = {};
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [currency, amount] = part.split('=').map((s) => s.trim());
    if (!currency || amount === undefined || !/^\d+(\.\d+)?$/.test(amount)) {
      throw new Error(`PAPER_START_BALANCES: "${part}" is not CURRENCY=amount`);
    }
    out[currency.toUpperCase()] = dec.normalize(amount);
  }
  return out;
}

export const isExchangeId = (v: string): v is ExchangeId => (EXCHANGE_IDS as readonly string[]).includes(v);
export const marketTypeOf = (symbol: string): MarketType => (symbol.includes(':') ? 'swap' : 'spot');

export function createTradingService(deps: { db: Db; config: Config; keys: KeysService; log: FastifyBaseLogger }) {
  const { config, keys, log } = deps;
  const ex = config.exchanges;
  const urls = parseExchangeUrls(ex.urls);
  const startBalances = parseStartBalances(ex.paperStartBalances);
  const onReloadError = (keyId: string, err: unknown) =>
    log.warn({ keyId, err: (err as Error).message }, 'scheduled market reload failed; keeping the old markets');
  const keyAdapters = createAdapterCache({ reloadMarketsMs: ex.marketsReloadMs, onReloadError });
  const publicAdapters = createAdapterCache({ reloadMarketsMs: ex.marketsReloadMs, onReloadError });
  const paperAdapters = new Map<string, Promise<PaperAdapter>>();
  const paperStore = createDbPaperStore(deps.db);
  const marketData = createTtlCache(ex.marketCacheTtlMs);

  function publicAdapter(exchange: ExchangeId, marketType: MarketType): Promise<ExchangeAdapter> {
    return publicAdapters.get(`public:${exchange}:${marketType}`, () =>
      createCcxtAdapter({ exchange, marketType, urls: urls[exchange], timeoutMs: ex.timeoutMs }),
    );
  }

  /** Public ticker through the short in-process cache. */
  async function ticker(exchange: ExchangeId, marketType: MarketType, symbol: string): Promise<Ticker> {
    const adapter = await publicAdapter(exchange, marketType);
    return marketData.get(`ticker:${exchange}:${symbol}`, () => adapter.fetchTicker(symbol));
  }

  function paperAdapter(userId: string, marketType: MarketType): Promise<PaperAdapter> {
    const accountId = paperAccountId(userId, marketType);
    let adapter = paperAdapters.get(accountId);
    if (!adapter) {
      adapter = (async () => {
        const source = await publicAdapter(ex.paperPriceExchange, marketType);
        const markets = Object.values(await source.loadMarkets());
        return createPaperAdapter({
          accountId,
          store: paperStore,
          marketType,
          markets,
          startingBalances: startBalances,
          feeBps: ex.paperFeeBps,
          slippageBps: ex.paperSlippageBps,
          prices: {
            getPrice: async (symbol) => (await ticker(ex.paperPriceExchange, marketType, symbol)).last,
            fetchOHLCV: (symbol, timeframe, range) => source.fetchOHLCV(symbol, timeframe, range),
          },
        });
      })();
      paperAdapters.set(accountId, adapter);
      adapter.catch(() => paperAdapters.delete(accountId));
    }
    return adapter;
  }

  return {
    guard: createTradingGuard(),
    marketData,
    publicAdapter,
    ticker,

    /**
     * The adapter for `keyId` of `userId`: a saved key (another user's key answers 404) or `paper` (whose market type
     * comes from `marketType`, default spot).
     */
    async resolve(userId: string, keyId: string, opts: { marketType?: MarketType } = {}): Promise<ResolvedAccount> {
      if (keyId === PAPER_KEY_ID) {
        const marketType = opts.marketType ?? 'spot';
        const paper = await paperAdapter(userId, marketType);
        return { keyId, exchange: 'paper', marketType, adapter: paper, paper };
      }
      if (!/^[0-9a-f-]{36}$/i.test(keyId)) throw badRequest('keyId must be a saved key id or "paper"', 'INVALID_KEY_ID');
      return keys.withCredentials(userId, keyId, async (c) => {
        const adapter = await keyAdapters.get(keyId, () =>
          createCcxtAdapter({
            exchange: c.exchange,
            marketType: c.marketType,
            sandbox: c.sandbox,
            credentials: { apiKey: c.apiKey, secret: c.secret, passphrase: c.passphrase },
            urls: urls[c.exchange],
            timeoutMs: ex.timeoutMs,
          }),
        );
        return { keyId, exchange: c.exchange, marketType: c.marketType, adapter };
      });
    },

    /** Feeds the live price to a paper account's resting limit orders (those it crosses fill). */
    async refreshPaper(paper: PaperAdapter): Promise<void> {
      const open = await paper.fetchOpenOrders();
      for (const symbol of new Set(open.map((o) => o.symbol))) {
        const last = (await ticker(ex.paperPriceExchange, paper.marketType, symbol)).last;
        if (last !== undefined) await paper.onPrice(symbol, last);
      }
    },

    /** Forgets the cached client of a key (after it was deleted or rotated). */
    evictKey: (keyId: string) => keyAdapters.evict(keyId),

    async close(): Promise<void> {
      const papers = await Promise.allSettled([...paperAdapters.values()]);
      await Promise.all(papers.map((p) => (p.status === 'fulfilled' ? p.value.close() : undefined)));
      paperAdapters.clear();
      await Promise.all([keyAdapters.closeAll(), publicAdapters.closeAll()]);
      marketData.clear();
    },
  };
}

export type TradingService = ReturnType<typeof createTradingService>;
