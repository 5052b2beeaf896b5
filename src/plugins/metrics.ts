import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics, Histogram, Counter } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus registry of this app; modules add their own metrics to it (`new Gauge({ registers: [app.metrics] ...})`). */
    metrics: Registry;
  }
}

/**
 * Prometheus metrics at /metrics: default process metrics (incl. event loop lag), request counts and durations by
 * route template (never the raw URL: ids would explode the label set) and status.
 */
export default fp(
  async function metricsPlugin(app: FastifyInstance) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    const total = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    });
    app.decorate('metrics', registry);

    // One (counter, histogram) child per method/route/status, built once: the hot path allocates no label object.
    // Children stay valid across registry resets (prom-client looks the series up again on every call).
    type Children = { total: { inc: (value?: number) => void }; duration: { observe: (value: number) => void } };
    const children = new Map<string, Children>();
    const MAX_SERIES = 5000;
    app.addHook('onResponse', function recordRequest(request, reply, done) {
      const route = request.routeOptions.url ?? 'unmatched';
      if (route !== '/metrics') {
        const status = reply.statusCode;
        const key = `${request.method} ${status} ${route}`;
        let child = children.get(key);
        if (child === undefined) {
          const labels = { method: request.method, route, status: String(status) };
          child = { total: total.labels(labels), duration: duration.labels(labels) };
          if (children.size < MAX_SERIES) children.set(key, child);
        }
        child.total.inc();
        child.duration.observe(reply.elapsedTime / 1000);
      }
      done();
    });

    app.get('/metrics', { schema: { hide: true }, config: { rateLimit: false } }, async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    });
  },
  { name: 'metrics' },
);
