import { createHmac, timingSafeEqual } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { Engine, EngineEvent } from './engine.js';

export function hmacHex(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('hex');
}

export function hmacBase64(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64');
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Parses a JSON request body; `{}` when empty or not JSON. */
export function jsonBody(body: string): Record<string, any> {
  if (!body) return {};
  try {
    const parsed = JSON.parse(body);
    return parsed && typeof parsed === 'object' ? parsed : {};
  } catch {
    return {};
  }
}

export const TIMEFRAMES_MS: Record<string, number> = {
  '1m': 60_000,
  '3m': 180_000,
  '5m': 300_000,
  '15m': 900_000,
  '30m': 1_800_000,
  '1h': 3_600_000,
  '1H': 3_600_000,
  '4h': 14_400_000,
  '4H': 14_400_000,
  '1d': 86_400_000,
  '1D': 86_400_000,
  '1day': 86_400_000,
  '1min': 60_000,
  '5min': 300_000,
  '15min': 900_000,
  '1h_': 3_600_000,
};

/**
 * WebSocket subscriptions shared by the dialects: a client subscribes to (channel, symbol) pairs and the engine's
 * price/fill events are pushed to it in the dialect's format.
 */
export class WsHub<Sub> {
  private readonly subs = new Map<WebSocket, Sub[]>();
  private readonly unsubscribe: () => void;

  constructor(
    engine: Engine,
    private readonly render: (sub: Sub, event: EngineEvent) => unknown | undefined,
  ) {
    this.unsubscribe = engine.on((event) => this.broadcast(event));
  }

  add(socket: WebSocket, sub: Sub): void {
    const list = this.subs.get(socket) ?? [];
    list.push(sub);
    this.subs.set(socket, list);
    socket.once('close', () => this.subs.delete(socket));
  }

  private broadcast(event: EngineEvent): void {
    for (const [socket, subs] of this.subs) {
      for (const sub of subs) {
        const msg = this.render(sub, event);
        if (msg !== undefined && socket.readyState === socket.OPEN) socket.send(JSON.stringify(msg));
      }
    }
  }

  dispose(): void {
    this.unsubscribe();
  }
}
