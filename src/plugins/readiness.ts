import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

export interface CheckResult {
  ok: boolean;
  detail?: string;
}
export type ReadinessCheck = () => Promise<CheckResult> | CheckResult;

export interface Readiness {
  /** Adds a named check; subsystems (database, worker pool, market feeds) register theirs when they start. */
  register(name: string, check: ReadinessCheck): void;
  /** Runs every check concurrently, each bounded by `timeoutMs`; a throw or timeout is a failure. */
  run(timeoutMs?: number): Promise<{ ready: boolean; checks: Record<string, CheckResult> }>;
  readonly shuttingDown: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    readiness: Readiness;
  }
}

export default fp(
  async function readinessPlugin(app: FastifyInstance) {
    const checks = new Map<string, ReadinessCheck>();
    let shuttingDown = false;
    app.addHook('preClose', async () => {
      shuttingDown = true;
    });

    const runOne = async (check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          Promise.resolve().then(check),
          new Promise<CheckResult>((resolve) => {
            timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
          }),
        ]);
      } catch (err) {
        return { ok: false, detail: (err as Error).message };
      } finally {
        clearTimeout(timer);
      }
    };

    app.decorate('readiness', {
      register(name, check) {
        if (checks.has(name)) throw new Error(`readiness check ${name} is already registered`);
        checks.set(name, check);
      },
      async run(timeoutMs = 3000) {
        const entries = await Promise.all([...checks].map(async ([name, check]) => [name, await runOne(check, timeoutMs)] as const));
        const results: Record<string, CheckResult> = Object.fromEntries(entries);
        if (shuttingDown) results.shutdown = { ok: false, detail: 'server is shutting down' };
        return { ready: Object.values(results).every((r) => r.ok), checks: results };
      },
      get shuttingDown() {
        return shuttingDown;
      },
    } satisfies Readiness);
  },
  { name: 'readiness' },
);
