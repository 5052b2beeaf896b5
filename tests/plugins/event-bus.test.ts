import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLocalEventBus, createRedisEventBus, type BusEvent, type EventBus } from '../../src/plugins/event-bus.js';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function redisReachable() {
  const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await r.connect();
    await r.ping();
    return true;
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

function nextEvent(bus: EventBus, topic: string): Promise<BusEvent> {
  return new Promise((resolve) => {
    const off = bus.subscribe(topic, (e) => {
      off();
      resolve(e);
    });
  });
}

test('local bus: subscribers of a topic get its events, others do not, unsubscribe stops delivery', async () => {
  const bus = createLocalEventBus();
  const a: BusEvent[] = [];
  const b: BusEvent[] = [];
  const offA = bus.subscribe('user:a', (e) => a.push(e));
  bus.subscribe('user:b', (e) => b.push(e));
  await bus.publish('user:a', { type: 'order.filled', id: 1 });
  offA();
  await bus.publish('user:a', { type: 'order.filled', id: 2 });
  assert.deepEqual(a, [{ type: 'order.filled', id: 1 }]);
  assert.deepEqual(b, []);
  await bus.close();
});

test('redis bus: an event published by one instance reaches a subscriber on another', async (t) => {
  if (!(await redisReachable())) return t.skip(`Redis not reachable at ${redisUrl}`);
  const prefix = `test-bus-${randomUUID()}:`;
  const one = createRedisEventBus(redisUrl, prefix);
  const two = createRedisEventBus(redisUrl, prefix);
  t.after(async () => {
    await one.close();
    await two.close();
  });
  const received = nextEvent(two, 'backtest:42');
  // SUBSCRIBE is asynchronous: publish until the other instance has subscribed and received it.
  let got: BusEvent | undefined;
  void received.then((e) => (got = e));
  for (let i = 0; i < 100 && !got; i++) {
    await one.publish('backtest:42', { type: 'backtest.progress', progress: 0.5 });
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(await received, { type: 'backtest.progress', progress: 0.5 });
});
