import { randomUUID } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';

/**
 * Dispatch queue for background jobs (backtests). The database row is the job's state; the queue only decides WHEN a
 * job runs: FIFO, at most `concurrency` jobs running on this instance, at most `perUser` running per user across all
 * instances, at most `maxWaiting` jobs waiting (enqueue then throws QueueFullError -> 503).
 *
 * In-process by default. With REDIS_URL the Redis implementation lets several API instances share one queue: the
 * waiting list and the running leases live in Redis (Lua scripts keep claim/enqueue atomic), cancel and wake-ups go
 * over pub/sub. BullMQ is not used because per-group (per-user) concurrency is not part of its open-source edition.
 */
export interface QueuedJob {
  id: string;
  userId: string;
}

/** Why a running job's signal was aborted. */
export type AbortReason = 'cancelled' | 'shutdown';
export class JobAborted extends Error {
  constructor(readonly reason: AbortReason) {
    super(reason === 'cancelled' ? 'cancelled' : 'server shutting down');
    this.name = 'JobAborted';
  }
}

export class QueueFullError extends Error {
  constructor(readonly waiting: number, readonly max: number) {
    super(`the backtest queue is full (${waiting}/${max} waiting)`);
    this.name = 'QueueFullError';
  }
}

/** Runs one job; `signal` aborts with a JobAborted reason (cancel, or shutdown of this instance). */
export type JobHandler = (job: QueuedJob, signal: AbortSignal) => Promise<void>;

export interface QueueStats {
  kind: 'memory' | 'redis';
  /** Waiting jobs (all instances for Redis). */
  waiting: number;
  maxWaiting: number;
  /** Jobs running on this instance. */
  runningHere: number;
  concurrency: number;
  perUser: number;
}

export interface JobQueue {
  readonly kind: 'memory' | 'redis';
  /** Adds a job (idempotent by id). Throws QueueFullError when `maxWaiting` jobs already wait. */
  enqueue(job: QueuedJob): Promise<void>;
  /** Removes a waiting job, or aborts it (reason 'cancelled') on whichever instance runs it. */
  cancel(id: string): Promise<void>;
  /** Starts dispatching to `handler`. */
  start(handler: JobHandler): void;
  /** Waiting jobs (all instances for Redis). */
  waiting(): Promise<number>;
  /** Ids of the jobs running on this instance. */
  runningIds(): string[];
  /** Ids this instance is responsible for (running here; in process also the waiting ones): heartbeat these. */
  heldIds(): string[];
  stats(): Promise<QueueStats>;
  /** Liveness of the backing store (always ok in process). */
  ping(): Promise<boolean>;
  /** Stops dispatching, aborts this instance's running jobs with reason 'shutdown' and waits for their handlers. */
  close(): Promise<void>;
}

export interface JobQueueOptions {
  maxWaiting: number;
  perUser: number;
  /** Jobs running at once on this instance (the worker pool's thread count). */
  concurrency: number;
  onError?: (err: unknown, job?: QueuedJob) => void;
}

interface Running {
  job: QueuedJob;
  ac: AbortController;
  done: Promise<void>;
}

/** Shared bookkeeping of the jobs running on this instance. */
function localRunner(opts: JobQueueOptions) {
  const running = new Map<string, Running>();
  let handler: JobHandler | undefined;
  let closed = false;
  return {
    running,
    get handler() {
      return handler;
    },
    set handler(h: JobHandler | undefined) {
      handler = h;
    },
    get closed() {
      return closed;
    },
    free: () => !closed && handler !== undefined && running.size < opts.concurrency,
    countFor: (userId: string) => {
      let n = 0;
      for (const r of running.values()) if (r.job.userId === userId) n++;
      return n;
    },
    run(job: QueuedJob, after: () => void) {
      const ac = new AbortController();
      const h = handler!;
      const entry = { job, ac } as Running;
      running.set(job.id, entry);
      entry.done = (async () => {
        try {
          await h(job, ac.signal);
        } catch (err) {
          opts.onError?.(err, job);
        } finally {
          running.delete(job.id);
          after();
        }
      })();
    },
    abort(id: string, reason: AbortReason) {
      const r = running.get(id);
      if (r && !r.ac.signal.aborted) r.ac.abort(new JobAborted(reason));
    },
    async close() {
      if (closed && running.size === 0) return;
      closed = true;
      for (const r of running.values()) if (!r.ac.signal.aborted) r.ac.abort(new JobAborted('shutdown'));
      await Promise.allSettled([...running.values()].map((r) => r.done));
    },
  };
}

