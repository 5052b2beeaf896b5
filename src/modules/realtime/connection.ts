/**
 * One client WebSocket of `GET /ws`: the protocol (auth, subscribe/unsubscribe, ping/pong), its limits (message
 * size, rate, subscription cap, send buffer) and its subscriptions (market feeds from the hub, user channels from
 * the event bus). Never throws out of a socket event: every bad input becomes an `error` message.
 */
import type { WebSocket, RawData } from 'ws';
import type { z } from 'zod';
import { HttpProblem } from '../../errors.js';
import type { BusEvent, EventBus, Unsubscribe } from '../../plugins/event-bus.js';
import { feedId, type FeedHub, type FeedKey, type Subscription } from './feed-hub.js';
import {
  AuthMessage,
  ChannelOnly,
  Envelope,
  MarketSubscription,
  PingMessage,
  USER_CHANNEL_PREFIX,
  USER_CHANNELS,
  UserSubscription,
  offendingField,
  type UserChannel,
} from './realtime.schemas.js';

export interface RealtimeLimits {
  maxSubscriptions: number;
  maxBufferBytes: number;
  maxMessageBytes: number;
  pingIntervalMs: number;
  messagesPerSecond: number;
}

export interface VerifiedToken {
  claims: { sub: string; sid: string; exp?: number };
}

export interface ConnectionContext {
  hub: FeedHub;
  bus: EventBus;
  /** Verifies an access token and the user's current state (app.verifyAccessToken); throws a 401 HttpProblem. */
  verifyToken: (token: string) => Promise<VerifiedToken>;
  limits: RealtimeLimits;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  /** Called once when the connection ends, with why. */
  onClosed?: (reason: DisconnectReason) => void;
}

export type DisconnectReason = 'client' | 'slow_client' | 'ping_timeout' | 'shutdown' | 'protocol';

/** The authenticated identity of a connection. The token is kept (in memory only) to re-check the session. */
interface Identity {
  userId: string;
  token: string;
  exp?: number;
}

type RequestId = string | number | undefined;

export interface Connection {
  readonly userId: string | undefined;
  readonly subscriptionCount: number;
  /** Subscriptions per channel (for metrics). */
  channelCounts(): Record<string, number>;
  /** Closes the connection with a close frame (1001 on shutdown); terminates it if the client does not answer. */
  close(code: number, reason: string, why: DisconnectReason): void;
}

const CLOSE_GRACE_MS = 2000;

