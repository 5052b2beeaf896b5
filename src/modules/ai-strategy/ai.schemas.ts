import { z } from 'zod';
import { CursorQuery, pageOf } from '../../shared/pagination.js';
import { AI_OUTCOMES } from '../../db/schema/ai.js';

export const PROMPT_MIN = 10;
export const PROMPT_MAX = 4000;

/** PostgreSQL text/jsonb cannot store NUL; such input is refused with a 400 rather than failing later. */
const noNul = (s: string) => !s.includes('\u0000');
const NUL_MESSAGE = 'must not contain NUL characters';

/**
 * Optional backtest of the generated strategy (implies `save`): the options of POST /backtest/start without the
 * strategy fields (the saved strategy is used). Validated here with the same bounds; the backtests domain applies
 * its defaults and checks the dataset.
 */
export const GenerateBacktestOptions = z
  .object({
    datasetId: z.string().min(1).max(300).describe('One of your datasets (uuid) or `file:<name>` (GET /datasets)'),
    params: z.record(z.string(), z.number()).optional().describe('Overrides of the strategy params, by name'),
    initialCash: z
      .string()
      .regex(/^\d{1,15}(\.\d{1,8})?$/, 'a positive decimal string such as "10000" or "2500.5"')
      .optional()
      .describe('Starting cash as a decimal string (default 10000)'),
    feeBps: z.number().min(0).max(1000).optional().describe('Fee per fill, basis points of notional (default 0)'),
    slippageBps: z.number().min(0).max(1000).optional().describe('Each fill moves this many basis points against the trader (default 0)'),
    fill: z.enum(['next_open', 'close']).optional().describe('Fill at the next open (default) or at the decision bar close'),
    lotStep: z.number().min(0).max(1e9).optional().describe('Sizes round down to a multiple of this; 0 = fractional (default)'),
    closeAtEnd: z.boolean().optional().describe('Close an open position at the end (default true)'),
    from: z.iso.datetime().optional().describe('First bar (inclusive)'),
    to: z.iso.datetime().optional().describe('Last bar (inclusive)'),
  })
  .superRefine((b, ctx) => {
    if (b.from && b.to && Date.parse(b.from) > Date.parse(b.to)) ctx.addIssue({ code: 'custom', path: ['to'], message: 'to must not be before from' });
    if (b.initialCash !== undefined && !(Number(b.initialCash) > 0)) ctx.addIssue({ code: 'custom', path: ['initialCash'], message: 'must be greater than 0' });
  })
  .describe('Start a backtest of the generated strategy (POST /backtest/start options); the strategy is saved first');
export type GenerateBacktestOptions = z.infer<typeof GenerateBacktestOptions>;

export const GenerateBody = z.object({
  prompt: z.string().trim().min(PROMPT_MIN).max(PROMPT_MAX).refine(noNul, NUL_MESSAGE).describe('What the strategy should do, in your words'),
  symbol: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9]{1,20}([/:_-][A-Za-z0-9]{1,20}){0,2}$/, 'a market symbol such as BTC/USDT')
    .optional()
    .describe('Market the strategy is meant for, e.g. BTC/USDT'),
  timeframe: z.string().regex(/^\d{1,3}[smhdwM]$/, 'a timeframe such as 15m, 1h or 1d').optional().describe('Bar size, e.g. 1h'),
  risk: z.enum(['low', 'medium', 'high']).optional().describe('Risk appetite'),
  constraints: z.array(z.string().trim().min(1).max(300).refine(noNul, NUL_MESSAGE)).max(20).optional().describe('Extra requirements, one per item'),
  save: z.boolean().default(false).describe('Save the strategy (origin "ai", with the prompt) when it is valid'),
  name: z.string().trim().min(1).max(100).refine(noNul, NUL_MESSAGE).optional().describe('Name of the saved strategy (default: the generated name)'),
  backtest: GenerateBacktestOptions.optional(),
});
export type GenerateBody = z.infer<typeof GenerateBody>;

export const TokenUsage = z.object({
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
  totalTokens: z.number().int(),
});

export const GenerateResponse = z
  .object({
    generationId: z.uuid().describe('The history entry of this generation (GET /ai_strategy/history/{id})'),
    strategy: z.record(z.string(), z.unknown()).describe('The strategy document, valid against GET /strategies/schema'),
    explanation: z.string().describe('Short explanation from the model'),
    model: z.string().describe('Model that answered'),
    usage: TokenUsage.describe('Tokens used, summed over every model call of this generation'),
    latencyMs: z.number().int(),
    rounds: z.number().int().describe('Answers parsed (1 = valid at once; more when repair rounds were needed)'),
    strategyId: z.uuid().optional().describe('Present when the strategy was saved'),
    backtestId: z.uuid().optional().describe('Present when a backtest was started (GET /backtest/result/{id})'),
  })
  .meta({ id: 'AiGeneration' });
export type GenerateResponse = z.infer<typeof GenerateResponse>;

export const ModelList = z.object({
  items: z.array(z.object({ id: z.string(), ownedBy: z.string() })),
  configured: z.string().describe('The model used for generations (DEEPSEEK_MODEL)'),
});

export const HistoryItem = z.object({
  id: z.uuid(),
  prompt: z.string(),
  model: z.string(),
  outcome: z.enum(AI_OUTCOMES),
  errorCode: z.string().nullable(),
  usage: TokenUsage,
  latencyMs: z.number().int().nullable(),
  rounds: z.number().int(),
  strategyId: z.uuid().nullable(),
  backtestId: z.uuid().nullable(),
  createdAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().nullable(),
});
export type HistoryItem = z.infer<typeof HistoryItem>;

export const HistoryDetail = HistoryItem.extend({
  request: z.record(z.string(), z.unknown()).describe('The options of the request (symbol, timeframe, risk, constraints, save, name, backtest)'),
  errorDetail: z.string().nullable(),
  explanation: z.string().nullable(),
  rawAnswer: z.string().nullable().describe("The model's last answer, verbatim (truncated to 64 KiB)"),
}).meta({ id: 'AiGenerationRecord' });
export type HistoryDetail = z.infer<typeof HistoryDetail>;

export const HistoryQuery = CursorQuery;
export const HistoryPage = pageOf(HistoryItem);
export const HistoryParams = z.object({ id: z.uuid() });
