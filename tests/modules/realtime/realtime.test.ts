/**
 * GET /ws end to end: the app listens on loopback, real `ws` clients connect, and market data comes from the fake
 * exchange's WebSocket through real ccxt.pro (EXCHANGE_URLS points REST and WS at the fake).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { build, createUser } from '../../helper.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { connect, eventually, listen, type TestClient } from './ws-client.js';

const SYMBOL = 'BTC/USDT';

/** Keeps publishing `price` on the fake until `until` settles (subscriptions are asynchronous upstream). */
async function whilePublishing<T>(fake: FakeExchange, symbol: string, price: string, until: Promise<T>): Promise<T> {
  const timer = setInterval(() => fake.engine.setPrice(symbol, price), 25);
  try {
    return await until;
  } finally {
    clearInterval(timer);
  }
}

async function subscribed(client: TestClient, message: Record<string, unknown>) {
  client.send({ op: 'subscribe', ...message });
  return client.next((m) => m.type === 'subscribed' || m.type === 'error', `ack of ${JSON.stringify(message)}`);
}

describe('GET /ws market channels (fake exchange behind ccxt.pro)', () => {
  let fake: FakeExchange;
  let env: Record<string, string>;

  before(async () => {
    fake = await startFakeExchange({ exchange: 'binance' });
    env = { EXCHANGE_URLS: JSON.stringify({ binance: { rest: fake.url, ws: fake.wsUrl } }) };
  });
  after(() => fake.close());

  test('a public ticker subscription delivers the prices the exchange pushes', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env });
    const client = await connect(t, await listen(app));
    const welcome = await client.next((m) => m.type === 'welcome');
    assert.equal(welcome.authenticated, false);

    const ack = await subscribed(client, { channel: 'ticker', exchange: 'binance', symbol: SYMBOL });
    assert.deepEqual(ack, { type: 'subscribed', channel: 'ticker', exchange: 'binance', symbol: SYMBOL });
    const tick = await whilePublishing(fake, SYMBOL, '51234.5', client.next((m) => m.type === 'ticker' && m.data.last === '51234.5'));
    assert.equal(tick.exchange, 'binance');
    assert.equal(tick.symbol, SYMBOL);
    await client.close();
    await eventually(() => fake.wsClients() === 0, 'upstream closed');
  });

  test('a candles subscription delivers the current candle closing at the pushed price', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env });
    const client = await connect(t, await listen(app));
    const ack = await subscribed(client, { channel: 'candles', exchange: 'binance', symbol: SYMBOL, timeframe: '1m', id: 7 });
    assert.deepEqual(ack, { type: 'subscribed', id: 7, channel: 'candles', exchange: 'binance', symbol: SYMBOL, timeframe: '1m' });
    const candle = await whilePublishing(fake, SYMBOL, '52000', client.next((m) => m.type === 'candle' && m.data.close === '52000'));
    assert.equal(candle.timeframe, '1m');
    assert.equal(typeof candle.data.timestamp, 'number');
    assert.equal(candle.data.timestamp % 60_000, 0);
  });

  test('clients on one symbol share ONE upstream subscription, closed when the last one leaves', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env });
    const url = await listen(app);
    const [a, b, c] = await Promise.all([connect(t, url), connect(t, url), connect(t, url)]);
    const ticker = { channel: 'ticker', exchange: 'binance', symbol: SYMBOL };

    assert.equal((await subscribed(a, ticker)).type, 'subscribed');
    assert.equal((await subscribed(b, ticker)).type, 'subscribed');
    await whilePublishing(fake, SYMBOL, '50001', Promise.all([
      a.next((m) => m.type === 'ticker' && m.data.last === '50001'),
      b.next((m) => m.type === 'ticker' && m.data.last === '50001'),
    ]));
    assert.equal(fake.wsClients(), 1, 'two clients, one upstream connection');
    const feeds = app.realtimeService.hub.feeds();
    assert.equal(feeds.length, 1);
    assert.equal(feeds[0]!.id, 'binance:ticker:BTC/USDT');
    assert.equal(feeds[0]!.listeners, 2);

    // Another symbol is another upstream subscription.
    assert.equal((await subscribed(c, { ...ticker, symbol: 'ETH/USDT' })).type, 'subscribed');
    await whilePublishing(fake, 'ETH/USDT', '3005', c.next((m) => m.type === 'ticker' && m.data.last === '3005'));
    assert.equal(fake.wsClients(), 2);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /realtime_upstream_feeds\{exchange="binance",channel="ticker"\} 2/);
    assert.match(metrics, /realtime_ws_subscriptions\{channel="ticker"\} 3/);
    assert.match(metrics, /realtime_ws_clients\{authenticated="false"\} 3/);
    assert.match(metrics, /realtime_feed_lag_seconds\{feed="binance:ticker:BTC\/USDT"\} /);

    a.send({ op: 'unsubscribe', ...ticker });
    assert.equal((await a.next((m) => m.type === 'unsubscribed')).symbol, SYMBOL);
    assert.equal(app.realtimeService.hub.feeds().find((f) => f.key.symbol === SYMBOL)?.listeners, 1, 'b still listens');
    // a no longer receives BTC ticks; b does.
    await whilePublishing(fake, SYMBOL, '50002', b.next((m) => m.type === 'ticker' && m.data.last === '50002'));
    assert.equal(a.messages.some((m) => m.type === 'ticker' && m.data.last === '50002'), false);

    await b.close(); // the last BTC subscriber leaves: its upstream closes, ETH stays
    await eventually(() => fake.wsClients() === 1, 'BTC upstream closed');
    assert.deepEqual(app.realtimeService.hub.feeds().map((f) => f.id), ['binance:ticker:ETH/USDT']);
    await c.close();
    await eventually(() => fake.wsClients() === 0, 'ETH upstream closed');
    assert.equal(app.realtimeService.hub.feeds().length, 0);
  });

  test('an unknown symbol is refused naming the symbol field; the connection stays usable', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env });
    const client = await connect(t, await listen(app));
    const err = await subscribed(client, { channel: 'trades', exchange: 'binance', symbol: 'DOGE/USDT' });
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'EXCHANGE_BAD_SYMBOL');
    assert.equal(err.field, 'symbol');
    assert.equal(app.realtimeService.hub.feeds().length, 0);
    const ok = await subscribed(client, { channel: 'trades', exchange: 'binance', symbol: SYMBOL });
    assert.equal(ok.type, 'subscribed');
    const trade = await whilePublishing(fake, SYMBOL, '53000.1', client.next((m) => m.type === 'trade' && m.data.price === '53000.1'));
    assert.equal(trade.symbol, SYMBOL);
  });

  test('readiness fails when a subscribed feed goes silent (FEED_SILENCE_MS)', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env: { ...env, FEED_SILENCE_MS: '300' } });
    const client = await connect(t, await listen(app));
    const ready = async () => (await app.readiness.run()).checks['market-feeds']!;
    assert.equal((await ready()).ok, true, 'no feeds: ready');
    const limit = app.realtimeService.silenceLimitMs;
    assert.equal(limit({ exchange: 'binance', channel: 'trades', symbol: SYMBOL }), 300);
    assert.equal(limit({ exchange: 'binance', channel: 'candles', symbol: SYMBOL, timeframe: '5m' }), 600_000, 'candles: 2x the timeframe');

    await subscribed(client, { channel: 'ticker', exchange: 'binance', symbol: 'ETH/USDT' });
    const timer = setInterval(() => fake.engine.setPrice('ETH/USDT', '3001'), 25);
    try {
      await client.next((m) => m.type === 'ticker');
      await eventually(async () => (await ready()).ok, 'ready while the feed is live');
    } finally {
      clearInterval(timer);
    }
    // Nobody publishes any more: the feed goes silent.
    await eventually(async () => !(await ready()).ok, 'readiness fails');
    const check = await ready();
    assert.match(check.detail ?? '', /binance:ticker:ETH\/USDT silent for \d+ ms \(limit 300 ms\)/);
    const res = await app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(res.statusCode, 503);

    await client.close(); // no subscribed feeds: ready again
    await eventually(async () => (await ready()).ok, 'ready once the feed is gone');
  });

  test('a dropped exchange connection is re-established; the client keeps its subscription', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env });
    const client = await connect(t, await listen(app));
    await subscribed(client, { channel: 'ticker', exchange: 'binance', symbol: SYMBOL });
    await whilePublishing(fake, SYMBOL, '50010', client.next((m) => m.type === 'ticker' && m.data.last === '50010'));
    fake.dropWsConnections();
    await whilePublishing(fake, SYMBOL, '50020', client.next((m) => m.type === 'ticker' && m.data.last === '50020'));
    assert.equal(fake.wsClients(), 1);
    assert.equal(app.realtimeService.hub.feeds().length, 1);
  });

  test('shutdown closes client sockets with 1001 and ends the upstream feeds', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env });
    const client = await connect(t, await listen(app));
    await subscribed(client, { channel: 'ticker', exchange: 'binance', symbol: SYMBOL });
    await whilePublishing(fake, SYMBOL, '50003', client.next((m) => m.type === 'ticker'));
    assert.equal(fake.wsClients(), 1);
    await app.close();
    assert.equal(await client.closed, 1001);
    await eventually(() => fake.wsClients() === 0, 'upstream closed on shutdown');
  });
});

