import { z } from 'zod';
import { CursorQuery, pageOf } from '../../shared/pagination.js';

/**
 * The document is validated by the DSL's own parser (workers/engine/dsl.ts) in the service, so its issues come back
 * with JSON pointers into the document; here it is only "a JSON object".
 */
const StrategyDocument = z
  .record(z.string(), z.unknown())
  .describe('Strategy document in the JSON DSL (version 1); its JSON Schema is at GET /strategies/schema');

export const CreateStrategyBody = z.object({
  name: z.string().trim().min(1).max(100).optional().describe('Defaults to the document name'),
  description: z.string().max(2000).optional(),
  document: StrategyDocument,
});
export type CreateStrategyBody = z.infer<typeof CreateStrategyBody>;

export const UpdateStrategyBody = z.object({
  name: z.string().trim().min(1).max(100).optional(),
  description: z.string().max(2000).optional(),
  document: StrategyDocument.describe('The new version of the document'),
});
export type UpdateStrategyBody = z.infer<typeof UpdateStrategyBody>;

export const StrategySummary = z.object({
  id: z.uuid(),
  name: z.string(),
  description: z.string().nullable(),
  latestVersion: z.number().int(),
  origin: z.enum(['user', 'ai']),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});

export const Strategy = StrategySummary.extend({
  version: z.number().int().describe('The version of `document`'),
  document: z.record(z.string(), z.unknown()),
  aiPrompt: z.string().nullable().describe('The prompt that produced an AI-generated strategy'),
}).meta({ id: 'Strategy' });
export type Strategy = z.infer<typeof Strategy>;

export const StrategyParams = z.object({ id: z.uuid() });
export const VersionQuery = z.object({ version: z.coerce.number().int().min(1).optional().describe('Defaults to the latest') });
export const ListStrategiesQuery = CursorQuery;
export const StrategyPage = pageOf(StrategySummary);
export const VersionList = z.object({
  items: z.array(z.object({ version: z.number().int(), createdAt: z.iso.datetime() })),
});
export const ValidateBody = z.object({ document: z.unknown() });
export const ValidateResponse = z.object({
  valid: z.boolean(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })),
});
