import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Counter } from 'prom-client';
import { parseStrategy, strategyJsonSchema } from '../../../workers/engine/dsl.js';
import { projectRoot } from '../../shared/paths.js';
import { createStrategyGenerator, type ValidateResult } from './deepseek.client.js';
import { createAiService, type AiService, type StartBacktest } from './ai.service.js';
import aiRoutes from './ai.routes.js';
import { AI_OUTCOMES } from '../../db/schema/ai.js';

declare module 'fastify' {
  interface FastifyInstance {
    aiService: AiService;
  }
}

/** The strategy documents under examples/strategies/, shown to the model (only the ones the DSL parser accepts). */
export function loadExampleStrategies(dir = path.join(projectRoot, 'examples', 'strategies')): object[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
  const out: object[] = [];
  for (const f of files) {
    try {
      const parsed = parseStrategy(JSON.parse(readFileSync(path.join(dir, f), 'utf8')));
      if (parsed.ok) out.push(parsed.value);
    } catch {
      // not an example then
    }
  }
  return out;
}

function hasNul(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\u0000');
  if (Array.isArray(v)) return v.some(hasNul);
  if (v !== null && typeof v === 'object') return Object.entries(v).some(([k, x]) => k.includes('\u0000') || hasNul(x));
  return false;
}

/** The DSL's own parser, as the generator's validator (the same check user strategies go through). */
export function validateStrategy(doc: unknown): ValidateResult {
  const parsed = parseStrategy(doc);
  if (!parsed.ok) return { ok: false, issues: parsed.issues };
  // The document is stored as jsonb, which cannot hold NUL characters: ask the model for a clean one instead.
  if (hasNul(parsed.value)) {
    return { ok: false, issues: [{ path: '', message: 'strings must not contain NUL (\\u0000) characters' }] };
  }
  return { ok: true, value: parsed.value };
}

export default fp(
  async function aiStrategyModule(app: FastifyInstance) {
    const cfg = app.config.deepseek;
    const log = app.log.child({ module: 'ai-strategy' });
    const generator = createStrategyGenerator({
      apiKey: cfg.apiKey,
      baseURL: cfg.baseUrl,
      model: cfg.model,
      timeoutMs: cfg.timeoutMs,
      maxTokens: cfg.maxTokens,
      validate: validateStrategy,
      schemaJson: strategyJsonSchema(),
      examples: loadExampleStrategies(),
      log,
    });
    const generations = new Counter({
      name: 'ai_generations_total',
      help: 'AI strategy generation attempts by outcome',
      labelNames: ['outcome'],
      registers: [app.metrics],
    });
    for (const o of AI_OUTCOMES) if (o !== 'pending') generations.inc({ outcome: o }, 0);

    const service = createAiService({
      db: app.database.db,
      generator,
      configured: cfg.apiKey !== undefined,
      model: cfg.model,
      timeoutMs: cfg.timeoutMs,
      dailyQuota: cfg.dailyQuota,
      strategies: app.strategiesService,
      // The backtests domain may be absent, or registered after this one: look it up when needed.
      startBacktest: (): StartBacktest | undefined => {
        if (!app.hasDecorator('backtestsService')) return undefined;
        const backtests = app.backtestsService;
        return (userId, input, who) => backtests.start(userId, input, who);
      },
      log,
      onOutcome: (outcome) => generations.inc({ outcome }),
    });
    app.decorate('aiService', service);
    app.diagnostics.register('ai', () => ({ configured: service.configured, model: cfg.model, dailyQuota: cfg.dailyQuota }));
    if (cfg.apiKey === undefined) log.info('DEEPSEEK_API_KEY is not set: AI strategy generation answers 503');
    app.addHook('onReady', () =>
      app.onDatabaseReady('ai-generation-sweep', async () => {
        const n = await service.sweepInterrupted();
        if (n > 0) log.info({ count: n }, 'marked interrupted AI generations as failed');
      }),
    );
    await app.register(aiRoutes);
  },
  { name: 'ai-strategy', dependencies: ['db', 'auth', 'strategies'] },
);
