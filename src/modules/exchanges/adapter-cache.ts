/**
 * One live adapter per exchange key record: markets loaded once, reloaded on a schedule, all closed on shutdown.
 *
 *   const cache = createAdapterCache({ reloadMarketsMs: 60 * 60_000 });
 *   const adapter = await cache.get(keyRecord.id, () => createCcxtAdapter({ ... }));
 *   app.addHook('onClose', () => cache.closeAll());
 */
import type { ExchangeAdapter } from './types.js';

export interface AdapterCacheOptions {
  /** Markets reload period; 0 disables reloading. Default: one hour. */
  reloadMarketsMs?: number;
  /** Called when a scheduled reload fails (the old markets stay in use). */
  onReloadError?: (keyId: string, err: unknown) => void;
}

export interface AdapterCache {
  /** The cached adapter for `keyId`, creating it with `create` (and loading its markets) on first use. */
  get(keyId: string, create: () => ExchangeAdapter | Promise<ExchangeAdapter>): Promise<ExchangeAdapter>;
  /** Closes and forgets one adapter (call when a key is rotated or deleted). */
  evict(keyId: string): Promise<void>;
  closeAll(): Promise<void>;
  readonly size: number;
}

interface Entry {
  adapter: Promise<ExchangeAdapter>;
  timer?: NodeJS.Timeout;
}

export function createAdapterCache(opts: AdapterCacheOptions = {}): AdapterCache {
  const reloadMs = opts.reloadMarketsMs ?? 3_600_000;
  const entries = new Map<string, Entry>();

  async function open(create: () => ExchangeAdapter | Promise<ExchangeAdapter>): Promise<ExchangeAdapter> {
    const adapter = await create();
    try {
      await adapter.loadMarkets();
    } catch (err) {
      await adapter.close();
      throw err;
    }
    return adapter;
  }

  async function drop(keyId: string, entry: Entry): Promise<void> {
    if (entries.get(keyId) === entry) entries.delete(keyId);
    if (entry.timer) clearInterval(entry.timer);
    const adapter = await entry.adapter.catch(() => undefined);
    await adapter?.close();
  }

  return {
    get(keyId, create) {
      const cached = entries.get(keyId);
      if (cached) return cached.adapter;
      const entry: Entry = { adapter: open(create) };
      entries.set(keyId, entry);
      // A failed creation is not cached: the next get() tries again.
      entry.adapter.then(
        (adapter) => {
          if (reloadMs <= 0 || entries.get(keyId) !== entry) return;
          entry.timer = setInterval(() => {
            adapter.loadMarkets(true).catch((err) => opts.onReloadError?.(keyId, err));
          }, reloadMs);
          entry.timer.unref();
        },
        () => {
          if (entries.get(keyId) === entry) entries.delete(keyId);
        },
      );
      return entry.adapter;
    },

    async evict(keyId) {
      const entry = entries.get(keyId);
      if (entry) await drop(keyId, entry);
    },

    async closeAll() {
      await Promise.all([...entries].map(([keyId, entry]) => drop(keyId, entry)));
    },

    get size() {
      return entries.size;
    },
  };
}
