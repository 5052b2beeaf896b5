import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

export type DiagnosticsProvider = () => Record<string, unknown> | Promise<Record<string, unknown>>;

export interface Diagnostics {
  /** Adds a named state provider shown on /admin/dashboard (worker pool, job queue, feeds...). */
  register(name: string, provider: DiagnosticsProvider): void;
  /** Every provider's state; a provider that throws shows `{ error }` instead of failing the dashboard. */
  collect(): Promise<Record<string, Record<string, unknown>>>;
  /** 5xx responses answered by this process in the last `windowMs` (at most one hour is kept). */
  recentErrors(windowMs?: number): number;
}

declare module 'fastify' {
  interface FastifyInstance {
    diagnostics: Diagnostics;
  }
}

const BUCKET_MS = 60_000;
const BUCKETS = 60;

/**
 * In-process diagnostics for the admin dashboard: a registry of state providers and a one-hour count of 5xx
 * responses (60 one-minute buckets; constant memory). Registered at the root so every plugin can add a provider.
 */
export default fp(
  async function diagnosticsPlugin(app: FastifyInstance) {
    const providers = new Map<string, DiagnosticsProvider>();
    const counts = new Array<number>(BUCKETS).fill(0);
    const stamps = new Array<number>(BUCKETS).fill(-1);

    // Synchronous: it runs on every response, and an async hook costs a promise each time.
    app.addHook('onResponse', function countServerErrors(_request, reply, done) {
      if (reply.statusCode < 500) return done();
      const minute = Math.floor(Date.now() / BUCKET_MS);
      const i = minute % BUCKETS;
      if (stamps[i] !== minute) {
        stamps[i] = minute;
        counts[i] = 0;
      }
      counts[i]++;
      done();
    });

    app.decorate('diagnostics', {
      register(name, provider) {
        if (providers.has(name)) throw new Error(`diagnostics provider ${name} is already registered`);
        providers.set(name, provider);
      },
      async collect() {
        const entries = await Promise.all(
          [...providers].map(async ([name, provider]) => {
            try {
              return [name, await provider()] as const;
            } catch (err) {
              return [name, { error: (err as Error).message }] as const;
            }
          }),
        );
        return Object.fromEntries(entries);
      },
      recentErrors(windowMs = BUCKETS * BUCKET_MS) {
        const now = Math.floor(Date.now() / BUCKET_MS);
        const oldest = now - Math.min(BUCKETS, Math.ceil(windowMs / BUCKET_MS)) + 1;
        let total = 0;
        for (let i = 0; i < BUCKETS; i++) if (stamps[i] >= oldest && stamps[i] <= now) total += counts[i];
        return total;
      },
    } satisfies Diagnostics);
  },
  { name: 'diagnostics' },
);
