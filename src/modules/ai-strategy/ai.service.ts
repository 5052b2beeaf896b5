/**
 * AI strategy generation (the original backend's `POST /ai_strategy/generate`), on top of the DeepSeek client
 * (deepseek.client.ts), the strategies domain (saving) and, when present, the backtests domain.
 *
 * Every attempt is recorded in `ai_generations`: a `pending` row is inserted before the model is called (under a row
 * lock on the user, together with the quota check, so concurrent requests cannot overrun the quota), and completed
 * with the outcome afterwards. The daily quota counts ATTEMPTS of the current UTC day, whatever their outcome:
 * a failed generation costs provider tokens and time as well, and counting only successes would let a client loop on
 * invalid prompts for free. Requests refused before any attempt (not configured, quota exceeded, invalid body) are
 * neither recorded nor counted. AI_DAILY_QUOTA=0 means no quota.
 *
 * The generated document is data only: validated with the DSL's parser (`parseStrategy`), saved as JSON, never
 * executed, fetched or used as a path. The API key lives only inside the generator.
 */
import type { Db } from '../../db/client.js';
import { HttpProblem, notFound, serviceUnavailable, tooManyRequests } from '../../errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { AiOutcome } from '../../db/schema/ai.js';
import type { AuditEntry } from '../audit/index.js';
import { generationFailure, type StrategyGenerator, type ModelInfo } from './deepseek.client.js';
import { createAiRepository, type AiGenerationRow } from './ai.repository.js';
import type { GenerateBacktestOptions, GenerateBody, GenerateResponse, HistoryDetail, HistoryItem } from './ai.schemas.js';

type Who = Pick<AuditEntry, 'actorId' | 'ip' | 'requestId'>;

/** What the backtests domain is asked for (kept narrow so this domain does not depend on its internals). */
export interface StartBacktestInput extends GenerateBacktestOptions {
  strategyId: string;
  strategyVersion: number;
}
export type StartBacktest = (userId: string, input: StartBacktestInput, who: Who) => Promise<{ id: string }>;

/** The part of the strategies service used here. */
export interface StrategySaver {
  create(
    userId: string,
    input: { name?: string; description?: string; document: Record<string, unknown>; origin?: 'user' | 'ai'; aiPrompt?: string },
    who: Who,
  ): Promise<{ id: string; version: number }>;
}

export interface AiServiceDeps {
  db: Db;
  generator: StrategyGenerator;
  /** False when DEEPSEEK_API_KEY is missing: every generation answers 503 AI_NOT_CONFIGURED. */
  configured: boolean;
  model: string;
  /** DEEPSEEK_TIMEOUT_MS: no generation runs longer (used to tell interrupted attempts from running ones). */
  timeoutMs: number;
  /** Attempts per user per UTC day; 0 = unlimited. */
  dailyQuota: number;
  strategies: StrategySaver;
  /** Resolved lazily: the backtests domain may register after this one, or not at all. */
  startBacktest?: () => StartBacktest | undefined;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  onOutcome?: (outcome: AiOutcome) => void;
  now?: () => Date;
}

/** Raw answers are stored up to this many characters. */
export const MAX_STORED_ANSWER_CHARS = 64 * 1024;
const MAX_STORED_DETAIL_CHARS = 2000;
/** The explanation is meant to be short (the prompt asks for at most 1200 characters); longer ones are cut. */
export const MAX_EXPLANATION_CHARS = 2000;

/** PostgreSQL text cannot hold NUL; bound the length too. */
function storable(text: string | undefined | null, max: number): string | null {
  if (text === undefined || text === null) return null;
  const clean = text.replace(/\u0000/g, '\uFFFD');
  return clean.length <= max ? clean : `${clean.slice(0, max)}…`;
}

const startOfUtcDay = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));