export function createMemoryJobQueue(opts: JobQueueOptions): JobQueue {
  const waiting: QueuedJob[] = [];
  const local = localRunner(opts);

  function dispatch(): void {
    while (local.free()) {
      const idx = waiting.findIndex((j) => local.countFor(j.userId) < opts.perUser);
      if (idx < 0) return;
      const [job] = waiting.splice(idx, 1);
      local.run(job, dispatch);
    }
  }

  return {
    kind: 'memory',
    async enqueue(job) {
      if (local.running.has(job.id) || waiting.some((j) => j.id === job.id)) return;
      if (waiting.length >= opts.maxWaiting) throw new QueueFullError(waiting.length, opts.maxWaiting);
      waiting.push({ id: job.id, userId: job.userId });
      queueMicrotask(dispatch);
    },
    async cancel(id) {
      const idx = waiting.findIndex((j) => j.id === id);
      if (idx >= 0) waiting.splice(idx, 1);
      local.abort(id, 'cancelled');
    },
    start(handler) {
      local.handler = handler;
      queueMicrotask(dispatch);
    },
    async waiting() {
      return waiting.length;
    },
    runningIds: () => [...local.running.keys()],
    heldIds: () => [...local.running.keys(), ...waiting.map((j) => j.id)],
    async stats() {
      return { kind: 'memory', waiting: waiting.length, maxWaiting: opts.maxWaiting, runningHere: local.running.size, concurrency: opts.concurrency, perUser: opts.perUser };
    },
    async ping() {
      return true;
    },
    async close() {
      waiting.length = 0;
      await local.close();
    },
  };
}

// KEYS[1] waiting list, KEYS[2] running hash. ARGV: max, job json, id. Returns 1 (queued or already known) or 0 (full).
const ENQUEUE = `
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 1 end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, it in ipairs(items) do if cjson.decode(it).id == ARGV[3] then return 1 end end
if #items >= tonumber(ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
return 1`;

// KEYS[1] waiting, KEYS[2] running. ARGV: perUser, now ms, lease-until ms, owner. Drops expired leases (their
// instance is gone), then moves the first waiting job whose user is under the limit to running. Returns its json.
const CLAIM = `
local running = redis.call('HGETALL', KEYS[2])
local counts = {}
for i = 1, #running, 2 do
  local r = cjson.decode(running[i + 1])
  if tonumber(r.lease) < tonumber(ARGV[2]) then redis.call('HDEL', KEYS[2], running[i])
  else counts[r.userId] = (counts[r.userId] or 0) + 1 end
end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, it in ipairs(items) do
  local j = cjson.decode(it)
  if (counts[j.userId] or 0) < tonumber(ARGV[1]) then
    redis.call('LREM', KEYS[1], 1, it)
    redis.call('HSET', KEYS[2], j.id, cjson.encode({ userId = j.userId, lease = tonumber(ARGV[3]), owner = ARGV[4] }))
    return it
  end
end
return false`;

// KEYS[1] waiting. ARGV: id. Removes the waiting entry with that id.
const REMOVE = `
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, it in ipairs(items) do if cjson.decode(it).id == ARGV[1] then redis.call('LREM', KEYS[1], 1, it) return 1 end end
return 0`;

// KEYS[1] running. ARGV: lease-until, owner, ids... Extends this owner's leases.
const RENEW = `
for i = 3, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local r = cjson.decode(raw)
    if r.owner == ARGV[2] then r.lease = tonumber(ARGV[1]); redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(r)) end
  end
end
return 1`;

export interface RedisJobQueueOptions extends JobQueueOptions {
  url: string;
  /** Key and channel prefix (tests use a unique one). */
  prefix?: string;
  /** A running job's lease; renewed every third of it. An instance that dies frees its slots after this. */
  leaseMs?: number;
  /** Fallback poll for wake-ups missed on pub/sub. */
  pollMs?: number;
}

