/**
 * Realtime domain: the `GET /ws` WebSocket (public market feeds shared through a ref-counted hub, per-user event
 * channels from the event bus), its readiness check (`market-feeds`), Prometheus metrics and shutdown.
 * Protocol: docs/websocket.md.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import { parseExchangeUrls } from '../exchanges/index.js';
import { ccxtFeedSource } from './ccxt-feed-source.js';
import { createRealtimeService, type RealtimeService } from './realtime.service.js';
import type { FeedSource } from './feed-hub.js';
import realtimeRoutes from './realtime.routes.js';

export { createFeedHub, feedId, type FeedHub, type FeedKey, type FeedSource, type FeedHandle, type FeedInfo } from './feed-hub.js';
export { ccxtFeedSource } from './ccxt-feed-source.js';
export { createRealtimeService, renderFeedMessage, type RealtimeService } from './realtime.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    realtimeService: RealtimeService;
  }
}

export interface RealtimeModuleOptions {
  /** Upstream feeds; defaults to public ccxt adapters with the EXCHANGE_URLS overrides. */
  source?: FeedSource;
}

export default fp<RealtimeModuleOptions>(
  async function realtimeModule(app: FastifyInstance, opts) {
    const cfg = app.config.realtime;
    const source =
      opts.source ?? ccxtFeedSource({ urls: parseExchangeUrls(app.config.exchanges.urls), timeoutMs: app.config.exchanges.timeoutMs });

    const disconnects = new Counter({
      name: 'realtime_ws_disconnects_total',
      help: 'WebSocket connections ended, by reason (client, slow_client, ping_timeout, shutdown)',
      labelNames: ['reason'] as const,
      registers: [app.metrics],
    });

    const service = createRealtimeService({
      source,
      bus: app.eventBus,
      verifyToken: (token) => app.verifyAccessToken(token),
      limits: {
        maxSubscriptions: cfg.maxSubscriptions,
        maxBufferBytes: cfg.maxBufferBytes,
        maxMessageBytes: cfg.maxMessageBytes,
        pingIntervalMs: cfg.pingIntervalMs,
        messagesPerSecond: cfg.messagesPerSecond,
      },
      feedSilenceMs: cfg.feedSilenceMs,
      log: app.log.child({ module: 'realtime' }),
      onDisconnect: (reason) => disconnects.inc({ reason }),
    });
    app.decorate('realtimeService', service);

    new Gauge({
      name: 'realtime_ws_clients',
      help: 'Open WebSocket connections, by whether they are authenticated',
      labelNames: ['authenticated'] as const,
      registers: [app.metrics],
      collect() {
        const all = service.connections();
        const authed = all.filter((c) => c.userId !== undefined).length;
        this.set({ authenticated: 'true' }, authed);
        this.set({ authenticated: 'false' }, all.length - authed);
      },
    });
    new Gauge({
      name: 'realtime_ws_subscriptions',
      help: 'Client subscriptions over all WebSocket connections, by channel',
      labelNames: ['channel'] as const,
      registers: [app.metrics],
      collect() {
        this.reset();
        const totals: Record<string, number> = {};
        for (const c of service.connections()) {
          for (const [channel, n] of Object.entries(c.channelCounts())) totals[channel] = (totals[channel] ?? 0) + n;
        }
        for (const [channel, n] of Object.entries(totals)) this.set({ channel }, n);
      },
    });
    new Gauge({
      name: 'realtime_upstream_feeds',
      help: 'Upstream exchange feeds open (one per exchange/channel/symbol/timeframe, shared by all clients)',
      labelNames: ['exchange', 'channel'] as const,
      registers: [app.metrics],
      collect() {
        this.reset();
        const totals = new Map<string, { exchange: string; channel: string; n: number }>();
        for (const f of service.hub.feeds()) {
          const k = `${f.key.exchange}:${f.key.channel}`;
          const row = totals.get(k) ?? { exchange: f.key.exchange, channel: f.key.channel, n: 0 };
          row.n += 1;
          totals.set(k, row);
        }
        for (const { exchange, channel, n } of totals.values()) this.set({ exchange, channel }, n);
      },
    });
    new Gauge({
      name: 'realtime_feed_lag_seconds',
      help: 'Seconds since the last message of each upstream feed (since it opened, before the first)',
      labelNames: ['feed'] as const,
      registers: [app.metrics],
      collect() {
        this.reset();
        const now = Date.now();
        for (const f of service.hub.feeds()) this.set({ feed: f.id }, (now - (f.lastMessageAt ?? f.openedAt)) / 1000);
      },
    });

    app.readiness.register('market-feeds', () => service.checkFeeds());
    app.diagnostics.register('realtime', () => ({
      connections: service.connections().length,
      authenticated: service.connections().filter((c) => c.userId !== undefined).length,
      feeds: service.hub.feeds().map((f) => ({
        id: f.id,
        listeners: f.listeners,
        open: f.open,
        messages: f.messages,
        restarts: f.restarts,
        lastMessageAt: f.lastMessageAt === undefined ? null : new Date(f.lastMessageAt).toISOString(),
      })),
    }));

    // Sockets are closed with 1001 in preClose (realtime.routes.ts); upstream streams end here.
    app.addHook('onClose', async () => service.close());

    await app.register(realtimeRoutes, { service });
  },
  { name: 'realtime', dependencies: ['auth', 'event-bus', 'readiness', 'metrics', 'diagnostics'] },
);
