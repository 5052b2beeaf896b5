import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, jsonb, numeric, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

export const BOT_STATUSES = ['stopped', 'running', 'paused', 'error'] as const;
export type BotStatus = (typeof BOT_STATUSES)[number];

export interface BotSizing {
  /** `base`: a fixed amount (base units, contracts on swaps) per entry; `quote`: a notional, divided by the close. */
  type: 'base' | 'quote';
  amount: string;
}

export interface BotRiskLimits {
  /** Largest position the bot may hold (base units / contracts). */
  maxPositionSize?: string;
  /** Orders the bot may place in any rolling hour. */
  maxOrdersPerHour?: number;
  /** Loss (realised today + unrealised, in the quote currency) that pauses the bot. */
  maxDailyLoss?: string;
}

/**
 * A bot: a pinned strategy version running on the closed candles of one symbol, placing orders through the orders
 * service. The running state (position, last processed candle, lease) lives on the row so any instance can resume it.
 */
export const bots = pgTable(
  'bots',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    strategyId: uuid('strategy_id').notNull(),
    strategyVersion: integer('strategy_version').notNull(),
    keyId: text('key_id').notNull(),
    symbol: text('symbol').notNull(),
    timeframe: text('timeframe').notNull(),
    params: jsonb('params').$type<Record<string, number>>().notNull(),
    sizing: jsonb('sizing').$type<BotSizing>().notNull(),
    risk: jsonb('risk').$type<BotRiskLimits>().notNull(),
    status: text('status', { enum: BOT_STATUSES }).notNull().default('stopped'),
    /** Why the bot is paused / in error (risk limit, kill switch, failure). */
    statusReason: jsonb('status_reason').$type<Record<string, unknown>>(),
    /** Signed position the bot believes it holds: 1 long, -1 short, 0 flat; its size and average entry price. */
    position: integer('position').notNull().default(0),
    positionSize: numeric('position_size').notNull().default('0'),
    entryPrice: numeric('entry_price'),
    /** Realised PnL of the current UTC day (quote currency). */
    dailyPnl: numeric('daily_pnl').notNull().default('0'),
    dailyPnlDay: text('daily_pnl_day'),
    /** Open time (ms) of the last closed candle acted on. */
    lastCandleAt: bigint('last_candle_at', { mode: 'number' }),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
    startedAt: timestamp('started_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('bots_user_idx').on(t.userId, t.createdAt, t.id),
    index('bots_running_idx').on(t.status, t.leaseExpiresAt).where(sql`status = 'running'`),
  ],
);

/** Everything a bot did: decisions, orders, fills, skips, risk trips, errors. */
export const botEvents = pgTable(
  'bot_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    botId: uuid('bot_id')
      .notNull()
      .references(() => bots.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    candleAt: bigint('candle_at', { mode: 'number' }),
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('bot_events_bot_idx').on(t.botId, t.createdAt, t.id)],
);

/** The closed candles a bot saw (warm-up and live), replayed on restart and by the reconciliation report. */
export const botCandles = pgTable(
  'bot_candles',
  {
    botId: uuid('bot_id')
      .notNull()
      .references(() => bots.id, { onDelete: 'cascade' }),
    ts: bigint('ts', { mode: 'number' }).notNull(),
    open: numeric('open').notNull(),
    high: numeric('high').notNull(),
    low: numeric('low').notNull(),
    close: numeric('close').notNull(),
    volume: numeric('volume').notNull(),
    /** false: warm-up history (fed to the evaluator without acting). */
    live: boolean('live').notNull(),
  },
  (t) => [primaryKey({ columns: [t.botId, t.ts] })],
);

/** Kill switches: one row per user that engaged theirs, plus the admins' global one (user_id null, scope global). */
export const killSwitches = pgTable(
  'kill_switches',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    scope: text('scope', { enum: ['user', 'global'] }).notNull(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    engagedBy: uuid('engaged_by'),
    reason: text('reason'),
    engagedAt: timestamp('engaged_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('kill_switches_user_uq').on(t.userId).where(sql`scope = 'user'`),
    uniqueIndex('kill_switches_global_uq').on(t.scope).where(sql`scope = 'global'`),
  ],
);
