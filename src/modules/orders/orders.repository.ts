import { and, asc, eq, gte, inArray, lt, lte, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { orders, trades } from '../../db/schema/orders.js';
import { beforeCursor, newestFirst, type Cursor } from '../../shared/pagination.js';

export type OrderRow = typeof orders.$inferSelect;
export type NewOrderRow = typeof orders.$inferInsert;
export type TradeRow = typeof trades.$inferSelect;
export type NewTradeRow = typeof trades.$inferInsert;

export interface OrderFilters {
  keyId?: string;
  symbol?: string;
  status?: OrderRow['status'];
  side?: OrderRow['side'];
  botId?: string;
  from?: Date;
  to?: Date;
}

export interface TradeFilters extends Omit<OrderFilters, 'status'> {
  orderId?: string;
}

export function createOrdersRepository(db: DbOrTx) {
  return {
    /** Inserts the pending row; null when the (user, key, client order id) already exists. */
    async insertPending(row: NewOrderRow, tx: DbOrTx = db): Promise<OrderRow | null> {
      const [created] = await tx.insert(orders).values(row).onConflictDoNothing().returning();
      return created ?? null;
    },
    async findByClientId(userId: string, keyId: string, clientOrderId: string, tx: DbOrTx = db): Promise<OrderRow | null> {
      const [row] = await tx
        .select()
        .from(orders)
        .where(and(eq(orders.userId, userId), eq(orders.keyId, keyId), eq(orders.clientOrderId, clientOrderId)));
      return row ?? null;
    },
    async findOwned(userId: string, id: string, tx: DbOrTx = db): Promise<OrderRow | null> {
      const [row] = await tx.select().from(orders).where(and(eq(orders.id, id), eq(orders.userId, userId)));
      return row ?? null;
    },
    async findById(id: string, tx: DbOrTx = db): Promise<OrderRow | null> {
      const [row] = await tx.select().from(orders).where(eq(orders.id, id));
      return row ?? null;
    },
    async update(id: string, patch: Partial<NewOrderRow>, tx: DbOrTx = db): Promise<OrderRow> {
      const [row] = await tx.update(orders).set({ ...patch, updatedAt: new Date() }).where(eq(orders.id, id)).returning();
      return row;
    },
    /** Pending and open orders, least recently synced first. */
    active(limit: number, tx: DbOrTx = db): Promise<OrderRow[]> {
      return tx.select().from(orders).where(inArray(orders.status, ['pending', 'open'])).orderBy(asc(orders.updatedAt)).limit(limit);
    },
    list(userId: string, f: OrderFilters, cursor: Cursor | undefined, limit: number, tx: DbOrTx = db): Promise<OrderRow[]> {
      const where: Array<SQL | undefined> = [
        eq(orders.userId, userId),
        f.keyId ? eq(orders.keyId, f.keyId) : undefined,
        f.symbol ? eq(orders.symbol, f.symbol) : undefined,
        f.status ? eq(orders.status, f.status) : undefined,
        f.side ? eq(orders.side, f.side) : undefined,
        f.botId ? eq(orders.botId, f.botId) : undefined,
        f.from ? gte(orders.createdAt, f.from) : undefined,
        f.to ? lt(orders.createdAt, f.to) : undefined,
        beforeCursor(orders.createdAt, orders.id, cursor),
      ];
      return tx.select().from(orders).where(and(...where)).orderBy(...newestFirst(orders.createdAt, orders.id)).limit(limit + 1);
    },
    /** Stores fills; ones already stored (same order and exchange trade id) are skipped. Returns the new ones. */
    async insertTrades(rows: NewTradeRow[], tx: DbOrTx = db): Promise<TradeRow[]> {
      if (rows.length === 0) return [];
      return tx.insert(trades).values(rows).onConflictDoNothing().returning();
    },
    listTrades(userId: string, f: TradeFilters, cursor: Cursor | undefined, limit: number, tx: DbOrTx = db): Promise<TradeRow[]> {
      const where: Array<SQL | undefined> = [
        eq(trades.userId, userId),
        f.keyId ? eq(trades.keyId, f.keyId) : undefined,
        f.symbol ? eq(trades.symbol, f.symbol) : undefined,
        f.side ? eq(trades.side, f.side) : undefined,
        f.botId ? eq(trades.botId, f.botId) : undefined,
        f.orderId ? eq(trades.orderId, f.orderId) : undefined,
        f.from ? gte(trades.executedAt, f.from) : undefined,
        f.to ? lte(trades.executedAt, f.to) : undefined,
        beforeCursor(trades.executedAt, trades.id, cursor),
      ];
      return tx.select().from(trades).where(and(...where)).orderBy(...newestFirst(trades.executedAt, trades.id)).limit(limit + 1);
    },
    async countTrades(orderId: string, tx: DbOrTx = db): Promise<number> {
      const [row] = await tx.select({ n: sql<number>`count(*)::int` }).from(trades).where(eq(trades.orderId, orderId));
      return row?.n ?? 0;
    },
  };
}

export type OrdersRepository = ReturnType<typeof createOrdersRepository>;
