import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eq, sql } from 'drizzle-orm';
import { backtests } from '../../../src/db/schema/backtests.js';
import type { BusEvent } from '../../../src/plugins/event-bus.js';
import { adminEnv, createUser, injectAs, loginAdmin } from '../../helper.js';
import { buildBt, getResult, named, pollUntil, SMA_CROSS, startBt, uploadCsv, waitFinished, waitRunning } from './helpers.js';

/** Jobs with the test worker (tests/modules/backtests/fixtures/test.worker.ts): crashes, held jobs, queue limits, restarts. */

const cancel = (app: Parameters<typeof injectAs>[0], token: string, id: string) => injectAs(app, token, { method: 'POST', url: `/backtest/${id}/cancel` });

describe('worker failures', () => {
  test('a worker that throws or exits fails that job with a message; the pool stays healthy and the next job succeeds', async (t) => {
    const app = await buildBt(t, { testWorker: true, env: { WORKER_THREADS: '1' } });
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);
    const events: BusEvent[] = [];
    t.after(app.eventBus.subscribe(`user:${u.id}`, (e) => events.push(e)));

    const thrown = (await startBt(app, u.token, { datasetId, strategy: named('crash-throw') })).json();
    const r1 = await waitFinished(app, u.token, thrown.id);
    assert.equal(r1.status, 'failed');
    assert.match(r1.error, /backtest worker failed: boom from the test worker/);
    assert.equal(r1.metrics, null);

    const exited = (await startBt(app, u.token, { datasetId, strategy: named('crash-exit') })).json();
    const r2 = await waitFinished(app, u.token, exited.id);
    assert.equal(r2.status, 'failed');
    assert.match(r2.error, /^backtest worker crashed \(worker exited with code: 7\)/);

    const ok = (await startBt(app, u.token, { datasetId, strategy: SMA_CROSS })).json();
    const r3 = await waitFinished(app, u.token, ok.id);
    assert.equal(r3.status, 'succeeded', r3.error);
    assert.ok(r3.metrics.trades > 0);

    const failedEvents = events.filter((e) => e.type === 'backtest.failed').map((e) => e.id);
    assert.deepEqual(failedEvents, [thrown.id, exited.id]);
    assert.ok(events.some((e) => e.type === 'backtest.completed' && e.id === ok.id));
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(ready.statusCode, 200, ready.body);
  });
});

describe('cancel', () => {
  test('a running job is aborted (its thread freed), a queued one never runs; both end cancelled', async (t) => {
    const app = await buildBt(t, { testWorker: true, env: { WORKER_THREADS: '1' } });
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);

    const held = (await startBt(app, u.token, { datasetId, strategy: named('hold') })).json();
    await waitRunning(app, u.token, held.id);
    const queued = (await startBt(app, u.token, { datasetId, strategy: SMA_CROSS })).json();
    assert.equal((await getResult(app, u.token, queued.id)).status, 'queued');

    const c1 = await cancel(app, u.token, queued.id);
    assert.equal(c1.statusCode, 200, c1.body);
    assert.equal(c1.json().status, 'cancelled');
    const c2 = await cancel(app, u.token, held.id);
    assert.equal(c2.statusCode, 200, c2.body);
    assert.equal(c2.json().status, 'cancelled');
    assert.equal((await cancel(app, u.token, held.id)).statusCode, 409);

    // The only thread was held; after the abort it runs the next job.
    const next = (await startBt(app, u.token, { datasetId, strategy: SMA_CROSS })).json();
    assert.equal((await waitFinished(app, u.token, next.id)).status, 'succeeded');
    const rq = await getResult(app, u.token, queued.id);
    assert.equal(rq.status, 'cancelled');
    assert.equal(rq.startedAt, null, 'the cancelled queued job never started');
    assert.equal((await getResult(app, u.token, held.id)).status, 'cancelled');
  });
});

