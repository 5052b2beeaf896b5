import type { Dialect, DialectContext } from './types.js';

export function createBitgetDialect(_ctx: DialectContext): Dialect {
  const e = { status: 501, body: { msg: 'todo' } };
  return { handle: () => e, authError: () => e, rateLimited: () => e, serverError: () => e };
}
