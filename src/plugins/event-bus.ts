import { EventEmitter } from 'node:events';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';

/**
 * Events that cross module boundaries (backtest progress, order fills, bot events) go through this bus, so the
 * realtime channel can forward them. Topics are strings like `user:<id>` or `backtest:<id>`; payloads are JSON.
 * In-process by default; with REDIS_URL the Redis pub/sub implementation lets several API instances share it.
 */
export interface BusEvent {
  type: string;
  [key: string]: unknown;
}
export type Unsubscribe = () => void;

export interface EventBus {
  publish(topic: string, event: BusEvent): Promise<void>;
  subscribe(topic: string, handler: (event: BusEvent) => void): Unsubscribe;
  close(): Promise<void>;
}

export function createLocalEventBus(): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    async publish(topic, event) {
      emitter.emit(topic, event);
    },
    subscribe(topic, handler) {
      emitter.on(topic, handler);
      return () => emitter.off(topic, handler);
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}

/** Redis pub/sub: one publisher connection, one subscriber connection, local fan-out per topic. */
export function createRedisEventBus(url: string, prefix = 'bus:', onError?: (err: Error) => void): EventBus {
  const pub = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: false });
  const sub = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: false });
  for (const c of [pub, sub]) c.on('error', (err) => onError?.(err));
  const local = new EventEmitter();
  local.setMaxListeners(0);
  sub.on('message', (channel: string, message: string) => {
    try {
      local.emit(channel.slice(prefix.length), JSON.parse(message) as BusEvent);
    } catch (err) {
      onError?.(err as Error);
    }
  });
  return {
    async publish(topic, event) {
      await pub.publish(prefix + topic, JSON.stringify(event));
    },
    subscribe(topic, handler) {
      if (local.listenerCount(topic) === 0) void sub.subscribe(prefix + topic).catch((err: Error) => onError?.(err));
      local.on(topic, handler);
      return () => {
        local.off(topic, handler);
        if (local.listenerCount(topic) === 0) void sub.unsubscribe(prefix + topic).catch(() => {});
      };
    },
    async close() {
      local.removeAllListeners();
      await Promise.allSettled([pub.quit(), sub.quit()]);
    },
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    eventBus: EventBus;
  }
}

export default fp(
  async function eventBusPlugin(app: FastifyInstance) {
    const bus = app.config.redisUrl
      ? createRedisEventBus(app.config.redisUrl, `${app.config.redisPrefix}bus:`, (err) => app.log.warn({ err: err.message }, 'event bus redis error'))
      : createLocalEventBus();
    app.decorate('eventBus', bus);
    app.addHook('onClose', async () => bus.close());
  },
  { name: 'event-bus' },
);
