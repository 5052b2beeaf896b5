import type { FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';

/**
 * Redacted paths: credentials never reach a log line, whatever object they travel in. `*.x` covers one level of
 * nesting (pino's wildcard); request bodies are never logged, but services log objects, so the usual suspects are listed.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'password',
  'newPassword',
  'currentPassword',
  'secret',
  'apiKey',
  'apiSecret',
  'passphrase',
  'token',
  'accessToken',
  'refreshToken',
  'authorization',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.secret',
  '*.apiKey',
  '*.apiSecret',
  '*.passphrase',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.authorization',
  '*.jwtSecret',
  '*.encryptionKey',
];

/** Query parameters whose values never reach a log line, even when a client wrongly puts a credential in a URL. */
const SECRET_QUERY = /([?&](?:token|access_token|refresh_token|accessToken|refreshToken|api_key|apiKey|secret|signature|password)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(SECRET_QUERY, '$1[redacted]') : url;
}

/** Fastify's default request serializer, with credentials stripped from the URL's query string. */
const serializers = {
  req(req: { method: string; url: string; host?: string; hostname?: string; ip?: string; socket?: { remotePort?: number } }) {
    return { method: req.method, url: redactUrl(req.url), host: req.host ?? req.hostname, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
  },
};

export function loggerOptions(config: Pick<Config, 'logLevel'>, stream?: NodeJS.WritableStream): FastifyServerOptions['logger'] {
  const base = {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers,
  };
  if (stream) return { ...base, stream } as FastifyServerOptions['logger'];
  if (process.stdout.isTTY) {
    return { ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } };
  }
  return base;
}
