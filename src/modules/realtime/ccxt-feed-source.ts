/**
 * Upstream feeds over the exchanges module: each feed gets its own public (credential-less) ccxt adapter, so closing
 * the feed closes its exchange WebSocket connection and with it the subscription at the exchange (ccxt.pro keeps a
 * subscription for as long as its connection lives). The hub guarantees one feed per (exchange, channel, symbol[, tf]).
 */
import { createCcxtAdapter, type ExchangeAdapter, type ExchangeUrls } from '../exchanges/index.js';
import type { FeedHandle, FeedKey, FeedSource } from './feed-hub.js';

export interface CcxtFeedSourceOptions {
  /** Parsed EXCHANGE_URLS (REST and WebSocket overrides). */
  urls: ExchangeUrls;
  timeoutMs?: number;
  /** For tests and alternative transports; defaults to `createCcxtAdapter`. */
  createAdapter?: (key: FeedKey) => ExchangeAdapter;
}

export function ccxtFeedSource(opts: CcxtFeedSourceOptions): FeedSource {
  const createAdapter =
    opts.createAdapter ??
    ((key: FeedKey) =>
      createCcxtAdapter({
        exchange: key.exchange,
        marketType: key.symbol.includes(':') ? 'swap' : 'spot',
        urls: opts.urls[key.exchange],
        timeoutMs: opts.timeoutMs,
      }));

  return {
    async open(key): Promise<FeedHandle> {
      const adapter = createAdapter(key);
      try {
        await adapter.market(key.symbol); // loads markets; 4xx problem for a symbol the exchange does not list
      } catch (err) {
        await adapter.close().catch(() => undefined);
        throw err;
      }
      const stream =
        key.channel === 'ticker'
          ? adapter.watchTicker(key.symbol)
          : key.channel === 'trades'
            ? adapter.watchTrades(key.symbol)
            : adapter.watchOHLCV(key.symbol, key.timeframe ?? '1m');
      return {
        stream,
        async close() {
          await stream.close().catch(() => undefined);
          await adapter.close().catch(() => undefined);
        },
      };
    },
  };
}
