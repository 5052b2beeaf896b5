import { z } from 'zod';

export { TIMEFRAMES } from '../../shared/timeframes.js';
import { TIMEFRAMES } from '../../shared/timeframes.js';

const Decimal = z.string().describe('Decimal string');
const MinMax = z.object({ min: Decimal.optional(), max: Decimal.optional() });
const Exchange = z.enum(['binance', 'bitget', 'okx']).describe('Exchange id');
const Symbol = z.string().trim().min(3).max(40).describe('Unified symbol: BTC/USDT (spot) or BTC/USDT:USDT (swap)');

export const SymbolsQuery = z.object({
  exchange: Exchange,
  marketType: z.enum(['spot', 'swap']).default('spot'),
});

export const TickerQuery = z.object({ exchange: Exchange, symbol: Symbol });

export const OhlcvQuery = z.object({
  exchange: Exchange,
  symbol: Symbol,
  timeframe: z.enum(TIMEFRAMES),
  since: z.coerce.number().int().min(0).optional().describe('Open time of the first candle, ms since epoch'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const MarketView = z
  .object({
    symbol: z.string(),
    id: z.string(),
    base: z.string(),
    quote: z.string(),
    settle: z.string().nullable(),
    type: z.enum(['spot', 'swap']),
    active: z.boolean(),
    contractSize: Decimal.nullable(),
    precision: z.object({ amount: Decimal.optional(), price: Decimal.optional() }),
    limits: z.object({ amount: MinMax, price: MinMax, cost: MinMax }),
  })
  .meta({ id: 'Market' });

export const SymbolsView = z.object({ exchange: Exchange, marketType: z.enum(['spot', 'swap']), items: z.array(MarketView) });

export const TickerView = z
  .object({
    exchange: Exchange,
    symbol: z.string(),
    timestamp: z.number().int().nullable(),
    last: Decimal.nullable(),
    bid: Decimal.nullable(),
    ask: Decimal.nullable(),
    high: Decimal.nullable(),
    low: Decimal.nullable(),
    baseVolume: Decimal.nullable(),
    quoteVolume: Decimal.nullable(),
  })
  .meta({ id: 'Ticker' });

export const OhlcvView = z
  .object({
    exchange: Exchange,
    symbol: z.string(),
    timeframe: z.enum(TIMEFRAMES),
    candles: z.array(
      z.object({ timestamp: z.number().int().describe('Open time, ms'), open: Decimal, high: Decimal, low: Decimal, close: Decimal, volume: Decimal }),
    ),
  })
  .meta({ id: 'Ohlcv' });
