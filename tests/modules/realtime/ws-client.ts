/**
 * A real WebSocket client (the `ws` package) for the realtime tests: collects every JSON message and lets a test
 * wait for the next one matching a predicate. No timing assertions: waits are bounded by the test's own timeout.
 */
import type { TestContext } from 'node:test';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import WebSocket, { type ClientOptions } from 'ws';

export type Message = { type: string } & Record<string, any>;

export interface TestClient {
  ws: WebSocket;
  messages: Message[];
  send(message: unknown): void;
  sendRaw(data: string | Buffer): void;
  /** The first message (already received or future) after index `from` matching `match`; consumed past it. */
  next(match: (m: Message) => boolean, what?: string): Promise<Message>;
  /** Resolves with the close code once the connection is closed. */
  closed: Promise<number>;
  close(): Promise<void>;
}

/** The app listening on an ephemeral loopback port; returns its ws:// URL for /ws. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return `ws://127.0.0.1:${port}/ws`;
}

export async function connect(t: TestContext, url: string, opts: ClientOptions = {}): Promise<TestClient> {
  const ws = new WebSocket(url, opts);
  const messages: Message[] = [];
  let cursor = 0;
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    messages.push(JSON.parse(String(data)) as Message);
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => {
    resolve(code);
    for (const w of [...waiters]) w();
  }));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { statusCode: res.statusCode })));
  });
  ws.on('error', () => undefined);
  const client: TestClient = {
    ws,
    messages,
    send: (message) => ws.send(JSON.stringify(message)),
    sendRaw: (data) => ws.send(data),
    next(match, what = 'a matching message') {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = cursor; i < messages.length; i++) {
            if (match(messages[i]!)) {
              cursor = i + 1;
              waiters.delete(check);
              resolve(messages[i]!);
              return;
            }
          }
          if (ws.readyState === ws.CLOSED) {
            waiters.delete(check);
            reject(new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(messages.slice(cursor))}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
    closed,
    async close() {
      if (ws.readyState !== ws.CLOSED) {
        ws.close();
        await closed;
      }
    },
  };
  t.after(() => {
    if (ws.readyState !== ws.CLOSED) ws.terminate();
  });
  return client;
}

/** Polls `check` (every 20 ms) until it returns true; gives up after 2500 tries (a safety bound, not a timing check). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 2500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`never happened: ${what}`);
}
