/**
 * The client → server messages of the realtime WebSocket (`GET /ws`), validated with zod. Server → client messages
 * are plain objects built in connection.ts; every one carries a `type` (see docs/websocket.md).
 */
import { z } from 'zod';
import { EXCHANGE_IDS } from '../exchanges/index.js';

export const MARKET_CHANNELS = ['ticker', 'trades', 'candles'] as const;
export const USER_CHANNELS = ['orders', 'fills', 'bots', 'backtests'] as const;
export const CHANNELS = [...MARKET_CHANNELS, ...USER_CHANNELS] as const;
export type MarketChannel = (typeof MARKET_CHANNELS)[number];
export type UserChannel = (typeof USER_CHANNELS)[number];
export type Channel = (typeof CHANNELS)[number];

export type { Timeframe } from '../../shared/timeframes.js';
import { TIMEFRAMES } from '../../shared/timeframes.js';

/**
 * Which bus events (topic `user:<id>`) each user channel forwards, by event type prefix:
 * `order.updated` → orders, `trade.filled` → fills, `bot.event` → bots, `backtest.progress|completed` → backtests.
 */
export const USER_CHANNEL_PREFIX: Record<UserChannel, string> = {
  orders: 'order.',
  fills: 'trade.',
  bots: 'bot.',
  backtests: 'backtest.',
};

export const OPS = ['auth', 'subscribe', 'unsubscribe', 'ping', 'pong'] as const;

/** An optional client-chosen id, echoed in the ack or error of that message. */
const RequestId = z.union([z.string().max(64), z.number().int()]).optional();

export const Envelope = z.object({ op: z.enum(OPS), id: RequestId });

export const AuthMessage = z.strictObject({ op: z.literal('auth'), id: RequestId, token: z.string().min(1).max(4096) });

/** Unified ccxt symbol: `BTC/USDT` (spot) or `BTC/USDT:USDT` (USDT-margined swap). */
const Symbol = z
  .string()
  .regex(/^[A-Z0-9]{1,20}\/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$/, 'must be a unified symbol like BTC/USDT or BTC/USDT:USDT');

export const MarketSubscription = z
  .strictObject({
    op: z.enum(['subscribe', 'unsubscribe']),
    id: RequestId,
    channel: z.enum(MARKET_CHANNELS),
    exchange: z.enum(EXCHANGE_IDS),
    symbol: Symbol,
    timeframe: z.enum(TIMEFRAMES).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.channel === 'candles' && m.timeframe === undefined) {
      ctx.addIssue({ code: 'custom', path: ['timeframe'], message: 'candles need a timeframe' });
    }
    if (m.channel !== 'candles' && m.timeframe !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['timeframe'], message: `${m.channel} takes no timeframe` });
    }
  });
export type MarketSubscription = z.output<typeof MarketSubscription>;

export const UserSubscription = z.strictObject({
  op: z.enum(['subscribe', 'unsubscribe']),
  id: RequestId,
  channel: z.enum(USER_CHANNELS),
});
export type UserSubscription = z.output<typeof UserSubscription>;

export const ChannelOnly = z.object({ channel: z.enum(CHANNELS) });

export const PingMessage = z.strictObject({ op: z.enum(['ping', 'pong']), id: RequestId });

/** The field a zod error is about: the first issue's path, or the first unrecognized key. */
export function offendingField(error: z.ZodError): string | undefined {
  const issue = error.issues[0];
  if (!issue) return undefined;
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) return [...issue.path, issue.keys[0]].join('.');
  return issue.path.length > 0 ? issue.path.join('.') : undefined;
}
