import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Piscina } from 'piscina';
import { projectRoot } from '../shared/paths.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The one Piscina pool for CPU-heavy work (backtests). Tasks are pure functions in workers/. */
    workerPool: Piscina;
  }
}

/**
 * The worker file, picked in this one place: the build runs dist/workers/*.js with plain Node; from source (tsx)
 * the backtest worker starts from workers/source-entry.mjs, which loads it as an ES module (see there).
 */
export function workerFile(name: string): string {
  const fromSource = import.meta.url.endsWith('.ts');
  const sourceFile = name === 'backtest.worker' ? 'source-entry.mjs' : `${name}.ts`;
  const file = fromSource ? path.join(projectRoot, 'workers', sourceFile) : path.join(projectRoot, 'dist', 'workers', `${name}.js`);
  if (!existsSync(file)) throw new Error(`worker file ${file} is missing${fromSource ? '' : ' (run npm run build)'}`);
  return pathToFileURL(file).href;
}

export function poolThreads(configured: number): number {
  return configured > 0 ? configured : Math.max(1, availableParallelism() - 1);
}

export interface WorkerPoolOptions {
  /** Worker file URL or path instead of workers/backtest.worker (tests: a worker that crashes on purpose). */
  filename?: string;
}

export default fp(
  async function workerPoolPlugin(app: FastifyInstance, opts: WorkerPoolOptions) {
    const threads = poolThreads(app.config.backtest.threads);
    const pool = new Piscina({
      filename: opts.filename ?? workerFile('backtest.worker'),
      minThreads: 0, // threads start with the first task: an idle API (and every test app) costs none
      maxThreads: threads,
      maxQueue: app.config.backtest.queueMax,
      idleTimeout: 60_000,
      // Idle threads wait in their event loop, not in Atomics.wait: the job task collects garbage after a large run
      // once its result is posted (src/modules/backtests/backtest.job.ts), which a blocked thread would never do.
      atomics: 'disabled',
      // Backtests fill the cores; the event loop (API, health probes, bots) keeps the CPU first (needs @napi-rs/nice).
      niceIncrement: app.config.backtest.nice,
      // A runaway strategy must not take the API process down with it.
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
    // A crashed worker rejects its own task; the pool replaces the thread. Log it, keep serving.
    pool.on('error', (err: Error) => app.log.error({ err }, 'worker pool error'));
    app.decorate('workerPool', pool);

    app.readiness.register('worker-pool', () => ({
      ok: pool.queueSize < app.config.backtest.queueMax,
      detail: `${pool.threads.length}/${threads} threads, ${pool.queueSize}/${app.config.backtest.queueMax} queued`,
    }));
    app.diagnostics.register('workerPool', () => ({
      maxThreads: threads,
      threads: pool.threads.length,
      queueSize: pool.queueSize,
      maxQueue: app.config.backtest.queueMax,
      completed: pool.completed,
      utilization: Math.round(pool.utilization * 1000) / 1000,
    }));
    // Running tasks are aborted on shutdown: their jobs stay queued in the database and run again after a restart.
    app.addHook('onClose', async () => pool.destroy());
  },
  { name: 'worker-pool', dependencies: ['readiness', 'diagnostics'] },
);
