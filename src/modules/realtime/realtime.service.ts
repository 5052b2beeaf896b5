/**
 * The realtime service: every open client connection, the shared upstream feed hub, and what readiness and metrics
 * need to know about them.
 */
import type { WebSocket } from 'ws';
import type { EventBus } from '../../plugins/event-bus.js';
import type { CheckResult } from '../../plugins/readiness.js';
import { openConnection, type Connection, type ConnectionContext, type DisconnectReason, type RealtimeLimits } from './connection.js';
import { createFeedHub, type FeedHub, type FeedInfo, type FeedKey, type FeedSource } from './feed-hub.js';
import { TIMEFRAME_MS } from '../../shared/timeframes.js';

export interface RealtimeServiceOptions {
  source: FeedSource;
  bus: EventBus;
  verifyToken: ConnectionContext['verifyToken'];
  limits: RealtimeLimits;
  /** ticker/trades feeds silent longer than this fail readiness; candle feeds get 2x their timeframe. */
  feedSilenceMs: number;
  log: ConnectionContext['log'];
  onDisconnect?: (reason: DisconnectReason) => void;
  now?: () => number;
}

export interface AcceptedIdentity {
  userId: string;
  token: string;
  exp?: number;
}

export interface RealtimeService {
  readonly hub: FeedHub;
  /** Takes over an upgraded socket (optionally already authenticated by the upgrade request's header). */
  accept(socket: WebSocket, identity?: AcceptedIdentity): Connection;
  connections(): Connection[];
  /** How long a feed may stay silent before readiness fails. */
  silenceLimitMs(key: FeedKey): number;
  /** The readiness check: fails naming every subscribed feed that has been silent too long. */
  checkFeeds(): CheckResult;
  /** Closes every client socket with 1001 (server going away). */
  closeConnections(): void;
  /** Ends every upstream feed. */
  close(): Promise<void>;
}

/** Renders one upstream item as the message clients receive. */
export function renderFeedMessage(key: FeedKey, item: unknown): { type: string } & Record<string, unknown> {
  const base = { exchange: key.exchange, symbol: key.symbol };
  if (key.channel === 'ticker') return { type: 'ticker', ...base, data: item };
  if (key.channel === 'trades') return { type: 'trade', ...base, data: item };
  return { type: 'candle', ...base, timeframe: key.timeframe, data: item };
}

export function createRealtimeService(opts: RealtimeServiceOptions): RealtimeService {
  const now = opts.now ?? Date.now;
  const hub = createFeedHub({ source: opts.source, render: renderFeedMessage, log: opts.log, now });
  const connections = new Set<Connection>();
  let shuttingDown = false;

  const silenceLimitMs = (key: FeedKey) =>
    key.channel === 'candles' ? 2 * TIMEFRAME_MS[key.timeframe ?? '1m'] : opts.feedSilenceMs;

  const silentFor = (f: FeedInfo) => now() - (f.lastMessageAt ?? f.openedAt);

  return {
    hub,
    accept(socket, identity) {
      const connection: Connection = openConnection(
        socket,
        {
          hub,
          bus: opts.bus,
          verifyToken: opts.verifyToken,
          limits: opts.limits,
          log: opts.log,
          onClosed: (reason) => {
            connections.delete(connection);
            opts.onDisconnect?.(reason);
          },
        },
        identity,
      );
      connections.add(connection);
      // An upgrade that completes after preClose closed the others must not hold server.close() open.
      if (shuttingDown) connection.close(1001, 'server shutting down', 'shutdown');
      return connection;
    },
    connections: () => [...connections],
    silenceLimitMs,
    checkFeeds() {
      const feeds = hub.feeds();
      const silent = feeds.filter((f) => silentFor(f) > silenceLimitMs(f.key));
      if (silent.length === 0) return { ok: true, detail: `${feeds.length} feed(s) live` };
      const list = silent.map((f) => `${f.id} silent for ${silentFor(f)} ms (limit ${silenceLimitMs(f.key)} ms)`);
      return { ok: false, detail: list.join('; ') };
    },
    closeConnections() {
      shuttingDown = true;
      for (const c of [...connections]) c.close(1001, 'server shutting down', 'shutdown');
    },
    async close() {
      await hub.close();
    },
  };
}