describe('GET /ws user channels and protocol', () => {
  test('auth by first message: own events only, only on subscribed channels', { timeout: 60_000 }, async (t) => {
    const app = await build(t);
    const [alice, bob] = [await createUser(app), await createUser(app)];
    const client = await connect(t, await listen(app));

    client.send({ op: 'subscribe', channel: 'orders' });
    const refused = await client.next((m) => m.type === 'error');
    assert.equal(refused.code, 'AUTH_REQUIRED');
    assert.equal(refused.field, 'channel');

    client.send({ op: 'auth', token: alice.token, id: 'a1' });
    const authed = await client.next((m) => m.type === 'authenticated');
    assert.equal(authed.userId, alice.id);
    assert.equal(authed.id, 'a1');
    assert.ok(Date.parse(authed.expiresAt) > Date.now());
    // Pipelined after auth without waiting for its answer: still handled after it.
    client.send({ op: 'subscribe', channel: 'orders' });
    assert.deepEqual(await client.next((m) => m.type === 'subscribed'), { type: 'subscribed', channel: 'orders' });

    await app.eventBus.publish(`user:${bob.id}`, { type: 'order.updated', orderId: 'bobs' });
    await app.eventBus.publish(`user:${alice.id}`, { type: 'backtest.progress', backtestId: 'not-subscribed' });
    await app.eventBus.publish(`user:${alice.id}`, { type: 'order.updated', orderId: 'alices' });
    const event = await client.next((m) => m.type === 'event');
    assert.deepEqual(event, { type: 'event', channel: 'orders', event: { type: 'order.updated', orderId: 'alices' } });
    assert.equal(client.messages.filter((m) => m.type === 'event').length, 1, "bob's event and the unsubscribed channel never arrive");

    client.send({ op: 'unsubscribe', channel: 'orders' });
    await client.next((m) => m.type === 'unsubscribed');
    client.send({ op: 'auth', token: bob.token });
    assert.equal((await client.next((m) => m.type === 'error')).code, 'USER_MISMATCH');
    client.send({ op: 'auth', token: 'not-a-jwt' });
    const bad = await client.next((m) => m.type === 'error');
    assert.equal(bad.code, 'INVALID_TOKEN');
    assert.equal(bad.field, 'token');
    assert.equal(app.rawLogs().includes(alice.token), false, 'the token is never logged');
  });

  test('auth by Authorization header on the upgrade; a bad header refuses the upgrade with 401', { timeout: 60_000 }, async (t) => {
    const app = await build(t);
    const user = await createUser(app);
    const url = await listen(app);
    const client = await connect(t, url, { headers: { authorization: `Bearer ${user.token}` } });
    const welcome = await client.next((m) => m.type === 'welcome');
    assert.equal(welcome.authenticated, true);
    assert.equal(welcome.userId, user.id);
    assert.equal((await subscribed(client, { channel: 'fills' })).type, 'subscribed');
    await app.eventBus.publish(`user:${user.id}`, { type: 'trade.filled', tradeId: 't1', price: '50000' });
    const fill = await client.next((m) => m.type === 'event');
    assert.deepEqual(fill, { type: 'event', channel: 'fills', event: { type: 'trade.filled', tradeId: 't1', price: '50000' } });

    await assert.rejects(connect(t, url, { headers: { authorization: 'Bearer forged.token.here' } }), { statusCode: 401 });
    await assert.rejects(connect(t, `${url}?token=placeholder`), { statusCode: 400 });
    assert.equal(app.rawLogs().includes(user.token), false, 'the token is never logged');
    const plain = await app.inject({ method: 'GET', url: '/ws' });
    assert.equal(plain.statusCode, 426);
  });

  test('a logged-out session loses its user channels at the next ping', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env: { WS_PING_INTERVAL_MS: '1000', AUTH_CACHE_TTL_MS: '0' } });
    const user = await createUser(app);
    const client = await connect(t, await listen(app), { headers: { authorization: `Bearer ${user.token}` } });
    await subscribed(client, { channel: 'bots' });
    const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${user.token}` }, payload: { refreshToken: user.refreshToken } });
    assert.ok(out.statusCode < 300, `logout: ${out.statusCode} ${out.body}`);
    const revoked = await client.next((m) => m.type === 'error');
    assert.equal(revoked.code, 'SESSION_REVOKED');
    await app.eventBus.publish(`user:${user.id}`, { type: 'bot.event', botId: 'b1' });
    client.send({ op: 'ping', id: 'after' });
    await client.next((m) => m.type === 'pong' && m.id === 'after');
    assert.equal(client.messages.some((m) => m.type === 'event'), false);
  });

  test('bad messages get errors naming the field; the connection stays usable', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env: { WS_MAX_MESSAGE_BYTES: '512' } });
    const client = await connect(t, await listen(app));
    const errorFor = async (data: string | object) => {
      if (typeof data === 'string') client.sendRaw(data);
      else client.send(data);
      return client.next((m) => m.type === 'error');
    };

    assert.equal((await errorFor('{not json')).code, 'INVALID_JSON');
    const unknownOp = await errorFor({ op: 'dance' });
    assert.equal(unknownOp.code, 'INVALID_MESSAGE');
    assert.equal(unknownOp.field, 'op');
    assert.equal((await errorFor({ channel: 'ticker' })).field, 'op');
    const noSymbol = await errorFor({ op: 'subscribe', channel: 'ticker', exchange: 'binance', id: 5 });
    assert.equal(noSymbol.field, 'symbol');
    assert.equal(noSymbol.id, 5);
    assert.equal((await errorFor({ op: 'subscribe', channel: 'candles', exchange: 'binance', symbol: SYMBOL })).field, 'timeframe');
    assert.equal((await errorFor({ op: 'subscribe', channel: 'ticker', exchange: 'kraken', symbol: SYMBOL })).field, 'exchange');
    assert.equal((await errorFor({ op: 'subscribe', channel: 'ticker', exchange: 'binance', symbol: 'btcusdt' })).field, 'symbol');
    assert.equal((await errorFor({ op: 'subscribe', channel: 'news' })).field, 'channel');
    assert.equal((await errorFor({ op: 'subscribe', channel: 'orders', extra: 1 })).field, 'extra');
    assert.equal((await errorFor({ op: 'auth' })).field, 'token');
    assert.equal((await errorFor({ op: 'unsubscribe', channel: 'ticker', exchange: 'binance', symbol: SYMBOL })).code, 'NOT_SUBSCRIBED');
    assert.equal((await errorFor('[1,2]')).code, 'INVALID_MESSAGE');
    const big = await errorFor({ op: 'ping', pad: 'x'.repeat(2000) });
    assert.equal(big.code, 'MESSAGE_TOO_LARGE');
    client.sendRaw(Buffer.from([1, 2, 3]));
    assert.equal((await client.next((m) => m.type === 'error')).code, 'INVALID_MESSAGE');

    client.send({ op: 'ping', id: 'still-here' });
    assert.equal((await client.next((m) => m.type === 'pong')).id, 'still-here');
    assert.equal(client.ws.readyState, client.ws.OPEN);
  });

  test('a frame above the hard payload limit closes the connection with 1009; the server carries on', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env: { WS_MAX_MESSAGE_BYTES: '512' } });
    const url = await listen(app);
    const client = await connect(t, url);
    client.sendRaw('x'.repeat(70_000)); // 16 x 512 < 64 KiB: the hard limit is 64 KiB
    assert.equal(await client.closed, 1009);
    const other = await connect(t, url);
    other.send({ op: 'ping', id: 1 });
    assert.equal((await other.next((m) => m.type === 'pong')).id, 1);
  });

  test('the subscription cap refuses one subscription too many', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env: { WS_MAX_SUBSCRIPTIONS: '2' } });
    const user = await createUser(app);
    const client = await connect(t, await listen(app), { headers: { authorization: `Bearer ${user.token}` } });
    assert.equal((await subscribed(client, { channel: 'orders' })).type, 'subscribed');
    assert.equal((await subscribed(client, { channel: 'fills' })).type, 'subscribed');
    assert.equal((await subscribed(client, { channel: 'fills' })).type, 'subscribed', 'a repeat is no new subscription');
    const refused = await subscribed(client, { channel: 'bots' });
    assert.equal(refused.code, 'SUBSCRIPTION_LIMIT');
    assert.equal(refused.field, 'channel');
    client.send({ op: 'unsubscribe', channel: 'orders' });
    await client.next((m) => m.type === 'unsubscribed');
    assert.equal((await subscribed(client, { channel: 'bots' })).type, 'subscribed');
  });

  test('messages above the per-connection rate are refused, not processed', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env: { WS_MESSAGES_PER_SECOND: '5' } });
    const client = await connect(t, await listen(app));
    for (let i = 0; i < 30; i++) client.send({ op: 'ping', id: i });
    const limited = await client.next((m) => m.type === 'error' && m.code === 'RATE_LIMITED');
    assert.match(limited.message, /5 messages per second/);
    const pongs = client.messages.filter((m) => m.type === 'pong').length;
    assert.ok(pongs < 30, `only part of the burst is answered (${pongs})`);
  });

  test('a slow client (socket paused) is disconnected once its buffer passes WS_MAX_BUFFER_BYTES', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env: { WS_MAX_BUFFER_BYTES: '16384' } });
    const user = await createUser(app);
    const client = await connect(t, await listen(app), { headers: { authorization: `Bearer ${user.token}` } });
    await subscribed(client, { channel: 'backtests' });
    client.ws.pause(); // stop reading: the kernel buffers fill, then the server's send buffer grows
    const payload = 'x'.repeat(8192);
    for (let i = 0; i < 20_000 && app.realtimeService.connections().length > 0; i++) {
      await app.eventBus.publish(`user:${user.id}`, { type: 'backtest.progress', i, payload });
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.equal(app.realtimeService.connections().length, 0, 'the server dropped the slow client');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /realtime_ws_disconnects_total\{reason="slow_client"\} 1/);
    client.ws.resume();
    await client.closed;
  });

  test('a client that never answers pings is dropped; one that does stays', { timeout: 60_000 }, async (t) => {
    const app = await build(t, { env: { WS_PING_INTERVAL_MS: '1000' } });
    const url = await listen(app);
    const silent = await connect(t, url, { autoPong: false });
    const lively = await connect(t, url);
    await silent.closed;
    assert.equal(silent.messages.filter((m) => m.type === 'ping').length >= 1, true);
    // Three server pings later the answering client is still connected.
    for (let i = 0; i < 3; i++) await lively.next((m) => m.type === 'ping');
    assert.equal(lively.ws.readyState, lively.ws.OPEN);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /realtime_ws_disconnects_total\{reason="ping_timeout"\} 1/);
  });
});
