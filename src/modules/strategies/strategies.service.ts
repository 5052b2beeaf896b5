import type { Db } from '../../db/client.js';
import { notFound, validationFailed } from '../../errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import { parseStrategy, strategyJsonSchema, type StrategyDoc } from '../../../workers/engine/dsl.js';
import { audit, type AuditEntry } from '../audit/index.js';
import { createStrategiesRepository, type StrategyRow } from './strategies.repository.js';
import type { CreateStrategyBody, Strategy, UpdateStrategyBody } from './strategies.schemas.js';

type Who = Pick<AuditEntry, 'actorId' | 'ip' | 'requestId'>;

const summary = (row: StrategyRow) => ({
  id: row.id,
  name: row.name,
  description: row.description,
  latestVersion: row.latestVersion,
  origin: row.origin,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** Validates a document with the engine's own DSL parser; issues point into the request (`/body/document/...`). */
export function validateDocument(document: unknown, pointerPrefix = '/body/document'): StrategyDoc {
  const parsed = parseStrategy(document);
  if (!parsed.ok) {
    throw validationFailed(
      `Strategy document is invalid (${parsed.issues.length} issue${parsed.issues.length === 1 ? '' : 's'})`,
      parsed.issues.map((i) => ({ path: `${pointerPrefix}${i.path}`, message: i.message })),
      'INVALID_STRATEGY',
    );
  }
  return parsed.value;
}

export function createStrategiesService(deps: { db: Db }) {
  const { db } = deps;
  const repo = createStrategiesRepository(db);

  const view = (row: StrategyRow, version: number, document: Record<string, unknown>): Strategy => ({
    ...summary(row),
    version,
    document,
    aiPrompt: row.aiPrompt,
  });

  return {
    jsonSchema: strategyJsonSchema,

    check(document: unknown) {
      const parsed = parseStrategy(document);
      return parsed.ok ? { valid: true, issues: [] } : { valid: false, issues: parsed.issues };
    },

    async create(userId: string, input: CreateStrategyBody & { origin?: 'user' | 'ai'; aiPrompt?: string }, who: Who): Promise<Strategy> {
      const doc = validateDocument(input.document);
      return db.transaction(async (tx) => {
        const row = await repo.insert(
          {
            userId,
            name: input.name ?? doc.name,
            description: input.description ?? doc.description ?? null,
            origin: input.origin ?? 'user',
            aiPrompt: input.aiPrompt ?? null,
          },
          doc as Record<string, unknown>,
          tx,
        );
        await audit(tx, { ...who, action: 'strategy.created', targetType: 'strategy', targetId: row.id, details: { origin: row.origin } });
        return view(row, 1, doc as Record<string, unknown>);
      });
    },

    async list(userId: string, query: { limit: number; cursor?: string }) {
      const rows = await repo.listByUser(userId, query.limit, decodeCursor(query.cursor));
      return toPage(rows, query.limit, (r) => ({ at: r.createdAt, id: r.id }), summary);
    },

    /** A version of one of the user's strategies (latest by default). Another user's id answers 404. */
    async get(userId: string, id: string, version?: number): Promise<Strategy> {
      const row = await repo.findOwned(userId, id);
      if (!row) throw notFound('Strategy', id, 'STRATEGY_NOT_FOUND');
      const v = await repo.version(id, version ?? row.latestVersion);
      if (!v) throw notFound(`Strategy ${id} version`, version, 'STRATEGY_VERSION_NOT_FOUND');
      return view(row, v.version, v.document);
    },

    async versions(userId: string, id: string) {
      const row = await repo.findOwned(userId, id);
      if (!row) throw notFound('Strategy', id, 'STRATEGY_NOT_FOUND');
      return { items: (await repo.versions(id)).map((v) => ({ version: v.version, createdAt: v.createdAt.toISOString() })) };
    },

    /** Adds a new version (old ones stay readable); concurrent updates serialise on the row lock. */
    async update(userId: string, id: string, input: UpdateStrategyBody, who: Who): Promise<Strategy> {
      const doc = validateDocument(input.document);
      return db.transaction(async (tx) => {
        const row = await repo.findOwnedForUpdate(userId, id, tx);
        if (!row) throw notFound('Strategy', id, 'STRATEGY_NOT_FOUND');
        const updated = await repo.addVersion(row, { name: input.name, description: input.description }, doc as Record<string, unknown>, tx);
        await audit(tx, { ...who, action: 'strategy.updated', targetType: 'strategy', targetId: id, details: { version: updated.latestVersion } });
        return view(updated, updated.latestVersion, doc as Record<string, unknown>);
      });
    },

    async remove(userId: string, id: string, who: Who): Promise<void> {
      await db.transaction(async (tx) => {
        if (!(await repo.deleteOwned(userId, id, tx))) throw notFound('Strategy', id, 'STRATEGY_NOT_FOUND');
        await audit(tx, { ...who, action: 'strategy.deleted', targetType: 'strategy', targetId: id });
      });
    },
  };
}
export type StrategiesService = ReturnType<typeof createStrategiesService>;
