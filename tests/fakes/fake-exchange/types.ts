import type { WebSocket } from 'ws';
import type { Engine } from './engine.js';

export type FakeExchangeId = 'binance' | 'bitget' | 'okx';

export interface FakeRequest {
  method: string;
  /** URL path without query, e.g. `/api/v3/order`. */
  path: string;
  /** Raw query string without the leading `?` (exactly as sent, for signature checks). */
  rawQuery: string;
  query: URLSearchParams;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface Credentials {
  apiKey: string;
  secret: string;
  passphrase?: string;
}

/** Per-exchange wire format: REST routes, error bodies and WebSocket protocol. */
export interface Dialect {
  handle(req: FakeRequest): FakeResponse;
  authError(): FakeResponse;
  rateLimited(retryAfterSeconds: number): FakeResponse;
  serverError(status: number): FakeResponse;
  /** A client connected to the WebSocket endpoint at `path`. */
  onWsConnection?(socket: WebSocket, path: string): void;
}

export interface DialectContext {
  engine: Engine;
  credentials: Credentials;
  /** Permissions reported by the "api restrictions"/"account config" endpoints. */
  permissions: { trade: boolean; withdraw: boolean };
}
