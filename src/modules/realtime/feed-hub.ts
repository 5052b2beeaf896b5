/**
 * Ref-counted upstream market feeds: ONE upstream stream per (exchange, channel, symbol[, timeframe]) shared by every
 * WebSocket client that subscribed to it, opened by the first subscriber and closed when the last one leaves.
 * Each update is serialized once per feed and handed to every listener as the same string.
 *
 * A stream that fails or ends while clients still listen is reopened with exponential backoff (1 s .. 30 s); the
 * clients stay subscribed, and the readiness check reports the silence meanwhile.
 */
import type { ExchangeId, Stream } from '../exchanges/index.js';
import type { MarketChannel, Timeframe } from './realtime.schemas.js';

export interface FeedKey {
  exchange: ExchangeId;
  channel: MarketChannel;
  symbol: string;
  timeframe?: Timeframe;
}

/** An open upstream stream; `close()` ends the stream and releases whatever it holds (connection, client). */
export interface FeedHandle {
  stream: Stream<unknown>;
  close(): Promise<void>;
}

/** Opens upstream streams. Resolves once the symbol is known to exist; rejects (HttpProblem) otherwise. */
export interface FeedSource {
  open(key: FeedKey): Promise<FeedHandle>;
}

export type FeedListener = (text: string) => void;

export interface FeedInfo {
  id: string;
  key: FeedKey;
  listeners: number;
  open: boolean;
  openedAt: number;
  /** ms since epoch of the last update, undefined before the first. */
  lastMessageAt?: number;
  messages: number;
  restarts: number;
}

export interface Subscription {
  /** Resolves when the upstream feed is open (immediately for a feed that already is); rejects when it cannot open. */
  ready: Promise<void>;
  /** Stops delivery to this listener; the last release closes the upstream feed. Idempotent. */
  release(): void;
}

export interface FeedHub {
  subscribe(key: FeedKey, listener: FeedListener): Subscription;
  feeds(): FeedInfo[];
  /** Closes every upstream feed (shutdown); later subscribes fail. */
  close(): Promise<void>;
}

export interface FeedHubOptions {
  source: FeedSource;
  /** Turns one upstream item into the message clients receive. */
  render: (key: FeedKey, item: unknown) => unknown;
  log?: { warn(obj: object, msg: string): void; debug?(obj: object, msg: string): void };
  now?: () => number;
  /** First restart delay after an upstream failure (doubles up to 30 s). */
  restartBaseMs?: number;
}

export function feedId(key: FeedKey): string {
  return [key.exchange, key.channel, key.symbol, key.timeframe].filter(Boolean).join(':');
}

interface Feed {
  id: string;
  key: FeedKey;
  listeners: Set<FeedListener>;
  ready: Promise<void>;
  handle?: FeedHandle;
  closing: boolean;
  openedAt: number;
  lastMessageAt?: number;
  messages: number;
  restarts: number;
  /** Cancels a pending restart delay. */
  wake?: () => void;
  done?: Promise<void>;
}

const RESTART_MAX_MS = 30_000;

