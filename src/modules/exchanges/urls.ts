/**
 * Exchange URL overrides (config `EXCHANGE_URLS`): point a ccxt client at another host (a proxy, or the loopback
 * fake exchange in tests) while keeping every endpoint path.
 *
 *   {"binance": "http://127.0.0.1:9100"}                                  REST only
 *   {"okx": {"rest": "http://127.0.0.1:9200", "ws": "ws://127.0.0.1:9200"}} REST and WebSocket
 */
import { z } from 'zod';
import { badRequest } from '../../errors.js';
import { EXCHANGE_IDS, type ExchangeId } from './types.js';

export interface UrlOverride {
  /** Replaces scheme+host(+port) of every REST URL; a path in it is prepended to each endpoint path. */
  rest?: string;
  /** Same for WebSocket URLs (`urls.api.ws` of ccxt.pro). */
  ws?: string;
}

export type ExchangeUrls = Partial<Record<ExchangeId, UrlOverride>>;

const httpUrl = z.url({ protocol: /^https?$/ });
const wsUrl = z.url({ protocol: /^wss?$/ });

const UrlsConfig = z.partialRecord(
  z.enum(EXCHANGE_IDS),
  z.union([httpUrl.transform((rest) => ({ rest })), z.strictObject({ rest: httpUrl.optional(), ws: wsUrl.optional() })]),
);

/** Parses and validates the `EXCHANGE_URLS` JSON. Empty input means no overrides. Throws 400 on bad input. */
export function parseExchangeUrls(json: string | undefined): ExchangeUrls {
  if (json === undefined || json.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw badRequest('EXCHANGE_URLS is not valid JSON', 'INVALID_EXCHANGE_URLS');
  }
  const parsed = UrlsConfig.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw badRequest(`EXCHANGE_URLS is invalid: ${issues}`, 'INVALID_EXCHANGE_URLS');
  }
  return parsed.data as ExchangeUrls;
}

const ORIGIN_RE = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]+/i;

/** Replaces the origin of `url` with `base` (which may carry a path prefix), keeping path and query. */
export function rebaseUrl(url: string, base: string): string {
  if (!ORIGIN_RE.test(url)) return url;
  return url.replace(ORIGIN_RE, base.replace(/\/+$/, ''));
}

interface HasUrls {
  urls: { api?: unknown } & Record<string, unknown>;
}

/**
 * Rewrites every URL in `exchange.urls.api`, recursively (ccxt.pro nests `urls.api.ws`). Strings under a `ws` key,
 * or starting with ws:// / wss://, take the `ws` override; all others take `rest`.
 */
export function applyUrlOverrides(exchange: HasUrls, override: UrlOverride): void {
  const rewrite = (node: unknown, underWs: boolean): unknown => {
    if (typeof node === 'string') {
      const isWs = underWs || /^wss?:\/\//i.test(node);
      const base = isWs ? override.ws : override.rest;
      return base ? rebaseUrl(node, base) : node;
    }
    if (node && typeof node === 'object' && !Array.isArray(node)) {
      const obj = node as Record<string, unknown>;
      for (const key of Object.keys(obj)) obj[key] = rewrite(obj[key], underWs || key === 'ws');
    }
    return node;
  };
  exchange.urls.api = rewrite(exchange.urls.api, false);
}
