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

export function loggerOptions(config: Pick<Config, 'logLevel'>, stream?: NodeJS.WritableStream): FastifyServerOptions['logger'] {
  const base = {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (stream) return { ...base, stream } as FastifyServerOptions['logger'];
  if (process.stdout.isTTY) {
    return { ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } };
  }
  return base;
}