export function createFeedHub(opts: FeedHubOptions): FeedHub {
  const { source, render, log } = opts;
  const now = opts.now ?? Date.now;
  const restartBaseMs = opts.restartBaseMs ?? 1000;
  const feeds = new Map<string, Feed>();
  /** Feeds stopped but still closing their upstream (close() waits for them too). */
  const stopping = new Set<Promise<void>>();
  let closed = false;

  const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

  function deliver(feed: Feed, item: unknown): void {
    feed.lastMessageAt = now();
    feed.messages += 1;
    const text = JSON.stringify(render(feed.key, item));
    for (const listener of [...feed.listeners]) {
      try {
        listener(text);
      } catch (err) {
        log?.warn({ feed: feed.id, err: errorText(err) }, 'realtime listener failed');
      }
    }
  }

  function sleep(feed: Feed, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        feed.wake = undefined;
        resolve();
      }
      feed.wake = done;
    });
  }

  /** Reads the upstream stream until the feed closes, reopening it after failures. */
  async function pump(feed: Feed): Promise<void> {
    let failures = 0;
    while (!feed.closing) {
      const handle = feed.handle;
      if (handle) {
        try {
          for await (const item of handle.stream) {
            if (feed.closing) break;
            failures = 0;
            deliver(feed, item);
          }
          if (feed.closing) break;
          log?.warn({ feed: feed.id }, 'upstream feed ended; reopening');
        } catch (err) {
          if (feed.closing) break;
          log?.warn({ feed: feed.id, err: errorText(err) }, 'upstream feed failed; reopening');
        }
        feed.handle = undefined;
        await handle.close().catch(() => undefined);
      }
      failures += 1;
      await sleep(feed, Math.min(RESTART_MAX_MS, restartBaseMs * 2 ** (failures - 1)));
      if (feed.closing) break;
      try {
        feed.handle = await source.open(feed.key);
        feed.restarts += 1;
        if (feed.closing) break;
      } catch (err) {
        log?.warn({ feed: feed.id, err: errorText(err) }, 'upstream feed could not be reopened');
      }
    }
    const last = feed.handle;
    feed.handle = undefined;
    await last?.close().catch(() => undefined);
  }

  function start(key: FeedKey, id: string): Feed {
    const feed: Feed = {
      id,
      key,
      listeners: new Set(),
      ready: Promise.resolve(),
      closing: false,
      openedAt: now(),
      messages: 0,
      restarts: 0,
    };
    feed.ready = source.open(key).then(
      (handle) => {
        feed.handle = handle;
        feed.done = pump(feed);
      },
      (err: unknown) => {
        if (feeds.get(id) === feed) feeds.delete(id);
        feed.closing = true;
        throw err;
      },
    );
    feed.ready.catch(() => undefined); // every subscriber handles it; this keeps an abandoned one from going unhandled
    feeds.set(id, feed);
    return feed;
  }

  function stop(feed: Feed): void {
    feed.closing = true;
    if (feeds.get(feed.id) === feed) feeds.delete(feed.id);
    feed.wake?.();
    // Ends the pending iteration at once; pump() then closes the handle. A feed still opening closes in pump too.
    void feed.handle?.stream.close().catch(() => undefined);
    const finished = feed.ready.then(
      () => feed.done,
      () => undefined,
    );
    stopping.add(finished);
    void finished.finally(() => stopping.delete(finished));
  }

  return {
    subscribe(key, listener) {
      if (closed) return { ready: Promise.reject(new Error('realtime hub is closed')), release() {} };
      const id = feedId(key);
      let feed = feeds.get(id);
      if (!feed) {
        feed = start(key, id);
        log?.debug?.({ feed: id }, 'upstream feed opened');
      }
      const current = feed;
      current.listeners.add(listener);
      let released = false;
      return {
        ready: current.ready,
        release() {
          if (released) return;
          released = true;
          current.listeners.delete(listener);
          if (current.listeners.size === 0 && !current.closing) {
            stop(current);
            log?.debug?.({ feed: id }, 'upstream feed closed (no subscribers left)');
          }
        },
      };
    },

    feeds() {
      return [...feeds.values()].map((f) => ({
        id: f.id,
        key: f.key,
        listeners: f.listeners.size,
        open: f.handle !== undefined,
        openedAt: f.openedAt,
        lastMessageAt: f.lastMessageAt,
        messages: f.messages,
        restarts: f.restarts,
      }));
    },

    async close() {
      closed = true;
      const all = [...feeds.values()];
      for (const feed of all) {
        feed.listeners.clear();
        stop(feed);
      }
      await Promise.all([...all.map((f) => f.ready.then(() => f.done, () => undefined)), ...stopping]);
    },
  };
}
