import { z } from 'zod';
import { CursorQuery, pageOf } from '../../shared/pagination.js';
import { BACKTEST_STATUSES } from '../../db/schema/backtests.js';

/**
 * Money (initialCash, finalEquity, feesPaid, trade prices/sizes/pnl/fees) is sent as decimal strings. Ratios and
 * percentages in `metrics` stay numbers, and so does the equity curve: it is a float64 chart series from the engine
 * (strings would triple its size for no precision gain).
 */
const Decimal = z.string().regex(/^\d{1,15}(\.\d{1,8})?$/, 'a positive decimal string such as "10000" or "2500.5"');
const Bps = z.number().min(0).max(1000);

export const StartBacktestBody = z
  .object({
    datasetId: z.string().min(1).max(300).describe('One of your datasets (uuid) or `file:<name>` (GET /datasets)'),
    strategyId: z.uuid().optional().describe('A saved strategy (or give `strategy` inline)'),
    strategyVersion: z.number().int().min(1).optional().describe('Version of `strategyId` (default: latest)'),
    strategy: z.record(z.string(), z.unknown()).optional().describe('Inline strategy document (JSON DSL v1) instead of `strategyId`'),
    params: z.record(z.string(), z.number()).optional().describe('Overrides of the strategy params, by name'),
    initialCash: Decimal.default('10000').describe('Starting cash as a decimal string'),
    feeBps: Bps.default(0).describe('Fee per fill, basis points of notional'),
    slippageBps: Bps.default(0).describe('Each fill moves this many basis points against the trader'),
    fill: z.enum(['next_open', 'close']).default('next_open').describe('Decisions on a bar close fill at the next open (default) or that close'),
    lotStep: z.number().min(0).max(1e9).default(0).describe('Sizes round down to a multiple of this; 0 = fractional'),
    closeAtEnd: z.boolean().default(true).describe('Close an open position at the end'),
    from: z.iso.datetime().optional().describe('First bar (inclusive)'),
    to: z.iso.datetime().optional().describe('Last bar (inclusive)'),
  })
  .superRefine((b, ctx) => {
    if ((b.strategyId === undefined) === (b.strategy === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['strategyId'], message: 'give exactly one of strategyId or strategy' });
    }
    if (b.strategyVersion !== undefined && b.strategyId === undefined) {
      ctx.addIssue({ code: 'custom', path: ['strategyVersion'], message: 'strategyVersion needs strategyId' });
    }
    if (b.from && b.to && Date.parse(b.from) > Date.parse(b.to)) ctx.addIssue({ code: 'custom', path: ['to'], message: 'to must not be before from' });
    if (!(Number(b.initialCash) > 0)) ctx.addIssue({ code: 'custom', path: ['initialCash'], message: 'must be greater than 0' });
  });
export type StartBacktestBody = z.input<typeof StartBacktestBody>;

export const BacktestStatus = z.enum(BACKTEST_STATUSES);

export const StartBacktestResponse = z.object({
  id: z.uuid(),
  status: BacktestStatus,
  location: z.string().describe('Poll this for the status and the result'),
});

export const BacktestParams = z.object({ id: z.uuid() });

export const ResultQuery = z.object({
  tradesLimit: z.coerce.number().int().min(0).max(1000).default(100).describe('Trades per page (0-1000)'),
  tradesOffset: z.coerce.number().int().min(0).default(0),
  equityPoints: z.coerce
    .number()
    .int()
    .min(2)
    .max(5000)
    .optional()
    .describe('Include the equity curve, evenly downsampled to at most this many points (first and last kept)'),
});

export const Settings = z.object({
  initialCash: z.string(),
  feeBps: z.number(),
  slippageBps: z.number(),
  fill: z.enum(['next_open', 'close']),
  lotStep: z.number(),
  closeAtEnd: z.boolean(),
});

export const Metrics = z
  .object({
    finalEquity: z.string(),
    feesPaid: z.string(),
    totalReturnPct: z.number(),
    maxDrawdownPct: z.number(),
    exposurePct: z.number(),
    trades: z.number().int(),
  })
  .catchall(z.number().nullable())
  .describe('docs/metrics.md; money as decimal strings, the rest numbers (null when undefined, e.g. no trades)');

export const Trade = z.object({
  side: z.enum(['long', 'short']),
  entryBar: z.number().int(),
  exitBar: z.number().int(),
  entryTime: z.iso.datetime(),
  exitTime: z.iso.datetime(),
  entryPrice: z.string(),
  exitPrice: z.string(),
  size: z.string(),
  pnl: z.string().describe('Net of both fees'),
  pnlPct: z.number(),
  fees: z.string(),
  exitReason: z.string(),
});

export const BacktestSummary = z.object({
  id: z.uuid(),
  status: BacktestStatus,
  progress: z.number().min(0).max(1),
  error: z.string().nullable(),
  datasetId: z.string(),
  strategyId: z.uuid().nullable(),
  strategyVersion: z.number().int().nullable(),
  strategyName: z.string(),
  finalEquity: z.string().nullable(),
  totalReturnPct: z.number().nullable(),
  createdAt: z.iso.datetime(),
  startedAt: z.iso.datetime().nullable(),
  finishedAt: z.iso.datetime().nullable(),
});
export type BacktestSummary = z.infer<typeof BacktestSummary>;

export const BacktestResult = BacktestSummary.extend({
  attempts: z.number().int(),
  engineVersion: z.string(),
  dataset: z.object({ id: z.string(), name: z.string().nullable(), sha256: z.string() }),
  strategy: z.object({
    id: z.uuid().nullable(),
    version: z.number().int().nullable(),
    name: z.string(),
    document: z.record(z.string(), z.unknown()).describe('Snapshot of the document that ran'),
  }),
  params: z.record(z.string(), z.number()).describe('Overrides as requested'),
  resolvedParams: z.record(z.string(), z.number()).describe('Every param value used'),
  settings: Settings,
  range: z.object({ from: z.iso.datetime().nullable(), to: z.iso.datetime().nullable() }),
  bars: z.number().int().nullable(),
  fromIndex: z.number().int().nullable(),
  toIndex: z.number().int().nullable(),
  metrics: Metrics.nullable(),
  openPosition: z
    .object({ side: z.enum(['long', 'short']), size: z.string(), entryBar: z.number().int(), entryPrice: z.string() })
    .nullable()
    .describe('Position left open when closeAtEnd is false'),
  trades: z.object({
    items: z.array(Trade),
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
    nextOffset: z.number().int().nullable(),
  }),
  equity: z
    .object({ t: z.array(z.iso.datetime()), equity: z.array(z.number()) })
    .nullable()
    .describe('With `equityPoints`: bar open times and equity at their close'),
}).meta({ id: 'BacktestResult' });
export type BacktestResult = z.infer<typeof BacktestResult>;

export const HistoryQuery = CursorQuery;
export const BacktestPage = pageOf(BacktestSummary);
