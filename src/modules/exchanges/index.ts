/**
 * Exchange access layer: one `ExchangeAdapter` interface, implemented over ccxt (binance, bitget, okx) and by a
 * paper exchange. Other modules import from here.
 */
export * from './types.js';
export { dec, toDecimal, isDecimal } from './decimal.js';
export { createCcxtAdapter, verifyCredentials, type CcxtAdapterOptions, type ExchangeCredentials } from './ccxt-adapter.js';
export { parseExchangeUrls, applyUrlOverrides, rebaseUrl, type ExchangeUrls, type UrlOverride } from './urls.js';
export {
  mapExchangeError,
  isOrderOutcomeUnknown,
  OrderOutcomeUnknownError,
  outcomeOf,
  scrubMessage,
  type CallOutcome,
} from './errors.js';
export {
  createPaperAdapter,
  createMemoryPaperStore,
  type PaperAdapter,
  type PaperAdapterOptions,
  type PaperPriceSource,
  type PaperState,
  type PaperStore,
} from './paper-adapter.js';
export { createAdapterCache, type AdapterCache, type AdapterCacheOptions } from './adapter-cache.js';

