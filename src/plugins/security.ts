import fp from 'fastify-plugin';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction } from 'fastify';
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import cors, { type FastifyCorsOptions } from '@fastify/cors';

/**
 * The API serves only JSON (OWASP REST Security): a CSP that allows nothing and no framing, no sniffing, HSTS, no
 * referrer, same-origin resource policy. Helmet's document-only headers (COOP, Origin-Agent-Cluster, DNS prefetch,
 * IE's X-Download-Options, Flash/PDF cross-domain policies, the retired XSS auditor switch) say nothing to a JSON
 * client; leaving them out keeps every response about 500 bytes shorter, which clients parse on every call.
 */
export const HELMET_OPTIONS: FastifyHelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  frameguard: { action: 'deny' },
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
};

/** Swagger UI under DOCS_PREFIX is an HTML page with inline styles/scripts of its own: helmet's defaults, relaxed for it. */
export const DOCS_HELMET_OPTIONS: FastifyHelmetOptions = {
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'", "'unsafe-inline'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:', 'validator.swagger.io'],
    },
  },
};
export const DOCS_PREFIX = '/docs';

/**
 * The headers @fastify/helmet sets with `options`, captured once from a throwaway Fastify instance that runs the real
 * plugin (helmet stays the source of truth). Registered globally, @fastify/helmet re-parses its options, re-validates
 * the CSP directives and rebuilds every header string on every request (two hooks, one async); the headers do not
 * depend on the request (no CSP nonces are used), so computing them once is equivalent.
 */
export async function captureHelmetHeaders(options: FastifyHelmetOptions = HELMET_OPTIONS): Promise<Record<string, string>> {
  const probe = Fastify({ logger: false });
  let captured: Record<string, string> | undefined;
  try {
    await probe.register(helmet, options);
    probe.addHook('onRequest', (_request, reply, done) => {
      const raw = reply.raw.getHeaders();
      captured = {};
      for (const [name, value] of Object.entries(raw)) {
        if (value !== undefined) captured[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
      }
      done();
    });
    probe.get('/', async () => 'ok');
    await probe.inject({ url: '/' });
  } finally {
    await probe.close();
  }
  if (!captured || Object.keys(captured).length === 0) throw new Error('could not capture the helmet security headers');
  return captured;
}

/** @fastify/cors options for the CORS_ORIGINS allow-list (a refused or missing origin gets no CORS headers). */
export function corsOptions(corsOrigins: string[]): FastifyCorsOptions {
  const allowed = new Set(corsOrigins);
  const any = allowed.has('*');
  return {
    origin: (origin, cb) => cb(null, origin !== undefined && (any || allowed.has(origin))),
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id', 'idempotency-key'],
    exposedHeaders: ['x-request-id', 'retry-after', 'ratelimit', 'ratelimit-policy', 'location'],
    credentials: false,
    maxAge: 600,
  };
}

type OnRequestHook = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

/**
 * Registers @fastify/cors with its onRequest hook wrapped by a shortcut for requests without an Origin header (every
 * non-browser client, every same-origin request). With our options (an origin function) the plugin's whole effect on
 * such a request is to add `Origin` to Vary: the shortcut does exactly that when no Vary header is set yet and no
 * route-level `config.cors` exists, and hands every other request to the plugin's own hook. Saves the plugin's
 * per-request option merge and closures.
 */
export async function registerCors(app: FastifyInstance, options: FastifyCorsOptions) {
  if (typeof options.origin !== 'function') throw new Error('registerCors: the shortcut assumes an origin function');
  const addHook = app.addHook;
  let wrapped = 0;
  const intercept = function (this: FastifyInstance, name: string, fn: unknown) {
    if (name === 'onRequest' && typeof fn === 'function' && fn.name === 'handleCors') {
      wrapped++;
      const corsHook = fn as OnRequestHook;
      const hook: OnRequestHook = function corsUnlessNoOrigin(this: FastifyInstance, request, reply, done) {
        const routeConfig = request.routeOptions.config as { cors?: unknown } | undefined;
        if (request.headers.origin === undefined && routeConfig?.cors === undefined && !reply.getHeader('vary')) {
          reply.header('Vary', 'Origin');
          done();
          return;
        }
        corsHook.call(this, request, reply, done);
      };
      return (addHook as (this: FastifyInstance, name: string, fn: unknown) => FastifyInstance).call(this, 'onRequest', hook);
    }
    return (addHook as (this: FastifyInstance, name: string, fn: unknown) => FastifyInstance).call(this, name, fn);
  };
  app.addHook = intercept as typeof app.addHook;
  try {
    await app.register(cors, options);
  } finally {
    app.addHook = addHook;
  }
  if (wrapped !== 1) throw new Error(`@fastify/cors registered ${wrapped} handleCors onRequest hooks (expected 1): check registerCors`);
}

/** Security headers (helmet) and a CORS allow-list from CORS_ORIGINS: a disallowed origin gets no CORS headers. */
export default fp(
  async function securityPlugin(app: FastifyInstance) {
    const api = await captureHelmetHeaders(HELMET_OPTIONS);
    const docs = await captureHelmetHeaders(DOCS_HELMET_OPTIONS);
    // One synchronous hook writing precomputed strings (no promise, no closure per request). Set on the reply (not the
    // raw response) so Node takes its fast writeHead path; a route may still override any of them.
    app.addHook('onRequest', function securityHeaders(request, reply, done) {
      reply.headers(request.url.startsWith(DOCS_PREFIX) ? docs : api);
      done();
    });

    await registerCors(app, corsOptions(app.config.corsOrigins));
  },
  { name: 'security' },
);