describe('queue limits', () => {
  test('a full queue answers 503 with Retry-After and stores nothing', async (t) => {
    const app = await buildBt(t, { testWorker: true, env: { WORKER_THREADS: '1', BACKTEST_QUEUE_MAX: '1', ...adminEnv } });
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);
    const held = (await startBt(app, u.token, { datasetId, strategy: named('hold') })).json();
    await waitRunning(app, u.token, held.id);
    const waiting = await startBt(app, u.token, { datasetId, strategy: SMA_CROSS });
    assert.equal(waiting.statusCode, 202);

    const full = await startBt(app, u.token, { datasetId, strategy: SMA_CROSS });
    assert.equal(full.statusCode, 503, full.body);
    assert.equal(full.headers['retry-after'], '5');
    assert.equal(full.json().code, 'BACKTEST_QUEUE_FULL');
    const history = (await injectAs(app, u.token, { method: 'GET', url: '/backtest/history' })).json();
    assert.equal(history.items.length, 2);

    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(ready.statusCode, 503, 'not ready while the queue is full');
    const admin = await loginAdmin(app);
    const dash = await injectAs(app, admin.token, { method: 'GET', url: '/admin/dashboard' });
    assert.equal(dash.statusCode, 200, dash.body);
    assert.deepEqual(dash.json().subsystems.backtestQueue, { kind: 'memory', waiting: 1, maxWaiting: 1, runningHere: 1, concurrency: 1, perUser: 2 });

    await cancel(app, u.token, held.id);
    assert.equal((await waitFinished(app, u.token, waiting.json().id)).status, 'succeeded');
  });

  test('per-user concurrency: a second job of the same user waits while another user runs on the free thread', async (t) => {
    const app = await buildBt(t, { testWorker: true, env: { WORKER_THREADS: '2', BACKTEST_USER_CONCURRENCY: '1' } });
    const a = await createUser(app);
    const b = await createUser(app);
    const dsA = await uploadCsv(app, a.token);
    const dsB = await uploadCsv(app, b.token);

    const held = (await startBt(app, a.token, { datasetId: dsA, strategy: named('hold') })).json();
    await waitRunning(app, a.token, held.id);
    const second = (await startBt(app, a.token, { datasetId: dsA, strategy: SMA_CROSS })).json();
    const otherUser = (await startBt(app, b.token, { datasetId: dsB, strategy: SMA_CROSS })).json();
    assert.equal((await waitFinished(app, b.token, otherUser.id)).status, 'succeeded');
    // b's job ran on the free thread after a's second job was queued: a's is held back by its limit only.
    const stillQueued = await getResult(app, a.token, second.id);
    assert.equal(stillQueued.status, 'queued');
    assert.equal(stillQueued.startedAt, null);
    const diag = await app.backtestQueue.stats();
    assert.equal(diag.waiting, 1);
    assert.equal(diag.perUser, 1);

    await cancel(app, a.token, held.id);
    assert.equal((await waitFinished(app, a.token, second.id)).status, 'succeeded');
  });
});

