import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, jsonb, numeric, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

/**
 * Orders placed through the API. The row is written (status `pending`) BEFORE the exchange is called, so the client
 * order id is reserved first: the unique (user, key, client order id) index makes a second exchange order for the
 * same id impossible. `key_id` is a saved exchange key's id or `paper`.
 */
export const orders = pgTable(
  'orders',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    keyId: text('key_id').notNull(),
    exchange: text('exchange', { enum: ['binance', 'bitget', 'okx', 'paper'] }).notNull(),
    marketType: text('market_type', { enum: ['spot', 'swap'] }).notNull(),
    botId: uuid('bot_id'),
    symbol: text('symbol').notNull(),
    side: text('side', { enum: ['buy', 'sell'] }).notNull(),
    type: text('type', { enum: ['market', 'limit'] }).notNull(),
    amount: numeric('amount').notNull(),
    price: numeric('price'),
    reduceOnly: boolean('reduce_only').notNull().default(false),
    clientOrderId: text('client_order_id').notNull(),
    exchangeOrderId: text('exchange_order_id'),
    status: text('status', { enum: ['pending', 'open', 'closed', 'canceled', 'expired', 'rejected'] }).notNull().default('pending'),
    filled: numeric('filled').notNull().default('0'),
    average: numeric('average'),
    cost: numeric('cost').notNull().default('0'),
    fee: numeric('fee'),
    feeCurrency: text('fee_currency'),
    /** Why the order was rejected (problem code and detail), when it was. */
    error: jsonb('error').$type<{ code: string; detail: string }>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('orders_client_order_id_uq').on(t.userId, t.keyId, t.clientOrderId),
    index('orders_user_idx').on(t.userId, t.createdAt, t.id),
    index('orders_active_idx').on(t.status, t.updatedAt).where(sql`status in ('pending', 'open')`),
  ],
);

/** Every fill of an order; (order, exchange trade id) is unique so re-syncs never duplicate a fill. */
export const trades = pgTable(
  'trades',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id, { onDelete: 'cascade' }),
    keyId: text('key_id').notNull(),
    exchange: text('exchange').notNull(),
    botId: uuid('bot_id'),
    exchangeTradeId: text('exchange_trade_id').notNull(),
    symbol: text('symbol').notNull(),
    side: text('side', { enum: ['buy', 'sell'] }).notNull(),
    price: numeric('price').notNull(),
    amount: numeric('amount').notNull(),
    cost: numeric('cost').notNull(),
    fee: numeric('fee'),
    feeCurrency: text('fee_currency'),
    realizedPnl: numeric('realized_pnl'),
    takerOrMaker: text('taker_or_maker'),
    executedAt: timestamp('executed_at', { withTimezone: true }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('trades_order_trade_uq').on(t.orderId, t.exchangeTradeId),
    index('trades_user_idx').on(t.userId, t.executedAt, t.id),
  ],
);

/** Paper trading accounts: the paper adapter's whole state (decimal strings), one row per user and market type. */
export const paperAccounts = pgTable('paper_accounts', {
  id: text('id').primaryKey(),
  userId: uuid('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  state: jsonb('state').$type<Record<string, unknown>>().notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * `POST /datasets/download` jobs (market data domain): OHLCV paged from an exchange into a dataset. The row exists
 * (status `pending`) before any request; `next_since` is the resume point, `candles` the progress.
 */
export const datasetDownloads = pgTable(
  'dataset_downloads',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    exchange: text('exchange', { enum: ['binance', 'bitget', 'okx'] }).notNull(),
    symbol: text('symbol').notNull(),
    timeframe: text('timeframe').notNull(),
    name: text('name').notNull(),
    sinceMs: bigint('since_ms', { mode: 'number' }).notNull(),
    untilMs: bigint('until_ms', { mode: 'number' }).notNull(),
    nextSinceMs: bigint('next_since_ms', { mode: 'number' }).notNull(),
    candles: integer('candles').notNull().default(0),
    status: text('status', { enum: ['pending', 'running', 'importing', 'done', 'failed'] }).notNull().default('pending'),
    datasetId: uuid('dataset_id'),
    error: text('error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('dataset_downloads_user_idx').on(t.userId, t.createdAt, t.id)],
);
