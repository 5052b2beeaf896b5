import { index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';
import { strategies } from './strategies.js';

export const AI_OUTCOMES = [
  /** Row inserted when the generation starts (it holds a quota slot); replaced by the final outcome. */
  'pending',
  'succeeded',
  /** The model's answer was still not a valid strategy after the repair rounds (422). */
  'invalid',
  /** The provider answered with an error, empty answers or could not be reached (502/503). */
  'provider_error',
  /** The generation did not finish within DEEPSEEK_TIMEOUT_MS (504). */
  'timeout',
  /** Refused before or after the model call by our own checks (400), or the caller went away. */
  'rejected',
  /** Anything unexpected (500). */
  'failed',
] as const;
export type AiOutcome = (typeof AI_OUTCOMES)[number];

/**
 * One row per AI strategy generation attempt of a user, whatever its outcome (the daily quota counts these rows).
 * `raw_answer` is the model's last answer, truncated (the service bounds it); the API key is never stored.
 */
export const aiGenerations = pgTable(
  'ai_generations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    prompt: text('prompt').notNull(),
    /** symbol, timeframe, risk, constraints, save, name, backtest as requested. */
    request: jsonb('request').$type<Record<string, unknown>>().notNull().default({}),
    /** Model reported by the provider (the configured one until an answer arrives). */
    model: text('model').notNull(),
    outcome: text('outcome', { enum: AI_OUTCOMES }).notNull().default('pending'),
    errorCode: text('error_code'),
    errorDetail: text('error_detail'),
    rawAnswer: text('raw_answer'),
    explanation: text('explanation'),
    promptTokens: integer('prompt_tokens').notNull().default(0),
    completionTokens: integer('completion_tokens').notNull().default(0),
    totalTokens: integer('total_tokens').notNull().default(0),
    latencyMs: integer('latency_ms'),
    /** Model answers that were parsed (1 = accepted first time). */
    rounds: integer('rounds').notNull().default(0),
    strategyId: uuid('strategy_id').references(() => strategies.id, { onDelete: 'set null' }),
    /** The backtest started with the generated strategy (owned by the backtests domain; no FK across domains). */
    backtestId: uuid('backtest_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [index('ai_generations_user_idx').on(t.userId, t.createdAt, t.id)],
);