describe('restarts', () => {
  test('shutdown puts running jobs back to queued; a new app runs jobs left running again and fails those out of attempts', async (t) => {
    const app1 = await buildBt(t, { testWorker: true, env: { WORKER_THREADS: '1' } });
    const u = await createUser(app1);
    const datasetId = await uploadCsv(app1, u.token);
    const held = (await startBt(app1, u.token, { datasetId, strategy: named('hold') })).json();
    await waitRunning(app1, u.token, held.id);
    await app1.close();

    const db = app1.database.db;
    const [afterClose] = await db.select().from(backtests).where(eq(backtests.id, held.id));
    assert.equal(afterClose.status, 'queued', 'not failed on shutdown');
    assert.equal(afterClose.attempts, 0, 'an interrupted-by-shutdown run is not counted');
    assert.equal(afterClose.error, null);

    // Now simulate a crash mid-run: the row says running, with a stale heartbeat; and a copy that used all attempts.
    await db
      .update(backtests)
      .set({ status: 'running', attempts: 1, progress: 0.4, heartbeatAt: new Date(Date.now() - 10 * 60_000) })
      .where(eq(backtests.id, held.id));
    const [exhausted] = (await db.execute(sql`
      insert into backtests (user_id, status, dataset_id, dataset_sha256, strategy_name, strategy, params, resolved_params,
        initial_cash, settings, engine_version, attempts, heartbeat_at)
      select user_id, 'running', dataset_id, dataset_sha256, strategy_name, strategy, params, resolved_params,
        initial_cash, settings, engine_version, 3, now() - interval '10 minutes'
      from backtests where id = ${held.id} returning id`).then((r) => ((r as { rows?: unknown[] }).rows ?? r) as { id: string }[]));

    // The new app runs the real worker ("hold" is just a name to it).
    const app2 = await buildBt(t, { keepData: true });
    const rerun = await waitFinished(app2, u.token, held.id);
    assert.equal(rerun.status, 'succeeded', rerun.error);
    assert.equal(rerun.attempts, 2);
    assert.ok(rerun.metrics.trades > 0);
    const gaveUp = await getResult(app2, u.token, exhausted.id);
    assert.equal(gaveUp.status, 'failed');
    assert.match(gaveUp.error, /interrupted 3 times/);
  });

  test('a job left queued by a stopped process runs after the restart', async (t) => {
    const app1 = await buildBt(t, { testWorker: true, env: { WORKER_THREADS: '1' } });
    const u = await createUser(app1);
    const datasetId = await uploadCsv(app1, u.token);
    const held = (await startBt(app1, u.token, { datasetId, strategy: named('hold') })).json();
    await waitRunning(app1, u.token, held.id);
    const waiting = (await startBt(app1, u.token, { datasetId, strategy: SMA_CROSS })).json();
    await app1.close();
    await app1.database.db.update(backtests).set({ heartbeatAt: new Date(Date.now() - 10 * 60_000) });

    const app2 = await buildBt(t, { keepData: true });
    for (const id of [held.id, waiting.id]) {
      const r = await pollUntil(app2, u.token, id, (x) => x.status === 'succeeded' || x.status === 'failed');
      assert.equal(r.status, 'succeeded', r.error);
    }
  });
});

describe('Redis queue in the app', () => {
  test('with REDIS_URL the job goes through the Redis queue and succeeds; readiness and diagnostics show it', async (t) => {
    const app = await buildBt(t, { env: { REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' } });
    assert.equal(app.backtestQueue.kind, 'redis');
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);
    const { id } = (await startBt(app, u.token, { datasetId, strategy: SMA_CROSS })).json();
    const r = await waitFinished(app, u.token, id);
    assert.equal(r.status, 'succeeded', r.error);
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    assert.match(ready.body, /backtest-queue/);
    const stats = await app.backtestQueue.stats();
    assert.equal(stats.kind, 'redis');
    assert.equal(stats.runningHere, 0);
  });
});

describe('thread priority', () => {
  /** Nice value of each thread of this process (Linux /proc; field 19 of stat). */
  async function threadNices(): Promise<Map<number, number>> {
    const { readdir, readFile } = await import('node:fs/promises');
    const out = new Map<number, number>();
    for (const tid of await readdir('/proc/self/task')) {
      const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest.length > 16) out.set(Number(tid), Number(rest[16]));
    }
    return out;
  }

  test('backtest threads run at the lower CPU priority WORKER_NICE; the event loop keeps its own', { skip: process.platform !== 'linux' }, async (t) => {
    const before = await threadNices();
    const app = await buildBt(t, { testWorker: true, env: { WORKER_THREADS: '1', WORKER_NICE: '7' } });
    const u = await createUser(app);
    const datasetId = await uploadCsv(app, u.token);
    const held = (await startBt(app, u.token, { datasetId, strategy: named('hold') })).json();
    await waitRunning(app, u.token, held.id);
    // The job is marked running just before the pool starts its thread: wait for that thread to appear.
    const target = before.get(process.pid)! + 7;
    let after = await threadNices();
    for (let i = 0; i < 200 && ![...after].some(([tid, nice]) => !before.has(tid) && nice === target); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      after = await threadNices();
    }
    const fresh = [...after].filter(([tid]) => !before.has(tid));
    assert.ok(fresh.some(([, nice]) => nice === target), `a new thread at nice +7: ${JSON.stringify(fresh)}`);
    assert.equal(after.get(process.pid), before.get(process.pid), 'the main thread keeps its priority');
    assert.equal((await cancel(app, u.token, held.id)).statusCode, 200);
  });
});
