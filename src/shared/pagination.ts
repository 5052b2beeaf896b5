import { z } from 'zod';
import { and, desc, eq, lt, or, type AnyColumn, type SQL } from 'drizzle-orm';
import { badRequest } from '../errors.js';

/**
 * Keyset (cursor) pagination, newest first: stable under inserts (a new row never shifts a page the client is
 * reading), O(limit) per page on an index of (owner, created_at, id). The cursor is opaque to clients.
 */
export const CursorQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).describe('Page size (1-200)'),
  cursor: z.string().max(200).optional().describe('`nextCursor` of the previous page'),
});
export type CursorQuery = z.infer<typeof CursorQuery>;

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
  });

export interface Cursor {
  at: Date;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.at.toISOString(), c.id])).toString('base64url');
}

export function decodeCursor(raw: string | undefined): Cursor | undefined {
  if (raw === undefined) return undefined;
  try {
    const [at, id] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(at);
    if (typeof id !== 'string' || Number.isNaN(date.getTime())) throw new Error('bad');
    return { at: date, id };
  } catch {
    throw badRequest('cursor is not a cursor this API returned', 'INVALID_CURSOR');
  }
}

/** `WHERE (at, id) < (cursor.at, cursor.id)` for a newest-first listing. */
export function beforeCursor(atCol: AnyColumn, idCol: AnyColumn, cursor: Cursor | undefined): SQL | undefined {
  if (!cursor) return undefined;
  return or(lt(atCol, cursor.at), and(eq(atCol, cursor.at), lt(idCol, cursor.id)));
}

export const newestFirst = (atCol: AnyColumn, idCol: AnyColumn) => [desc(atCol), desc(idCol)];

/** Fetch `limit + 1` rows, then call this: returns the page and the cursor of its last row when more exist. */
export function toPage<R, T>(rows: R[], limit: number, key: (r: R) => Cursor, map: (r: R) => T): { items: T[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  return { items: page.map(map), nextCursor: more ? encodeCursor(key(page[page.length - 1])) : null };
}