export function openConnection(socket: WebSocket, ctx: ConnectionContext, initial?: Identity): Connection {
  const { limits, log } = ctx;
  let identity: Identity | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;
  let closeTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let closeReason: DisconnectReason = 'client';
  let alive = true;
  let tokens = limits.messagesPerSecond;
  let lastRefill = Date.now();
  /** Messages are handled in order; only `auth` awaits (so a pipelined subscribe after auth sees the identity). */
  let queue: Promise<void> = Promise.resolve();

  const market = new Map<string, { key: FeedKey; sub: Subscription }>();
  const userChannels = new Set<UserChannel>();
  let busUnsubscribe: Unsubscribe | undefined;

  const subscriptionCount = () => market.size + userChannels.size;

  // ---- sending ---------------------------------------------------------------------------------------------------

  function sendText(text: string): void {
    if (closed || socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount > limits.maxBufferBytes) {
      log.warn({ bufferedBytes: socket.bufferedAmount, limit: limits.maxBufferBytes }, 'realtime client too slow; disconnecting');
      drop('slow_client');
      return;
    }
    socket.send(text);
  }

  const send = (message: { type: string } & Record<string, unknown>) => sendText(JSON.stringify(message));

  function sendError(code: string, message: string, extra: { field?: string; id?: RequestId } = {}): void {
    send({
      type: 'error',
      code,
      message,
      ...(extra.field === undefined ? {} : { field: extra.field }),
      ...(extra.id === undefined ? {} : { id: extra.id }),
    });
  }

  function sendZodError(error: z.ZodError, id: RequestId): void {
    const field = offendingField(error);
    const issue = error.issues[0];
    let message = issue?.message ?? 'invalid message';
    if (issue?.code === 'unrecognized_keys') message = `unknown field ${field}`;
    sendError('INVALID_MESSAGE', field ? `${field}: ${message}` : message, { field, id });
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------------

  function drop(why: DisconnectReason): void {
    if (closed) return;
    closeReason = why;
    cleanup();
    socket.terminate();
  }

  function cleanup(): void {
    if (closed) return;
    closed = true;
    clearInterval(pingTimer);
    clearTimeout(expiryTimer);
    for (const { sub } of market.values()) sub.release();
    market.clear();
    userChannels.clear();
    busUnsubscribe?.();
    busUnsubscribe = undefined;
    ctx.onClosed?.(closeReason);
  }

  socket.on('close', () => {
    clearTimeout(closeTimer);
    cleanup();
  });
  socket.on('pong', () => {
    alive = true;
  });

  const pingTimer = setInterval(() => {
    if (!alive) {
      log.info({ userId: identity?.userId }, 'realtime client silent for a ping interval; dropping');
      drop('ping_timeout');
      return;
    }
    alive = false;
    if (socket.readyState !== socket.OPEN) return;
    socket.ping();
    send({ type: 'ping', ts: Date.now() });
    if (identity) void recheck(identity);
  }, limits.pingIntervalMs);

  // ---- identity --------------------------------------------------------------------------------------------------

  function setIdentity(next: Identity): void {
    identity = next;
    clearTimeout(expiryTimer);
    if (next.exp !== undefined) {
      const ms = next.exp * 1000 - Date.now();
      // (setTimeout caps at ~24.8 days; access tokens live minutes)
      expiryTimer = setTimeout(() => revoke('TOKEN_EXPIRED', 'Access token expired'), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    }
  }

  /** Drops the identity and every user channel (token expired, session revoked, user disabled). */
  function revoke(code: string, message: string): void {
    if (!identity || closed) return;
    const dropped = [...userChannels];
    identity = undefined;
    clearTimeout(expiryTimer);
    userChannels.clear();
    busUnsubscribe?.();
    busUnsubscribe = undefined;
    sendError(code, `${message}; user channels ended (${dropped.join(', ') || 'none'}), send a new auth message`);
  }

  /** Re-checks the session behind the token (logout, password change, disable take effect within a ping interval). */
  async function recheck(current: Identity): Promise<void> {
    try {
      await ctx.verifyToken(current.token);
    } catch (err) {
      if (identity !== current) return;
      const problem = err instanceof HttpProblem ? err : undefined;
      revoke(problem?.code ?? 'SESSION_REVOKED', problem?.message ?? 'Session is no longer valid');
    }
  }

  async function authenticate(msg: z.output<typeof AuthMessage>): Promise<void> {
    let verified: VerifiedToken;
    try {
      verified = await ctx.verifyToken(msg.token);
    } catch (err) {
      const problem = err instanceof HttpProblem ? err : undefined;
      if (!problem) log.warn({ err: (err as Error).message }, 'realtime token verification failed');
      sendError(problem?.code ?? 'UNAUTHORIZED', problem?.message ?? 'Access token is invalid', { field: 'token', id: msg.id });
      return;
    }
    if (closed) return;
    const { sub, exp } = verified.claims;
    if (identity && identity.userId !== sub) {
      sendError('USER_MISMATCH', 'this connection is authenticated as another user; open a new connection', { field: 'token', id: msg.id });
      return;
    }
    setIdentity({ userId: sub, token: msg.token, exp });
    send({
      type: 'authenticated',
      ...(msg.id === undefined ? {} : { id: msg.id }),
      userId: sub,
      ...(exp === undefined ? {} : { expiresAt: new Date(exp * 1000).toISOString() }),
    });
  }

  // ---- subscriptions ---------------------------------------------------------------------------------------------

  function onBusEvent(event: BusEvent): void {
    if (typeof event?.type !== 'string') return;
    const channel = USER_CHANNELS.find((c) => event.type.startsWith(USER_CHANNEL_PREFIX[c]));
    if (channel && userChannels.has(channel)) send({ type: 'event', channel, event });
  }

  function userSubscription(msg: z.output<typeof UserSubscription>): void {
    const { op, channel, id } = msg;
    const ack = { ...(id === undefined ? {} : { id }), channel };
    if (op === 'unsubscribe') {
      if (!userChannels.delete(channel)) return sendError('NOT_SUBSCRIBED', `not subscribed to ${channel}`, { field: 'channel', id });
      if (userChannels.size === 0) {
        busUnsubscribe?.();
        busUnsubscribe = undefined;
      }
      return send({ type: 'unsubscribed', ...ack });
    }
    if (!identity) {
      return sendError('AUTH_REQUIRED', `${channel} is a user channel: send {"op":"auth","token":...} first`, { field: 'channel', id });
    }
    if (!userChannels.has(channel)) {
      if (subscriptionCount() >= limits.maxSubscriptions) return capReached(id);
      userChannels.add(channel);
      busUnsubscribe ??= ctx.bus.subscribe(`user:${identity.userId}`, onBusEvent);
    }
    send({ type: 'subscribed', ...ack });
  }

  function capReached(id: RequestId): void {
    sendError('SUBSCRIPTION_LIMIT', `at most ${limits.maxSubscriptions} subscriptions per connection`, { field: 'channel', id });
  }

  function marketSubscription(msg: MarketSubscription): void {
    const { op, id, ...rest } = msg;
    const key: FeedKey = { exchange: rest.exchange, channel: rest.channel, symbol: rest.symbol, ...(rest.timeframe ? { timeframe: rest.timeframe } : {}) };
    const subId = feedId(key);
    const ack = { ...(id === undefined ? {} : { id }), ...key };
    const existing = market.get(subId);
    if (op === 'unsubscribe') {
      if (!existing) return sendError('NOT_SUBSCRIBED', `not subscribed to ${subId}`, { field: 'channel', id });
      market.delete(subId);
      existing.sub.release();
      return send({ type: 'unsubscribed', ...ack });
    }
    if (existing) return send({ type: 'subscribed', ...ack });
    if (subscriptionCount() >= limits.maxSubscriptions) return capReached(id);
    const sub = ctx.hub.subscribe(key, sendText);
    const entry = { key, sub };
    market.set(subId, entry);
    sub.ready.then(
      () => {
        if (market.get(subId) === entry) send({ type: 'subscribed', ...ack });
      },
      (err: unknown) => {
        if (market.get(subId) !== entry) return;
        market.delete(subId);
        sub.release();
        const problem = err instanceof HttpProblem ? err : undefined;
        const code = problem?.code ?? 'FEED_UNAVAILABLE';
        const field = code === 'EXCHANGE_BAD_SYMBOL' ? 'symbol' : undefined;
        sendError(code, problem?.message ?? `could not open ${subId}`, { field, id });
      },
    );
  }

  // ---- inbound ---------------------------------------------------------------------------------------------------

  function allowMessage(): boolean {
    const now = Date.now();
    tokens = Math.min(limits.messagesPerSecond, tokens + ((now - lastRefill) / 1000) * limits.messagesPerSecond);
    lastRefill = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  function handle(raw: unknown): Promise<void> | void {
    const envelope = Envelope.safeParse(raw);
    const id = (raw as { id?: unknown } | null)?.id;
    const echoId = typeof id === 'string' || typeof id === 'number' ? id : undefined;
    if (!envelope.success) return sendZodError(envelope.error, echoId);
    const { op } = envelope.data;
    if (op === 'auth') {
      const msg = AuthMessage.safeParse(raw);
      if (!msg.success) return sendZodError(msg.error, echoId);
      return authenticate(msg.data);
    }
    if (op === 'ping' || op === 'pong') {
      const msg = PingMessage.safeParse(raw);
      if (!msg.success) return sendZodError(msg.error, echoId);
      if (op === 'ping') send({ type: 'pong', ...(msg.data.id === undefined ? {} : { id: msg.data.id }), ts: Date.now() });
      return;
    }
    const channel = ChannelOnly.safeParse(raw);
    if (!channel.success) return sendZodError(channel.error, echoId);
    if ((USER_CHANNELS as readonly string[]).includes(channel.data.channel)) {
      const msg = UserSubscription.safeParse(raw);
      if (!msg.success) return sendZodError(msg.error, echoId);
      return userSubscription(msg.data);
    }
    const msg = MarketSubscription.safeParse(raw);
    if (!msg.success) return sendZodError(msg.error, echoId);
    return marketSubscription(msg.data);
  }

  socket.on('message', (data: RawData, isBinary: boolean) => {
    alive = true;
    if (closed) return;
    try {
      if (!allowMessage()) {
        return sendError('RATE_LIMITED', `more than ${limits.messagesPerSecond} messages per second; message ignored`);
      }
      const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
      if (size > limits.maxMessageBytes) {
        return sendError('MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds the limit of ${limits.maxMessageBytes} bytes`);
      }
      if (isBinary) return sendError('INVALID_MESSAGE', 'binary frames are not supported; send JSON text');
      const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return sendError('INVALID_JSON', 'message is not valid JSON');
      }
      queue = queue
        .then(() => handle(parsed))
        .catch((err: unknown) => {
          log.warn({ err: (err as Error).message }, 'realtime message handling failed');
          sendError('INTERNAL_ERROR', 'the message could not be handled');
        });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'realtime message handling failed');
      sendError('INTERNAL_ERROR', 'the message could not be handled');
    }
  });

  if (initial) setIdentity(initial);
  send({
    type: 'welcome',
    authenticated: identity !== undefined,
    ...(identity ? { userId: identity.userId } : {}),
    limits: {
      maxSubscriptions: limits.maxSubscriptions,
      maxMessageBytes: limits.maxMessageBytes,
      messagesPerSecond: limits.messagesPerSecond,
      pingIntervalMs: limits.pingIntervalMs,
    },
  });

  return {
    get userId() {
      return identity?.userId;
    },
    get subscriptionCount() {
      return subscriptionCount();
    },
    channelCounts() {
      const counts: Record<string, number> = {};
      for (const { key } of market.values()) counts[key.channel] = (counts[key.channel] ?? 0) + 1;
      for (const c of userChannels) counts[c] = (counts[c] ?? 0) + 1;
      return counts;
    },
    close(code, reason, why) {
      if (closed) return;
      closeReason = why;
      if (socket.readyState === socket.OPEN) socket.close(code, reason);
      cleanup();
      closeTimer = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
      closeTimer.unref();
    },
  };
}
