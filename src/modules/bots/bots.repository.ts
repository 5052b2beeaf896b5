import { and, asc, eq, gte, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { botCandles, botEvents, bots, killSwitches } from '../../db/schema/bots.js';
import { backtests } from '../../db/schema/backtests.js';
import { orders } from '../../db/schema/orders.js';
import { beforeCursor, newestFirst, type Cursor } from '../../shared/pagination.js';

export type BotRow = typeof bots.$inferSelect;
export type NewBotRow = typeof bots.$inferInsert;
export type BotEventRow = typeof botEvents.$inferSelect;
export type BotCandleRow = typeof botCandles.$inferSelect;
export type KillSwitchRow = typeof killSwitches.$inferSelect;

/** `now() + ms` on the database clock (every instance agrees on lease expiry). */
const inMs = (ms: number) => sql`now() + ${ms} * interval '1 millisecond'`;

export function createBotsRepository(db: DbOrTx) {
  return {
    async insert(row: NewBotRow, tx: DbOrTx = db): Promise<BotRow> {
      const [created] = await tx.insert(bots).values(row).returning();
      return created;
    },
    async findOwned(userId: string, id: string, tx: DbOrTx = db): Promise<BotRow | null> {
      const [row] = await tx.select().from(bots).where(and(eq(bots.id, id), eq(bots.userId, userId)));
      return row ?? null;
    },
    async findById(id: string, tx: DbOrTx = db): Promise<BotRow | null> {
      const [row] = await tx.select().from(bots).where(eq(bots.id, id));
      return row ?? null;
    },
    list(userId: string, cursor: Cursor | undefined, limit: number): Promise<BotRow[]> {
      return db
        .select()
        .from(bots)
        .where(and(eq(bots.userId, userId), beforeCursor(bots.createdAt, bots.id, cursor)))
        .orderBy(...newestFirst(bots.createdAt, bots.id))
        .limit(limit + 1);
    },
    async update(id: string, patch: Partial<NewBotRow>, tx: DbOrTx = db): Promise<BotRow | null> {
      const [row] = await tx.update(bots).set({ ...patch, updatedAt: new Date() }).where(eq(bots.id, id)).returning();
      return row ?? null;
    },
    /** Updates only while the row is in one of `statuses` (the check and the write are one statement). */
    async updateIf(id: string, statuses: BotRow['status'][], patch: Partial<NewBotRow>, tx: DbOrTx = db): Promise<BotRow | null> {
      const [row] = await tx
        .update(bots)
        .set({ ...patch, updatedAt: new Date() })
        .where(and(eq(bots.id, id), inArray(bots.status, statuses)))
        .returning();
      return row ?? null;
    },
    async remove(id: string, tx: DbOrTx = db): Promise<void> {
      await tx.delete(bots).where(eq(bots.id, id));
    },
    runningOfUser(userId: string): Promise<BotRow[]> {
      return db.select().from(bots).where(and(eq(bots.userId, userId), eq(bots.status, 'running')));
    },
    allRunning(): Promise<BotRow[]> {
      return db.select().from(bots).where(eq(bots.status, 'running'));
    },
    idsOfUser(userId: string): Promise<{ id: string }[]> {
      return db.select({ id: bots.id }).from(bots).where(eq(bots.userId, userId));
    },

    // ---- lease --------------------------------------------------------------------------------------------------
    /** Running bots nobody holds (no lease, or an expired one). */
    async unleased(): Promise<string[]> {
      const rows = await db
        .select({ id: bots.id })
        .from(bots)
        .where(and(eq(bots.status, 'running'), or(isNull(bots.leaseOwner), lt(bots.leaseExpiresAt, sql`now()`))));
      return rows.map((r) => r.id);
    },
    /** Takes (or renews) the lease of a running bot: one atomic UPDATE that only matches a free or own lease. */
    async acquireLease(id: string, owner: string, ttlMs: number): Promise<BotRow | null> {
      const [row] = await db
        .update(bots)
        .set({ leaseOwner: owner, leaseExpiresAt: inMs(ttlMs) })
        .where(
          and(
            eq(bots.id, id),
            eq(bots.status, 'running'),
            or(isNull(bots.leaseOwner), eq(bots.leaseOwner, owner), lt(bots.leaseExpiresAt, sql`now()`)),
          ),
        )
        .returning();
      return row ?? null;
    },
    /** Renews a lease this owner holds on a still-running bot; null = lost (stopped, deleted or taken). */
    async renewLease(id: string, owner: string, ttlMs: number): Promise<boolean> {
      const rows = await db
        .update(bots)
        .set({ leaseExpiresAt: inMs(ttlMs) })
        .where(and(eq(bots.id, id), eq(bots.leaseOwner, owner), eq(bots.status, 'running')))
        .returning({ id: bots.id });
      return rows.length === 1;
    },
    async releaseLease(id: string, owner: string): Promise<void> {
      await db.update(bots).set({ leaseOwner: null, leaseExpiresAt: null }).where(and(eq(bots.id, id), eq(bots.leaseOwner, owner)));
    },
    /** True while this owner still holds the lease of a running bot (checked right before every order). */
    async holds(id: string, owner: string): Promise<boolean> {
      const rows = await db
        .select({ id: bots.id })
        .from(bots)
        .where(and(eq(bots.id, id), eq(bots.leaseOwner, owner), eq(bots.status, 'running'), gte(bots.leaseExpiresAt, sql`now()`)));
      return rows.length === 1;
    },
    /** Saves the state after a candle, only while this owner holds the running bot. */
    async saveState(id: string, owner: string, patch: Partial<NewBotRow>): Promise<BotRow | null> {
      const [row] = await db
        .update(bots)
        .set({ ...patch, updatedAt: new Date() })
        .where(and(eq(bots.id, id), eq(bots.leaseOwner, owner), eq(bots.status, 'running')))
        .returning();
      return row ?? null;
    },

    // ---- events and candles -------------------------------------------------------------------------------------
    async insertEvent(row: typeof botEvents.$inferInsert): Promise<BotEventRow> {
      const [created] = await db.insert(botEvents).values(row).returning();
      return created;
    },
    listEvents(botId: string, cursor: Cursor | undefined, limit: number, type?: string): Promise<BotEventRow[]> {
      return db
        .select()
        .from(botEvents)
        .where(and(eq(botEvents.botId, botId), type ? eq(botEvents.type, type) : undefined, beforeCursor(botEvents.createdAt, botEvents.id, cursor)))
        .orderBy(...newestFirst(botEvents.createdAt, botEvents.id))
        .limit(limit + 1);
    },
    async insertCandles(rows: (typeof botCandles.$inferInsert)[]): Promise<void> {
      for (let i = 0; i < rows.length; i += 500) await db.insert(botCandles).values(rows.slice(i, i + 500)).onConflictDoNothing();
    },
    async deleteCandles(botId: string, tx: DbOrTx = db): Promise<void> {
      await tx.delete(botCandles).where(eq(botCandles.botId, botId));
    },
    candles(botId: string): Promise<BotCandleRow[]> {
      return db.select().from(botCandles).where(eq(botCandles.botId, botId)).orderBy(asc(botCandles.ts));
    },

    // ---- orders of bots (read-only views of the orders table) ----------------------------------------------------
    ordersOfBot(botId: string) {
      return db.select().from(orders).where(eq(orders.botId, botId)).orderBy(asc(orders.createdAt));
    },
    async countOrdersSince(botId: string, since: Date): Promise<number> {
      const [row] = await db
        .select({ n: sql<number>`count(*)::int` })
        .from(orders)
        .where(and(eq(orders.botId, botId), gte(orders.createdAt, since)));
      return Number(row?.n ?? 0);
    },
    activeOrdersOfUser(userId: string) {
      return db
        .select()
        .from(orders)
        .where(and(eq(orders.userId, userId), inArray(orders.status, ['open', 'pending'])));
    },
    activeOrdersOfBot(botId: string) {
      return db
        .select()
        .from(orders)
        .where(and(eq(orders.botId, botId), inArray(orders.status, ['open', 'pending'])));
    },
    async orderCountsByStatus(): Promise<{ status: string; n: number }[]> {
      const rows = await db.select({ status: orders.status, n: sql<number>`count(*)::int` }).from(orders).groupBy(orders.status);
      return rows.map((r) => ({ status: r.status, n: Number(r.n) }));
    },

    async hasSucceededBacktest(userId: string, strategyId: string, version: number): Promise<boolean> {
      const rows = await db
        .select({ id: backtests.id })
        .from(backtests)
        .where(
          and(
            eq(backtests.userId, userId),
            eq(backtests.strategyId, strategyId),
            eq(backtests.strategyVersion, version),
            eq(backtests.status, 'succeeded'),
          ),
        )
        .limit(1);
      return rows.length > 0;
    },

    // ---- kill switches ------------------------------------------------------------------------------------------
    /** The switch that blocks `userId` (theirs, else the global one), if any. */
    async lockOf(userId: string): Promise<KillSwitchRow | null> {
      const rows = await db
        .select()
        .from(killSwitches)
        .where(or(and(eq(killSwitches.scope, 'user'), eq(killSwitches.userId, userId)), eq(killSwitches.scope, 'global')))
        .limit(2);
      return rows.find((r) => r.scope === 'user') ?? rows[0] ?? null;
    },
    async userSwitch(userId: string): Promise<KillSwitchRow | null> {
      const [row] = await db.select().from(killSwitches).where(and(eq(killSwitches.scope, 'user'), eq(killSwitches.userId, userId)));
      return row ?? null;
    },
    async globalSwitch(): Promise<KillSwitchRow | null> {
      const [row] = await db.select().from(killSwitches).where(eq(killSwitches.scope, 'global'));
      return row ?? null;
    },
    async engage(scope: 'user' | 'global', userId: string | null, engagedBy: string | null, reason: string | null): Promise<KillSwitchRow> {
      await db.insert(killSwitches).values({ scope, userId, engagedBy, reason }).onConflictDoNothing();
      const row = scope === 'user' ? await this.userSwitch(userId!) : await this.globalSwitch();
      return row!;
    },
    async release(scope: 'user' | 'global', userId: string | null): Promise<boolean> {
      const rows = await db
        .delete(killSwitches)
        .where(scope === 'user' ? and(eq(killSwitches.scope, 'user'), eq(killSwitches.userId, userId!)) : eq(killSwitches.scope, 'global'))
        .returning({ id: killSwitches.id });
      return rows.length > 0;
    },
  };
}

export type BotsRepository = ReturnType<typeof createBotsRepository>;
