import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { injectAs } from '../../helper.js';
import type { FakeExchange } from '../../fakes/fake-exchange/index.js';

export const ring = `k1:${randomBytes(32).toString('base64')}`;

/** App environment pointing every given fake exchange at its loopback URL. */
export function envFor(fakes: FakeExchange[], extra: Record<string, string> = {}): Record<string, string> {
  const urls = Object.fromEntries(fakes.map((f) => [f.exchange, { rest: f.url, ws: f.wsUrl }]));
  return {
    ENCRYPTION_KEY: ring,
    EXCHANGE_URLS: JSON.stringify(urls),
    EXCHANGE_TIMEOUT_MS: '1500',
    ORDER_SYNC_INTERVAL_MS: '200',
    MARKET_CACHE_TTL_MS: '0',
    ...extra,
  };
}

export async function saveKey(app: FastifyInstance, token: string, fake: FakeExchange, marketType: 'spot' | 'swap' = 'spot'): Promise<string> {
  const res = await injectAs(app, token, {
    method: 'POST',
    url: '/account/save_keys',
    payload: {
      exchange: fake.exchange,
      apiKey: fake.credentials.apiKey,
      secret: fake.credentials.secret,
      passphrase: fake.exchange === 'binance' ? undefined : fake.credentials.passphrase,
      marketType,
    },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json().id;
}

/** Polls an order until `done` holds (a deadline, not a timing assertion: fails only if it never happens). */
export async function waitForOrder(
  app: FastifyInstance,
  token: string,
  id: string,
  done: (order: Record<string, any>) => boolean,
  deadlineMs = 15_000,
): Promise<Record<string, any>> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const res = await injectAs(app, token, { url: `/order/${id}` });
    assert.equal(res.statusCode, 200, res.body);
    const order = res.json();
    if (done(order)) return order;
    if (Date.now() > until) assert.fail(`order ${id} never reached the expected state: ${res.body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const submit = (app: FastifyInstance, token: string, payload: Record<string, unknown>) =>
  injectAs(app, token, { method: 'POST', url: '/order/submit', payload });
