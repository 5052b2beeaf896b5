import { z } from 'zod';
import { CursorQuery, pageOf } from '../../shared/pagination.js';

const decimal = z.string().regex(/^\d+(\.\d+)?$/, 'a positive decimal string, e.g. "0.001"').max(40);
const Decimal = z.string().describe('Decimal string');

export const KeyIdRef = z
  .string()
  .trim()
  .refine((v) => v === 'paper' || z.uuid().safeParse(v).success, 'a saved key id (uuid) or "paper"')
  .describe('A saved exchange key id, or `paper` for the paper account');

export const CLIENT_ORDER_ID_RE = /^[A-Za-z0-9]{1,32}$/;

export const SubmitOrderBody = z
  .object({
    keyId: KeyIdRef,
    symbol: z.string().trim().min(3).max(40).describe('Unified symbol: BTC/USDT (spot) or BTC/USDT:USDT (swap)'),
    side: z.enum(['buy', 'sell']),
    type: z.enum(['market', 'limit']),
    amount: decimal.describe('Base amount (spot) or contracts (swap), decimal string'),
    price: decimal.optional().describe('Limit price, decimal string (required for limit orders)'),
    reduceOnly: z.boolean().optional(),
    clientOrderId: z
      .string()
      .regex(CLIENT_ORDER_ID_RE, 'letters and digits only, 1-32 characters')
      .optional()
      .describe('Idempotency key: the same id never places a second order (generated when omitted)'),
    botId: z.uuid().optional().describe('The bot placing the order, if any'),
  })
  .refine((b) => b.type !== 'limit' || b.price !== undefined, { path: ['price'], message: 'a limit order needs a price' });
export type SubmitOrderBody = z.infer<typeof SubmitOrderBody>;

export const OrderStatus = z.enum(['pending', 'open', 'closed', 'canceled', 'expired', 'rejected']);

export const OrderView = z
  .object({
    id: z.uuid(),
    keyId: z.string(),
    exchange: z.enum(['binance', 'bitget', 'okx', 'paper']),
    marketType: z.enum(['spot', 'swap']),
    botId: z.uuid().nullable(),
    symbol: z.string(),
    side: z.enum(['buy', 'sell']),
    type: z.enum(['market', 'limit']),
    amount: Decimal,
    price: Decimal.nullable(),
    reduceOnly: z.boolean(),
    clientOrderId: z.string(),
    exchangeOrderId: z.string().nullable(),
    status: OrderStatus.describe('`pending`: written, exchange outcome not known yet (reconciled in the background)'),
    filled: Decimal,
    average: Decimal.nullable(),
    cost: Decimal,
    fee: Decimal.nullable(),
    feeCurrency: z.string().nullable(),
    error: z.object({ code: z.string(), detail: z.string() }).nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Order' });
export type OrderView = z.infer<typeof OrderView>;

export const TradeView = z
  .object({
    id: z.uuid(),
    orderId: z.uuid(),
    keyId: z.string(),
    exchange: z.string(),
    botId: z.uuid().nullable(),
    exchangeTradeId: z.string(),
    symbol: z.string(),
    side: z.enum(['buy', 'sell']),
    price: Decimal,
    amount: Decimal,
    cost: Decimal,
    fee: Decimal.nullable(),
    feeCurrency: z.string().nullable(),
    realizedPnl: Decimal.nullable(),
    takerOrMaker: z.string().nullable(),
    executedAt: z.iso.datetime(),
  })
  .meta({ id: 'Trade' });
export type TradeView = z.infer<typeof TradeView>;

const timeRange = {
  from: z.iso.datetime().optional().describe('Inclusive lower bound (ISO 8601)'),
  to: z.iso.datetime().optional().describe('Upper bound (ISO 8601)'),
};

export const OrderHistoryQuery = CursorQuery.extend({
  keyId: KeyIdRef.optional(),
  symbol: z.string().max(40).optional(),
  status: OrderStatus.optional(),
  side: z.enum(['buy', 'sell']).optional(),
  botId: z.uuid().optional(),
  ...timeRange,
});
export type OrderHistoryQuery = z.infer<typeof OrderHistoryQuery>;

export const TradesQuery = CursorQuery.extend({
  keyId: KeyIdRef.optional(),
  symbol: z.string().max(40).optional(),
  side: z.enum(['buy', 'sell']).optional(),
  botId: z.uuid().optional(),
  orderId: z.uuid().optional(),
  ...timeRange,
});
export type TradesQuery = z.infer<typeof TradesQuery>;

export const OrderPage = pageOf(OrderView);
export const TradePage = pageOf(TradeView);

export const OrderIdParams = z.object({ id: z.uuid() });
export const OrderGetQuery = z.object({
  sync: z.stringbool().default(false).describe('Refresh the order from the exchange first'),
});

export const AccountQuery = z.object({
  keyId: KeyIdRef,
  marketType: z.enum(['spot', 'swap']).optional().describe('Paper only: which paper sub-account (default spot)'),
});

export const BalanceView = z
  .object({
    keyId: z.string(),
    exchange: z.string(),
    marketType: z.enum(['spot', 'swap']),
    balances: z.array(z.object({ currency: z.string(), free: Decimal, used: Decimal, total: Decimal })),
  })
  .meta({ id: 'AccountBalance' });

export const PositionView = z.object({
  symbol: z.string(),
  side: z.enum(['long', 'short']),
  contracts: Decimal,
  contractSize: Decimal.nullable(),
  entryPrice: Decimal.nullable(),
  markPrice: Decimal.nullable(),
  unrealizedPnl: Decimal.nullable(),
  realizedPnl: Decimal.nullable(),
  leverage: Decimal.nullable(),
  marginMode: z.enum(['cross', 'isolated']).nullable(),
});

export const PositionsView = z
  .object({ keyId: z.string(), exchange: z.string(), marketType: z.enum(['spot', 'swap']), items: z.array(PositionView) })
  .meta({ id: 'AccountPositions' });
