/**
 * A small in-process TTL cache of promises: concurrent callers of the same key share one upstream call, failures are
 * not cached, entries expire after `ttlMs` (0 = no caching, every call goes upstream).
 */
export interface TtlCache {
  get<T>(key: string, load: () => Promise<T>, ttlMs?: number): Promise<T>;
  clear(): void;
}

export function createTtlCache(defaultTtlMs: number, maxEntries = 5000): TtlCache {
  const entries = new Map<string, { expires: number; value: Promise<unknown> }>();
  return {
    get<T>(key: string, load: () => Promise<T>, ttlMs = defaultTtlMs): Promise<T> {
      const now = Date.now();
      const hit = entries.get(key);
      if (hit && hit.expires > now) return hit.value as Promise<T>;
      const value = load();
      if (ttlMs <= 0) return value;
      if (entries.size >= maxEntries) {
        for (const [k, e] of entries) if (e.expires <= now) entries.delete(k);
        if (entries.size >= maxEntries) entries.clear();
      }
      const entry = { expires: now + ttlMs, value: value as Promise<unknown> };
      entries.set(key, entry);
      value.catch(() => {
        if (entries.get(key) === entry) entries.delete(key);
      });
      return value;
    },
    clear: () => entries.clear(),
  };
}
