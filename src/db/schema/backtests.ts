import { doublePrecision, index, integer, jsonb, numeric, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

export const BACKTEST_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type BacktestStatus = (typeof BACKTEST_STATUSES)[number];

/**
 * One backtest job and, once it succeeded, its result. Everything needed to rerun it is stored with it: the dataset
 * reference and the sha256 of its bytes, the strategy id/version and a snapshot of the document, the requested param
 * overrides (and the resolved values), the simulation settings, the bar range and the engine version.
 */
export const backtests = pgTable(
  'backtests',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    status: text('status', { enum: BACKTEST_STATUSES }).notNull().default('queued'),
    /** 0..1, written by the runner (throttled). */
    progress: doublePrecision('progress').notNull().default(0),
    /** Dataset reference: its uuid, or `file:<name>`. No FK: results outlive a deleted dataset. */
    datasetId: text('dataset_id').notNull(),
    datasetName: text('dataset_name'),
    datasetSha256: text('dataset_sha256').notNull(),
    /** Saved strategy (null for an inline document). No FK: results outlive a deleted strategy (the snapshot stays). */
    strategyId: uuid('strategy_id'),
    strategyVersion: integer('strategy_version'),
    strategyName: text('strategy_name').notNull(),
    strategy: jsonb('strategy').$type<Record<string, unknown>>().notNull(),
    /** Param overrides as requested. */
    params: jsonb('params').$type<Record<string, number>>().notNull(),
    /** Every param value used (defaults + overrides), known at start. */
    resolvedParams: jsonb('resolved_params').$type<Record<string, number>>().notNull(),
    initialCash: numeric('initial_cash').notNull(),
    /** Simulation settings other than initialCash: feeBps, slippageBps, fill, lotStep, closeAtEnd. */
    settings: jsonb('settings').$type<Record<string, unknown>>().notNull(),
    rangeFrom: timestamp('range_from', { withTimezone: true }),
    rangeTo: timestamp('range_to', { withTimezone: true }),
    engineVersion: text('engine_version').notNull(),
    attempts: integer('attempts').notNull().default(0),
    error: text('error'),
    // Results (succeeded only)
    finalEquity: numeric('final_equity'),
    totalReturnPct: doublePrecision('total_return_pct'),
    bars: integer('bars'),
    fromIndex: integer('from_index'),
    toIndex: integer('to_index'),
    tradesCount: integer('trades_count'),
    metrics: jsonb('metrics').$type<Record<string, unknown>>(),
    /** Equity curve at up to STORED_EQUITY_POINTS points: (epoch ms, equity) float64 pairs, little-endian, base64. */
    equityData: text('equity_data'),
    openPosition: jsonb('open_position').$type<Record<string, unknown>>(),
    elapsedMs: doublePrecision('elapsed_ms'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    /** Refreshed by the instance that holds the job (queued or running); a stale one means its process is gone. */
    heartbeatAt: timestamp('heartbeat_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('backtests_user_idx').on(t.userId, t.createdAt, t.id), index('backtests_status_idx').on(t.status)],
);

/**
 * The closed trades of a succeeded backtest, in chunks of TRADES_PER_CHUNK fixed-size little-endian float64 records
 * (see src/modules/backtests/backtests.codec.ts), base64 (a record is 96 bytes = 128 characters). Small rows: a
 * result of tens of thousands of trades is written in several short statements (PGlite runs on the API thread)
 * without building JSON, and a page reads one or two chunks. base64 text, not bytea: PGlite's bytea parameter
 * encoding is ~50x slower for the same bytes.
 */
export const backtestTradeChunks = pgTable(
  'backtest_trade_chunks',
  {
    backtestId: uuid('backtest_id')
      .notNull()
      .references(() => backtests.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    data: text('data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.backtestId, t.seq] })],
);