export function createRedisJobQueue(opts: RedisJobQueueOptions): JobQueue {
  const prefix = opts.prefix ?? 'jobs:';
  const leaseMs = opts.leaseMs ?? 30_000;
  const kWaiting = `${prefix}waiting`;
  const kRunning = `${prefix}running`;
  const channel = `${prefix}events`;
  const owner = randomUUID();
  const onError = (err: unknown) => opts.onError?.(err);
  const cmd = new Redis(opts.url, { maxRetriesPerRequest: 2 });
  const sub = new Redis(opts.url, { maxRetriesPerRequest: 2 });
  cmd.on('error', onError);
  sub.on('error', onError);
  const local = localRunner(opts);
  let claiming = false;
  let again = false;

  async function dispatch(): Promise<void> {
    if (claiming) {
      again = true;
      return;
    }
    claiming = true;
    try {
      do {
        again = false;
        while (local.free()) {
          const raw = (await cmd.eval(CLAIM, 2, kWaiting, kRunning, opts.perUser, Date.now(), Date.now() + leaseMs, owner)) as string | null;
          if (!raw) break;
          const job = JSON.parse(raw) as QueuedJob;
          local.run(job, () => void release(job.id));
        }
      } while (again && local.free());
    } catch (err) {
      onError(err);
    } finally {
      claiming = false;
    }
  }
  const wake = () => void dispatch();

  async function release(id: string): Promise<void> {
    try {
      await cmd.hdel(kRunning, id);
      await cmd.publish(channel, 'wake');
    } catch (err) {
      onError(err);
    }
    wake();
  }

  sub.on('message', (_ch: string, message: string) => {
    if (message === 'wake') wake();
    else if (message.startsWith('cancel:')) local.abort(message.slice('cancel:'.length), 'cancelled');
  });
  const subscribed = sub.subscribe(channel).catch(onError);
  const poll = setInterval(wake, opts.pollMs ?? 1000);
  poll.unref();
  const renew = setInterval(() => {
    const ids = [...local.running.keys()];
    if (ids.length) cmd.eval(RENEW, 1, kRunning, Date.now() + leaseMs, owner, ...ids).catch(onError);
  }, Math.max(100, Math.floor(leaseMs / 3)));
  renew.unref();

  return {
    kind: 'redis',
    async enqueue(job) {
      const ok = await cmd.eval(ENQUEUE, 2, kWaiting, kRunning, opts.maxWaiting, JSON.stringify({ id: job.id, userId: job.userId }), job.id);
      if (ok !== 1) throw new QueueFullError(await cmd.llen(kWaiting), opts.maxWaiting);
      await cmd.publish(channel, 'wake');
    },
    async cancel(id) {
      await cmd.eval(REMOVE, 1, kWaiting, id);
      local.abort(id, 'cancelled');
      await cmd.publish(channel, `cancel:${id}`);
    },
    start(handler) {
      local.handler = handler;
      void subscribed.then(wake);
    },
    waiting: () => cmd.llen(kWaiting),
    runningIds: () => [...local.running.keys()],
    heldIds: () => [...local.running.keys()],
    async stats() {
      return { kind: 'redis', waiting: await cmd.llen(kWaiting), maxWaiting: opts.maxWaiting, runningHere: local.running.size, concurrency: opts.concurrency, perUser: opts.perUser };
    },
    async ping() {
      try {
        return (await cmd.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    async close() {
      if (local.closed) return;
      clearInterval(poll);
      clearInterval(renew);
      const ids = [...local.running.keys()];
      await local.close();
      // Our leases go now: the jobs are resumed from the database (their rows stay queued) by the next start-up sweep.
      if (ids.length) await cmd.hdel(kRunning, ...ids).catch(onError);
      await Promise.allSettled([cmd.quit(), sub.quit()]);
    },
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Dispatch queue of backtest jobs (see src/modules/backtests). */
    backtestQueue: JobQueue;
  }
}

/**
 * `app.backtestQueue`: Redis-backed with REDIS_URL, in process otherwise. Runs as many jobs at once as the worker pool
 * has threads. Registers readiness (`backtest-queue`) and diagnostics (`backtestQueue`). The consumer calls `start()`.
 */
export default fp(
  async function jobQueuePlugin(app: FastifyInstance) {
    const cfg = app.config.backtest;
    const common: JobQueueOptions = {
      maxWaiting: cfg.queueMax,
      perUser: cfg.userConcurrency,
      concurrency: app.workerPool.options.maxThreads,
      onError: (err, job) => app.log.error({ err, jobId: job?.id }, 'backtest queue error'),
    };
    const queue = app.config.redisUrl ? createRedisJobQueue({ ...common, url: app.config.redisUrl, prefix: `${app.config.redisPrefix}backtests:` }) : createMemoryJobQueue(common);
    app.decorate('backtestQueue', queue);
    app.readiness.register('backtest-queue', async () => {
      const [alive, waiting] = await Promise.all([queue.ping(), queue.waiting().catch(() => -1)]);
      return { ok: alive && waiting >= 0 && waiting < cfg.queueMax, detail: `${queue.kind}, ${waiting}/${cfg.queueMax} waiting, ${queue.runningIds().length} running here` };
    });
    app.diagnostics.register('backtestQueue', async () => ({ ...(await queue.stats()) }));
    app.addHook('onClose', async () => queue.close());
  },
  { name: 'job-queue', dependencies: ['worker-pool', 'readiness', 'diagnostics'] },
);
