import { sql } from 'drizzle-orm';
import { boolean, index, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

/**
 * Exchange credential sets. `api_key`, `secret` and `passphrase` hold vault values (AES-256-GCM, bound to user id +
 * record id + field, key id inside: see src/modules/account/vault.ts); nothing here is plaintext except the last four
 * characters of the API key, shown to the user so they can tell keys apart.
 */
export const exchangeKeys = pgTable(
  'exchange_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    exchange: text('exchange', { enum: ['binance', 'bitget', 'okx'] }).notNull(),
    label: text('label').notNull(),
    sandbox: boolean('sandbox').notNull().default(false),
    marketType: text('market_type', { enum: ['spot', 'swap'] }).notNull().default('spot'),
    apiKeyLast4: text('api_key_last4').notNull(),
    apiKeyEnc: text('api_key_enc').notNull(),
    secretEnc: text('secret_enc').notNull(),
    passphraseEnc: text('passphrase_enc'),
    /** What the verifying signed call reported (canTrade, canWithdraw, permissions). */
    permissions: jsonb('permissions').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    verifiedAt: timestamp('verified_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('exchange_keys_user_idx').on(t.userId, t.createdAt)],
);