/** The final outcome recorded for an error thrown by the generator (or by the save/backtest steps). */
export function outcomeOf(err: unknown, callerAborted: boolean): { outcome: AiOutcome; code: string; detail: string } {
  if (err instanceof HttpProblem) {
    const outcome: AiOutcome =
      err.code === 'AI_STRATEGY_INVALID' || err.statusCode === 422
        ? 'invalid'
        : err.statusCode === 504
          ? 'timeout'
          : err.statusCode === 502 || err.statusCode === 503
            ? 'provider_error'
            : err.statusCode < 500
              ? 'rejected'
              : 'failed';
    return { outcome, code: err.code, detail: err.message };
  }
  if (callerAborted) return { outcome: 'rejected', code: 'CLIENT_CLOSED', detail: 'The client closed the connection before the generation finished' };
  return { outcome: 'failed', code: 'INTERNAL', detail: 'Unexpected error' };
}

function item(row: AiGenerationRow): HistoryItem {
  return {
    id: row.id,
    prompt: row.prompt,
    model: row.model,
    outcome: row.outcome,
    errorCode: row.errorCode,
    usage: { promptTokens: row.promptTokens, completionTokens: row.completionTokens, totalTokens: row.totalTokens },
    latencyMs: row.latencyMs,
    rounds: row.rounds,
    strategyId: row.strategyId,
    backtestId: row.backtestId,
    createdAt: row.createdAt.toISOString(),
    finishedAt: row.finishedAt ? row.finishedAt.toISOString() : null,
  };
}

function detail(row: AiGenerationRow): HistoryDetail {
  return { ...item(row), request: row.request, errorDetail: row.errorDetail, explanation: row.explanation, rawAnswer: row.rawAnswer };
}

