import type { Redis } from 'ioredis';

/**
 * Rate-limit counters in Redis (a store for @fastify/rate-limit), shared by every API instance.
 *
 * Same Redis data as @fastify/rate-limit's own RedisStore (its Lua script, with INCRBY n instead of INCR: PEXPIRE
 * when the increment creates the key, else PTTL; same key names), so instances running either store share one limit.
 * The difference is when a request waits for Redis:
 *
 * - exact (route policies: auth, account, not-found): every request waits for its own increment's answer, as before.
 * - fast (the global per-user / per-IP limit): every admitted request is still counted in Redis, but while this
 *   instance knows the key to be far from its limit it answers without waiting, and its increment goes out with the
 *   others of the same key (one INCRBY per key at most every FLUSH_MS). "Far" means: this instance's count for the
 *   key — the count Redis last returned plus its own increments after that one — is at most half the limit with this
 *   request, that count came from an increment sent less than FRESH_MS ago, and the window it belongs to has not
 *   ended. From half the limit on (or with stale or no knowledge, or after a Redis error) every request waits, its
 *   increment goes out at once together with any not yet sent, and the decision (429 or not) is Redis's, as before.
 *   The RateLimit headers of an unwaited request are computed from that count (exact with a single instance; with
 *   several, other instances' increments since the last reply are not in `remaining` yet).
 *
 *   Shared-limit bound: an instance admits without waiting only while the count it knows is ≤ max/2 and recent, and
 *   its own increments reach Redis within FLUSH_MS. A limit can only be overshot when other instances push the same
 *   key past the remaining half faster than that (within FLUSH_MS + a round trip) — never by one instance on its own,
 *   and never on the auth policies.
 */

/** How long a Redis answer about a key counts as fresh enough to admit without waiting. */
export const FRESH_MS = 1000;
/**
 * Increments of requests answered without waiting are sent together, one INCRBY per key at most every FLUSH_MS: a
 * busy key costs a few Redis round trips per second instead of one per request (each one a write and a read
 * syscall here and a script run in Redis). Other instances see them at most FLUSH_MS + one round trip later.
 */
export const FLUSH_MS = 10;
/** Keys whose state this instance remembers (the oldest is dropped first). */
const MAX_KEYS = 10_000;

// The Lua of @fastify/rate-limit's RedisStore (v11) with an increment (ARGV[5], 1 for a single request): same keys,
// same counters, same TTL rules (a window starts with the increment that creates the key).
const INCR_LUA = `
  local key = KEYS[1]
  local timeWindow = tonumber(ARGV[1])
  local max = tonumber(ARGV[2])
  local continueExceeding = ARGV[3] == 'true'
  local exponentialBackoff = ARGV[4] == 'true'
  local by = tonumber(ARGV[5])
  local MAX_SAFE_INTEGER = (2^53) - 1
  local current = redis.call('INCRBY', key, by)
  if current == by or (continueExceeding and current > max) then
    redis.call('PEXPIRE', key, timeWindow)
  elseif exponentialBackoff and current > max then
    local backoffExponent = current - max - 1
    timeWindow = math.min(timeWindow * (2 ^ backoffExponent), MAX_SAFE_INTEGER)
    redis.call('PEXPIRE', key, timeWindow)
  else
    timeWindow = redis.call('PTTL', key)
  end
  return {current, timeWindow}
`;

const READ_LUA = `
  local key = KEYS[1]
  local current = redis.call('GET', key)
  if not current then
    return {0, 0}
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    ttl = 0
  end
  return {tonumber(current), ttl}
`;

type Reply = [number, number];
type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void;

interface SharedRedis extends Redis {
  rateLimitShared(key: string, timeWindow: number, max: number, continueExceeding: boolean, exponentialBackoff: boolean, by: number, cb: (err: Error | null, res?: Reply) => void): void;
  rateLimitSharedRead(key: string, cb: (err: Error | null, res?: Reply) => void): void;
}

interface KeyState {
  key: string;
  /** Redis's count at the last reply plus this instance's increments after it (unsent or awaiting their reply). */
  count: number;
  /** Increments sent and awaiting their reply. */
  pending: number;
  /** Increments of requests answered without waiting, not sent yet (they go out together, see FLUSH_MS). */
  unsent: number;
  timeWindow: number;
  max: number;
  /** When the window ends, at the earliest (send time of the INCRBY that reported the TTL + that TTL). */
  resetAt: number;
  /** Send time of the INCRBY behind the last reply. */
  syncedAt: number;
}

interface RouteInfo {
  routeInfo: { method?: string; url?: string };
  continueExceeding?: boolean;
  exponentialBackoff?: boolean;
}

export interface SharedStoreOptions {
  redis: Redis;
  /** Key prefix, e.g. `rl:` (route stores append `<METHOD><url>-`, like @fastify/rate-limit). */
  prefix: string;
  /** Admit without waiting while far from the limit (see above); false: every request waits. */
  fast: boolean;
  continueExceeding?: boolean;
  exponentialBackoff?: boolean;
  now?: () => number;
}

