import { z } from 'zod';
import { CursorQuery, pageOf } from '../../shared/pagination.js';

const decimal = z.string().regex(/^\d+(\.\d+)?$/, 'a positive decimal string, e.g. "0.001"').max(40);
const Decimal = z.string().describe('Decimal string');

import { TIMEFRAMES } from '../../shared/timeframes.js';

export const BotSizing = z
  .object({
    type: z.enum(['base', 'quote']).describe('`base`: a fixed amount (base units; contracts on swaps) per entry; `quote`: a notional divided by the close'),
    amount: decimal.refine((v) => Number(v) > 0, 'must be greater than 0'),
  })
  .meta({ id: 'BotSizing' });

export const BotRiskLimits = z
  .object({
    maxPositionSize: decimal.optional().describe('Largest position the bot may hold (base units / contracts)'),
    maxOrdersPerHour: z.number().int().min(1).max(10_000).optional().describe('Orders the bot may place in any rolling hour'),
    maxDailyLoss: decimal.optional().describe('Loss today (realised + unrealised, quote currency) that pauses the bot'),
  })
  .meta({ id: 'BotRiskLimits' });

export const KeyIdRef = z
  .string()
  .trim()
  .refine((v) => v === 'paper' || z.uuid().safeParse(v).success, 'a saved key id (uuid) or "paper"')
  .describe('A saved exchange key id, or `paper`');

const BotFields = z.object({
  name: z.string().trim().min(1).max(100),
  strategyId: z.uuid(),
  strategyVersion: z.number().int().min(1).describe('The pinned strategy version'),
  keyId: KeyIdRef,
  symbol: z.string().trim().min(3).max(40).describe('Unified symbol: BTC/USDT (spot) or BTC/USDT:USDT (swap)'),
  timeframe: z.enum(TIMEFRAMES),
  params: z.record(z.string(), z.number()).describe('Strategy param overrides'),
  sizing: BotSizing,
  risk: BotRiskLimits,
});

export const CreateBotBody = BotFields.extend({
  params: BotFields.shape.params.default({}),
  risk: BotRiskLimits.default({}),
});
export type CreateBotBody = z.infer<typeof CreateBotBody>;

/** Only the fields sent change (no defaults here: an omitted field keeps its value). */
export const UpdateBotBody = BotFields.partial().refine((b) => Object.keys(b).length > 0, 'nothing to update');
export type UpdateBotBody = z.infer<typeof UpdateBotBody>;

export const BotView = z
  .object({
    id: z.uuid(),
    name: z.string(),
    strategyId: z.uuid(),
    strategyVersion: z.number().int(),
    keyId: z.string(),
    symbol: z.string(),
    timeframe: z.string(),
    params: z.record(z.string(), z.number()),
    sizing: BotSizing,
    risk: BotRiskLimits,
    status: z.enum(['stopped', 'running', 'paused', 'error']).describe('`paused`: a risk limit tripped (see statusReason)'),
    statusReason: z.record(z.string(), z.unknown()).nullable(),
    position: z.number().int().describe('1 long, -1 short, 0 flat'),
    positionSize: Decimal,
    entryPrice: Decimal.nullable(),
    dailyPnl: Decimal,
    lastCandleAt: z.iso.datetime().nullable().describe('Open time of the last closed candle acted on'),
    startedAt: z.iso.datetime().nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Bot' });
export type BotView = z.infer<typeof BotView>;

export const BotParams = z.object({ id: z.uuid() });
export const ListBotsQuery = CursorQuery;
export const BotPage = pageOf(BotView);

export const BotEventView = z
  .object({
    id: z.uuid(),
    botId: z.uuid(),
    type: z.string().describe('decision, order, order.failed, skip, risk.tripped, error, started, stopped, reconciled, warmup, ...'),
    candleAt: z.iso.datetime().nullable(),
    data: z.record(z.string(), z.unknown()),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'BotEvent' });
export type BotEventView = z.infer<typeof BotEventView>;
export const BotEventsQuery = CursorQuery.extend({ type: z.string().max(40).optional().describe('Only events of this type') });
export const BotEventPage = pageOf(BotEventView);

const ReconciledOrder = z.object({
  candleAt: z.iso.datetime(),
  leg: z.enum(['open', 'close']),
  side: z.enum(['buy', 'sell']),
  clientOrderId: z.string(),
  orderId: z.uuid().nullable(),
  status: z.string().nullable(),
  assumedPrice: Decimal.describe('The close of the decision candle'),
  realisedPrice: Decimal.nullable(),
  slippageBps: z.number().nullable().describe('Against the trader: positive = worse than assumed'),
  assumedFee: Decimal.nullable(),
  realisedFee: Decimal.nullable(),
});

export const Reconciliation = z
  .object({
    botId: z.uuid(),
    candles: z.number().int().describe('Candles replayed (warm-up + live)'),
    liveCandles: z.number().int(),
    expectedOrders: z.number().int(),
    matched: z.array(ReconciledOrder),
    missed: z.array(ReconciledOrder).describe('Predicted by the replay, never placed (or rejected)'),
    extra: z.array(z.object({ orderId: z.uuid(), clientOrderId: z.string(), side: z.string(), amount: Decimal, status: z.string() })),
    slippage: z.object({ averageBps: z.number().nullable(), assumedBps: z.number() }),
    fees: z.object({ assumed: Decimal, realised: Decimal, assumedBps: z.number() }),
  })
  .meta({ id: 'BotReconciliation' });
export type Reconciliation = z.infer<typeof Reconciliation>;

export const KillSwitchView = z
  .object({
    engaged: z.boolean(),
    scope: z.enum(['user', 'global']),
    engagedAt: z.iso.datetime().nullable(),
    reason: z.string().nullable(),
    globalEngaged: z.boolean().describe('The admins\' global kill switch blocks every user'),
  })
  .meta({ id: 'KillSwitch' });
export type KillSwitchView = z.infer<typeof KillSwitchView>;

export const KillSwitchBody = z.object({ reason: z.string().trim().max(500).optional() }).default({});

export const KillSwitchResult = KillSwitchView.extend({
  stoppedBots: z.array(z.uuid()),
  canceledOrders: z.number().int().describe('Open orders cancelled on the exchanges (saved keys and paper)'),
  cancelErrors: z.array(z.object({ keyId: z.string(), code: z.string(), detail: z.string() })),
}).meta({ id: 'KillSwitchResult' });
export type KillSwitchResult = z.infer<typeof KillSwitchResult>;