export function createAiService(deps: AiServiceDeps) {
  const { db, generator, configured, model, dailyQuota, strategies, log } = deps;
  const repo = createAiRepository(db);
  const now = deps.now ?? (() => new Date());
  const notConfigured = () =>
    serviceUnavailable('AI strategy generation is not configured (DEEPSEEK_API_KEY)', undefined, 'AI_NOT_CONFIGURED');

  /** Check the quota and insert the pending row, atomically per user. */
  async function begin(userId: string, body: GenerateBody): Promise<AiGenerationRow> {
    const { prompt, ...options } = body;
    return db.transaction(async (tx) => {
      const at = now();
      if (dailyQuota > 0) {
        if (!(await repo.lockUser(userId, tx))) throw notFound('User', undefined, 'USER_NOT_FOUND');
        const used = await repo.countSince(userId, startOfUtcDay(at), tx);
        if (used >= dailyQuota) {
          const midnight = startOfUtcDay(at).getTime() + 86_400_000;
          const retryAfter = Math.max(1, Math.ceil((midnight - at.getTime()) / 1000));
          throw new HttpProblem(429, 'AI_QUOTA_EXCEEDED', 'Too Many Requests', `Daily AI generation quota of ${dailyQuota} reached; it resets at midnight UTC`, {
            headers: { 'retry-after': String(retryAfter) },
            extensions: { quota: dailyQuota, used, resetsAt: new Date(midnight).toISOString() },
          });
        }
      }
      return repo.insert({ userId, prompt: storable(prompt, 10_000)!, request: options, model, createdAt: at }, tx);
    });
  }

  async function finish(id: string, patch: Parameters<typeof repo.update>[1]): Promise<void> {
    await repo.update(id, { ...patch, finishedAt: now() });
    if (patch.outcome) deps.onOutcome?.(patch.outcome);
  }

  return {
    configured,

    async generate(userId: string, body: GenerateBody, who: Who, signal?: AbortSignal): Promise<GenerateResponse> {
      if (!configured) throw notConfigured();
      const row = await begin(userId, body);

      let result;
      try {
        result = await generator.generate({
          prompt: body.prompt,
          symbol: body.symbol,
          timeframe: body.timeframe,
          risk: body.risk,
          constraints: body.constraints,
          signal,
        });
      } catch (err) {
        const spent = generationFailure(err);
        const o = outcomeOf(err, signal?.aborted === true);
        if (o.outcome === 'failed') log?.error({ err, generationId: row.id }, 'AI generation failed unexpectedly');
        await finish(row.id, {
          outcome: o.outcome,
          errorCode: o.code,
          errorDetail: storable(o.detail, MAX_STORED_DETAIL_CHARS),
          model: spent?.model ?? model,
          rawAnswer: storable(spent?.lastAnswer, MAX_STORED_ANSWER_CHARS),
          promptTokens: spent?.usage.promptTokens ?? 0,
          completionTokens: spent?.usage.completionTokens ?? 0,
          totalTokens: spent?.usage.totalTokens ?? 0,
          rounds: spent?.rounds ?? 0,
          latencyMs: spent?.latencyMs ?? Math.max(0, now().getTime() - row.createdAt.getTime()),
        }).catch((e: unknown) => log?.error({ err: e, generationId: row.id }, 'could not record the AI generation outcome'));
        if (o.code === 'CLIENT_CLOSED') {
          // Nobody is listening; an HttpProblem keeps it out of the internal-error logs.
          throw new HttpProblem(499, 'CLIENT_CLOSED', 'Client Closed Request', o.detail);
        }
        throw err;
      }

      const document = result.strategy as Record<string, unknown>;
      const explanation = storable(result.explanation, MAX_EXPLANATION_CHARS) ?? '';
      await finish(row.id, {
        outcome: 'succeeded',
        model: result.model,
        rawAnswer: storable(result.rawAnswer, MAX_STORED_ANSWER_CHARS),
        explanation,
        promptTokens: result.usage.promptTokens,
        completionTokens: result.usage.completionTokens,
        totalTokens: result.usage.totalTokens,
        rounds: result.rounds,
        latencyMs: result.latencyMs,
      });

      const response: GenerateResponse = {
        generationId: row.id,
        strategy: document,
        explanation,
        model: result.model,
        usage: result.usage,
        latencyMs: result.latencyMs,
        rounds: result.rounds,
      };

      // A backtest needs a saved strategy, so `backtest` implies `save`.
      if (body.save || body.backtest) {
        const saved = await strategies.create(userId, { name: body.name, document, origin: 'ai', aiPrompt: body.prompt }, who);
        response.strategyId = saved.id;
        await repo.update(row.id, { strategyId: saved.id });
        if (body.backtest) {
          const start = deps.startBacktest?.();
          if (!start) {
            throw new HttpProblem(503, 'BACKTESTS_UNAVAILABLE', 'Service Unavailable', `Backtests are not available on this server; the strategy was saved as ${saved.id}`, {
              extensions: { strategyId: saved.id, generationId: row.id },
            });
          }
          let bt: { id: string };
          try {
            bt = await start(userId, { ...body.backtest, strategyId: saved.id, strategyVersion: saved.version }, who);
          } catch (err) {
            if (!(err instanceof HttpProblem)) throw err;
            // Keep the backtests domain's status and code, and say where the (already saved) strategy is.
            throw new HttpProblem(err.statusCode, err.code, err.title, `${err.message} (the backtest was not started; the strategy was saved as ${saved.id})`, {
              headers: err.headers,
              extensions: { ...err.extensions, strategyId: saved.id, generationId: row.id },
            });
          }
          response.backtestId = bt.id;
          await repo.update(row.id, { backtestId: bt.id });
        }
      }
      return response;
    },

    /**
     * Attempts still `pending` well after the generation budget were interrupted (process stopped): mark them failed.
     * Safe with several API instances: a row younger than the budget (+ 1 min of slack) is never touched.
     */
    async sweepInterrupted(): Promise<number> {
      const at = now();
      return repo.failStale(new Date(at.getTime() - deps.timeoutMs - 60_000), at);
    },

    async models(signal?: AbortSignal): Promise<{ items: ModelInfo[]; configured: string }> {
      if (!configured) throw notConfigured();
      return { items: await generator.listModels({ signal }), configured: model };
    },

    async history(userId: string, query: { limit: number; cursor?: string }) {
      const rows = await repo.listByUser(userId, query.limit, decodeCursor(query.cursor));
      return toPage(rows, query.limit, (r) => ({ at: r.createdAt, id: r.id }), item);
    },

    async historyEntry(userId: string, id: string): Promise<HistoryDetail> {
      const row = await repo.findOwned(userId, id);
      if (!row) throw notFound('AI generation', id, 'AI_GENERATION_NOT_FOUND');
      return detail(row);
    },
  };
}
export type AiService = ReturnType<typeof createAiService>;
