import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  createMemoryJobQueue,
  createRedisJobQueue,
  JobAborted,
  QueueFullError,
  type JobQueue,
  type JobQueueOptions,
  type QueuedJob,
} from '../../../src/plugins/job-queue.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A handler whose jobs run until the test releases them; records start order and abort reasons. */
function harness() {
  const started: string[] = [];
  const aborted: Record<string, string> = {};
  const release = new Map<string, () => void>();
  const waiters: { id: string; resolve: () => void }[] = [];
  const handler = (job: QueuedJob, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      started.push(job.id);
      for (const w of waiters.filter((x) => x.id === job.id)) w.resolve();
      release.set(job.id, resolve);
      signal.addEventListener('abort', () => {
        aborted[job.id] = (signal.reason as JobAborted).reason;
        resolve();
      });
    });
  const startedPromise = (id: string) =>
    started.includes(id) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ id, resolve }));
  return { started, aborted, handler, startedPromise, finish: (id: string) => release.get(id)!() };
}

const tick = () => new Promise((r) => setTimeout(r, 50));

type Factory = (opts: JobQueueOptions) => JobQueue;

function suite(kind: string, make: (t: import('node:test').TestContext) => Factory) {
  describe(`${kind} job queue`, () => {
    test('FIFO within the instance concurrency', async (t) => {
      const q = make(t)({ maxWaiting: 10, perUser: 10, concurrency: 1 });
      const h = harness();
      q.start(h.handler);
      for (const id of ['a', 'b', 'c']) await q.enqueue({ id, userId: 'u' });
      await h.startedPromise('a');
      assert.deepEqual(h.started, ['a']);
      h.finish('a');
      await h.startedPromise('b');
      h.finish('b');
      await h.startedPromise('c');
      assert.deepEqual(h.started, ['a', 'b', 'c']);
      h.finish('c');
    });

    test('per-user limit: a user over it waits, others pass', async (t) => {
      const q = make(t)({ maxWaiting: 10, perUser: 1, concurrency: 3 });
      const h = harness();
      q.start(h.handler);
      await q.enqueue({ id: 'a1', userId: 'A' });
      await q.enqueue({ id: 'a2', userId: 'A' });
      await q.enqueue({ id: 'b1', userId: 'B' });
      await Promise.all([h.startedPromise('a1'), h.startedPromise('b1')]);
      await tick();
      assert.ok(!h.started.includes('a2'));
      assert.equal(await q.waiting(), 1);
      h.finish('a1');
      await h.startedPromise('a2');
      h.finish('a2');
      h.finish('b1');
    });

    test('maxWaiting: enqueue throws QueueFullError; enqueue is idempotent by id', async (t) => {
      const q = make(t)({ maxWaiting: 2, perUser: 10, concurrency: 1 });
      const h = harness();
      q.start(h.handler);
      await q.enqueue({ id: 'x', userId: 'u' });
      await h.startedPromise('x');
      await q.enqueue({ id: 'y', userId: 'u' });
      await q.enqueue({ id: 'z', userId: 'u' });
      await q.enqueue({ id: 'y', userId: 'u' });
      await assert.rejects(q.enqueue({ id: 'w', userId: 'u' }), QueueFullError);
      assert.equal(await q.waiting(), 2);
      await q.cancel('y');
      await q.cancel('z');
      assert.equal(await q.waiting(), 0);
      h.finish('x');
      await tick();
      assert.deepEqual(h.started, ['x']);
    });

    test('cancel aborts a running job with reason "cancelled"; close aborts the rest with "shutdown"', async (t) => {
      const q = make(t)({ maxWaiting: 10, perUser: 10, concurrency: 2 });
      const h = harness();
      q.start(h.handler);
      await q.enqueue({ id: 'c', userId: 'u' });
      await q.enqueue({ id: 's', userId: 'u' });
      await Promise.all([h.startedPromise('c'), h.startedPromise('s')]);
      await q.cancel('c');
      await tick();
      assert.equal(h.aborted.c, 'cancelled');
      assert.deepEqual(q.runningIds(), ['s']);
      await q.close();
      assert.equal(h.aborted.s, 'shutdown');
      assert.deepEqual(q.runningIds(), []);
    });
  });
}

suite('in-process', (t) => (opts) => {
  const q = createMemoryJobQueue(opts);
  t.after(() => q.close());
  return q;
});

suite('Redis', (t) => {
  const prefix = `test:jobs:${randomUUID()}:`;
  t.after(async () => {
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`${prefix}*`);
    if (keys.length) await r.del(...keys);
    await r.quit();
  });
  return (opts) => {
    const q = createRedisJobQueue({ ...opts, url: REDIS_URL, prefix, pollMs: 100 });
    t.after(() => q.close());
    return q;
  };
});

describe('Redis job queue across instances', () => {
  test('two instances share the waiting list and the per-user limit; cancel reaches the instance running the job', async (t) => {
    const prefix = `test:jobs:${randomUUID()}:`;
    const opts = { maxWaiting: 10, perUser: 1, concurrency: 2, url: REDIS_URL, prefix, pollMs: 100 };
    const q1 = createRedisJobQueue(opts);
    const q2 = createRedisJobQueue(opts);
    t.after(async () => {
      await q1.close();
      await q2.close();
      const r = new Redis(REDIS_URL);
      const keys = await r.keys(`${prefix}*`);
      if (keys.length) await r.del(...keys);
      await r.quit();
    });
    const h1 = harness();
    const h2 = harness();
    q1.start(h1.handler);
    await q1.enqueue({ id: 'a1', userId: 'A' });
    await h1.startedPromise('a1');
    q2.start(h2.handler);
    // Enqueued on q2, A's second job must wait for a1 (running on q1) although q2 has free slots.
    await q2.enqueue({ id: 'a2', userId: 'A' });
    await q2.enqueue({ id: 'b1', userId: 'B' });
    await new Promise<void>((resolve) => {
      const check = () => (h1.started.includes('b1') || h2.started.includes('b1') ? resolve() : setTimeout(check, 20));
      check();
    });
    await tick();
    assert.ok(!h1.started.includes('a2') && !h2.started.includes('a2'));
    assert.equal(await q2.waiting(), 1);
    // Cancel from the other instance.
    await q2.cancel('a1');
    await new Promise<void>((resolve) => {
      const check = () => (h1.aborted.a1 ? resolve() : setTimeout(check, 20));
      check();
    });
    assert.equal(h1.aborted.a1, 'cancelled');
    await new Promise<void>((resolve) => {
      const check = () => (h1.started.includes('a2') || h2.started.includes('a2') ? resolve() : setTimeout(check, 20));
      check();
    });
    for (const h of [h1, h2]) for (const id of ['a2', 'b1']) if (h.started.includes(id)) h.finish(id);
  });
});