export class SharedRedisStore {
  private readonly redis: SharedRedis;
  private readonly prefix: string;
  private readonly fast: boolean;
  private readonly continueExceeding: boolean;
  private readonly exponentialBackoff: boolean;
  private readonly now: () => number;
  private readonly keys = new Map<string, KeyState>();

  constructor(options: SharedStoreOptions) {
    this.redis = options.redis as SharedRedis;
    this.prefix = options.prefix;
    this.continueExceeding = options.continueExceeding ?? false;
    this.exponentialBackoff = options.exponentialBackoff ?? false;
    // Those two move the window on every exceeding request: nothing to know locally.
    this.fast = options.fast && !this.continueExceeding && !this.exponentialBackoff;
    this.now = options.now ?? Date.now;
    if (!this.redis.rateLimitShared) this.redis.defineCommand('rateLimitShared', { numberOfKeys: 1, lua: INCR_LUA });
    if (!this.redis.rateLimitSharedRead) this.redis.defineCommand('rateLimitSharedRead', { numberOfKeys: 1, lua: READ_LUA });
  }

  /** Number of keys this instance currently remembers (tests, diagnostics). */
  get size() {
    return this.keys.size;
  }

  incr(key: string, cb: Callback, timeWindow: number, max: number): void {
    if (!this.fast) {
      this.send(key, null, 1, timeWindow, max, cb, 0);
      return;
    }
    const now = this.now();
    let state = this.keys.get(key);
    if (state !== undefined && now < state.resetAt && now - state.syncedAt < FRESH_MS && (state.count + 1) * 2 <= max) {
      state.count++;
      if (state.unsent++ === 0) this.queue(state);
      state.timeWindow = timeWindow;
      state.max = max;
      cb(null, { current: state.count, ttl: state.resetAt - now });
      return;
    }
    if (state === undefined) {
      if (this.keys.size >= MAX_KEYS) this.keys.delete(this.keys.keys().next().value!); // its unsent increments still go out
      // No knowledge yet: not usable without waiting (syncedAt far in the past) until the first reply.
      state = { key, count: 0, pending: 0, unsent: 0, timeWindow, max, resetAt: 0, syncedAt: -Infinity };
      this.keys.set(key, state);
    }
    // This request waits: its increment goes out now, together with the not yet sent ones (so Redis's answer counts
    // every request this instance has admitted), and the decision is Redis's.
    state.count++;
    const by = state.unsent + 1;
    state.unsent = 0;
    this.send(key, state, by, timeWindow, max, cb, now);
  }

  private queued: KeyState[] = [];
  private flushScheduled = false;

  private queue(state: KeyState) {
    this.queued.push(state);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(this.flush, FLUSH_MS).unref();
    }
  }

  /** Sends the increments of the requests answered without waiting: one INCRBY per key per FLUSH_MS. */
  readonly flush = () => {
    this.flushScheduled = false;
    const queued = this.queued;
    this.queued = [];
    const now = this.now();
    for (const state of queued) {
      const by = state.unsent;
      if (by === 0) continue; // already sent with a waiting request
      state.unsent = 0;
      this.send(state.key, state, by, state.timeWindow, state.max, null, now);
    }
  };

  /** One INCRBY; `cb` (when given) gets Redis's answer. Every reply also updates what this instance knows of the key. */
  private send(key: string, state: KeyState | null, by: number, timeWindow: number, max: number, cb: Callback | null, sentAt: number) {
    if (state !== null) state.pending += by;
    this.redis.rateLimitShared(this.prefix + key, timeWindow, max, this.continueExceeding, this.exponentialBackoff, by, (err, res) => {
      if (state !== null) this.settle(state, by, sentAt, err, res);
      if (cb === null) return;
      if (err) cb(err);
      else cb(null, { current: res![0], ttl: res![1] });
    });
  }

  private settle(state: KeyState, by: number, sentAt: number, err: Error | null, res: Reply | undefined) {
    state.pending -= by;
    if (this.keys.get(state.key) !== state) return; // evicted or dropped meanwhile
    if (err || !res) {
      // Unknown state: the next requests wait for Redis (and see its errors) until a reply comes back.
      this.keys.delete(state.key);
      return;
    }
    // Replies come back in send order (one connection), so the increments still pending were sent after this one.
    state.count = res[0] + state.pending + state.unsent;
    state.resetAt = sentAt + res[1];
    state.syncedAt = sentAt;
  }

  read(key: string, cb: Callback): void {
    this.redis.rateLimitSharedRead(this.prefix + key, (err, res) => {
      if (err) cb(err);
      else cb(null, { current: res![0], ttl: res![1] });
    });
  }

  /** Route policies (auth, account, not found): always exact, keys named like @fastify/rate-limit's. */
  child(routeOptions: RouteInfo): SharedRedisStore {
    return new SharedRedisStore({
      redis: this.redis,
      prefix: `${this.prefix}${routeOptions.routeInfo.method}${routeOptions.routeInfo.url}-`,
      fast: false,
      continueExceeding: routeOptions.continueExceeding,
      exponentialBackoff: routeOptions.exponentialBackoff,
      now: this.now,
    });
  }
}
