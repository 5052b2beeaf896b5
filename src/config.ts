import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { generateKeyRingValue, parseKeyRing } from './modules/account/vault.js';

/**
 * One zod schema over the environment, parsed once at startup (src/server.ts, scripts) and passed into buildApp.
 * No other module reads process.env. Variable names keep the original backend's contract (DATABASE_URL, JWT_SECRET,
 * ENCRYPTION_KEY, DEBUG, HOST, PORT, CORS_ORIGINS, DEEPSEEK_API_KEY); every variable is mirrored in .env.example.
 */

const bool = (def: boolean) => z.stringbool().default(def);
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(def);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const postgresUrl = z
  .string()
  .trim()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be a postgres:// or postgresql:// URL with a host, e.g. postgres://user@127.0.0.1:5432/db');

/** Secrets known from tutorials, the original backend's README and its .env.example: refused in production. */
export const KNOWN_DEFAULT_SECRETS = new Set([
  'change_me',
  'changeme',
  'change-me',
  'secret',
  'jwt_secret',
  'your-secret-key',
  'your_secret_key',
  'your-super-secret-key-change-in-production',
  'supersecret',
  'super-secret',
  'development-secret',
]);

export const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development').describe('Run mode; production enforces the security checklist'),
  HOST: z.string().trim().min(1).default('0.0.0.0').describe('Interface to listen on'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000).describe('TCP port to listen on'),
  DEBUG: bool(false).describe('Verbose diagnostics; refused in production'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TRUST_PROXY: bool(false).describe('Trust X-Forwarded-For and an incoming x-request-id (only behind your own proxy)'),

  DATABASE_URL: postgresUrl.optional().describe('PostgreSQL URL; unset = embedded PGlite in DATA_DIR'),
  DATA_DIR: z.string().trim().min(1).default('./data').describe('Embedded database, datasets and other local state'),
  DB_MIGRATE_ON_START: bool(true).describe('Apply pending migrations at start'),
  DB_POOL_MAX: int(10, 1, 500),

  JWT_SECRET: optionalString.describe('HS256 signing secret, 32+ characters'),
  JWT_ACCESS_TTL_SECONDS: int(900, 30, 86_400),
  JWT_REFRESH_TTL_SECONDS: int(30 * 86_400, 60, 365 * 86_400),
  ENCRYPTION_KEY: optionalString.describe('Key ring for exchange credentials: comma-separated, newest first'),
  ARGON2_MEMORY_KIB: int(19_456, 1024, 4_194_304),
  ARGON2_TIME_COST: int(2, 1, 100),
  ARGON2_PARALLELISM: int(1, 1, 16),
  AUTH_CACHE_TTL_MS: int(1000, 0, 5000).describe('Per-process cache of user/session state behind access tokens; 0 = off'),
  PASSWORD_HASH_CONCURRENCY: int(0, 0, 256).describe('argon2 operations at once per process; 0 = cores - 1 (at least 1)'),
  PASSWORD_HASH_QUEUE_MAX: int(64, 0, 100_000).describe('argon2 operations waiting before logins answer 503'),
  ADMIN_EMAIL: optionalString,
  ADMIN_PASSWORD: optionalString,

  CORS_ORIGINS: z.string().default('').describe('Comma-separated allow-list of origins; empty = no cross-origin access'),
  BODY_LIMIT_BYTES: int(1_048_576, 1024, 64 * 1_048_576),
  REDIS_URL: optionalString.describe('Redis for shared rate limits, job queue and event bus across instances'),
  REDIS_PREFIX: z.string().regex(/^[\w:.-]*$/, 'letters, digits, _ : . - only').default('').describe('Prefix of every Redis key and channel of this deployment (several deployments or test runs on one Redis)'),

  RATE_LIMIT_MAX: int(300, 1).describe('Requests per window per IP (anonymous) or per user (authenticated)'),
  RATE_LIMIT_WINDOW_MS: int(60_000, 1000),
  AUTH_RATE_LIMIT_MAX: int(10, 1).describe('login/register/refresh attempts per window per IP and per account'),
  AUTH_RATE_LIMIT_WINDOW_MS: int(60_000, 1000),
  NOT_FOUND_RATE_LIMIT_MAX: int(60, 1),

  WORKER_THREADS: int(0, 0, 256).describe('Backtest worker threads; 0 = available cores - 1 (at least 1)'),
  WORKER_NICE: int(10, 0, 19).describe('CPU priority decrease (Unix nice increment) of backtest threads, so the API stays responsive while they fill the cores; 0 = same priority'),
  BACKTEST_QUEUE_MAX: int(64, 1),
  BACKTEST_USER_CONCURRENCY: int(2, 1),
  DATASET_MAX_BYTES: int(1_073_741_824, 1024),
  DATASET_CACHE_MB: int(256, 0).describe('Memory for the columns of recently used datasets (backtests skip reading the file); 0 = off'),
  DATASETS_DIR: optionalString.describe('Read-only CSV files offered to every user; default DATA_DIR/datasets'),
  COLUMNAR_DIR: optionalString.describe('Imported datasets (columnar <sha256>.bin files); default DATA_DIR/columnar'),

  EXCHANGE_URLS: optionalString.describe('JSON: per-exchange base URL overrides, e.g. {"binance":"http://127.0.0.1:9001"}'),
  EXCHANGE_TIMEOUT_MS: int(10_000, 100),
  PAPER_START_BALANCES: z.string().default('USDT=10000').describe('Paper account starting balances, e.g. USDT=10000,BTC=0'),
  PAPER_PRICE_EXCHANGE: z.enum(['binance', 'bitget', 'okx']).default('binance').describe('Public ticker that prices paper fills'),
  PAPER_FEE_BPS: int(10, 0, 10_000),
  PAPER_SLIPPAGE_BPS: int(5, 0, 10_000),
  EXCHANGE_MARKETS_RELOAD_MS: int(3_600_000, 0),
  MARKET_CACHE_TTL_MS: int(3000, 0, 600_000).describe('In-process cache of public market data'),
  ORDER_SYNC_INTERVAL_MS: int(5000, 50).describe('Background sync of pending/open orders with the exchange'),

  BOTS_REQUIRE_BACKTEST: bool(true).describe('A bot on a real exchange starts only when its strategy version has a succeeded backtest'),
  BOTS_LEASE_TTL_MS: int(30_000, 100).describe('Lease of a running bot (renewed every third of it); another instance resumes the bot after it expires'),
  BOTS_POLL_INTERVAL_MS: int(10_000, 50).describe('Candle polling fallback of running bots (the candle stream wakes them sooner)'),
  BOTS_WARMUP_CANDLES: int(300, 1, 5000).describe('History fed to a bot\'s strategy before it acts'),
  BOTS_WATCH: bool(true).describe('Wake bots with the exchange candle stream (false: polling only)'),

  WS_MAX_SUBSCRIPTIONS: int(50, 1, 10_000).describe('Subscriptions per WebSocket connection'),
  WS_MAX_BUFFER_BYTES: int(1_048_576, 1024).describe('A WebSocket client whose unsent data passes this is disconnected as too slow'),
  WS_MAX_MESSAGE_BYTES: int(4096, 256, 1_048_576).describe('Largest client message; larger ones get an error'),
  WS_PING_INTERVAL_MS: int(30_000, 50).describe('Server ping interval; a client silent for a whole interval is dropped'),
  WS_MESSAGES_PER_SECOND: int(20, 1).describe('Client messages per second per connection (burst of the same size)'),
  FEED_SILENCE_MS: int(60_000, 10).describe('Readiness fails when a subscribed ticker/trades feed is silent this long (candles: 2x timeframe)'),

  DEEPSEEK_API_KEY: optionalString,
  DEEPSEEK_BASE_URL: z.url().default('https://api.deepseek.com'),
  DEEPSEEK_MODEL: z.string().trim().min(1).default('deepseek-chat'),
  DEEPSEEK_TIMEOUT_MS: int(60_000, 100),
  DEEPSEEK_MAX_TOKENS: int(8192, 256, 65_536),
  AI_DAILY_QUOTA: int(50, 0),

  SHUTDOWN_TIMEOUT_MS: int(10_000, 100),
  MAX_EVENT_LOOP_DELAY_MS: int(1000, 0),
});
export type Env = z.input<typeof EnvSchema>;

const parsedEnv = EnvSchema.transform((e) => ({
  env: e.NODE_ENV,
  isProduction: e.NODE_ENV === 'production',
  host: e.HOST,
  port: e.PORT,
  debug: e.DEBUG,
  logLevel: e.LOG_LEVEL,
  trustProxy: e.TRUST_PROXY,
  db: {
    url: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    migrateOnStart: e.DB_MIGRATE_ON_START,
    poolMax: e.DB_POOL_MAX,
  },
  auth: {
    jwtSecret: e.JWT_SECRET ?? '',
    accessTtlSeconds: e.JWT_ACCESS_TTL_SECONDS,
    refreshTtlSeconds: e.JWT_REFRESH_TTL_SECONDS,
    argon2: { memoryCost: e.ARGON2_MEMORY_KIB, timeCost: e.ARGON2_TIME_COST, parallelism: e.ARGON2_PARALLELISM },
    cacheTtlMs: e.AUTH_CACHE_TTL_MS,
    hashConcurrency: e.PASSWORD_HASH_CONCURRENCY,
    hashQueueMax: e.PASSWORD_HASH_QUEUE_MAX,
    adminEmail: e.ADMIN_EMAIL,
    adminPassword: e.ADMIN_PASSWORD,
  },
  encryptionKey: e.ENCRYPTION_KEY ?? '',
  corsOrigins: e.CORS_ORIGINS.split(',')
    .map((o) => o.trim())
    .filter(Boolean),
  bodyLimit: e.BODY_LIMIT_BYTES,
  redisUrl: e.REDIS_URL,
  redisPrefix: e.REDIS_PREFIX,
  rateLimit: {
    max: e.RATE_LIMIT_MAX,
    windowMs: e.RATE_LIMIT_WINDOW_MS,
    authMax: e.AUTH_RATE_LIMIT_MAX,
    authWindowMs: e.AUTH_RATE_LIMIT_WINDOW_MS,
    notFoundMax: e.NOT_FOUND_RATE_LIMIT_MAX,
  },
  backtest: {
    threads: e.WORKER_THREADS,
    nice: e.WORKER_NICE,
    queueMax: e.BACKTEST_QUEUE_MAX,
    userConcurrency: e.BACKTEST_USER_CONCURRENCY,
  },
  datasets: {
    maxBytes: e.DATASET_MAX_BYTES,
    cacheBytes: e.DATASET_CACHE_MB * 1024 * 1024,
    filesDir: e.DATASETS_DIR ?? path.join(e.DATA_DIR, 'datasets'),
    columnarDir: e.COLUMNAR_DIR ?? path.join(e.DATA_DIR, 'columnar'),
  },
  bots: {
    requireBacktest: e.BOTS_REQUIRE_BACKTEST,
    leaseTtlMs: e.BOTS_LEASE_TTL_MS,
    pollIntervalMs: e.BOTS_POLL_INTERVAL_MS,
    warmupCandles: e.BOTS_WARMUP_CANDLES,
    watch: e.BOTS_WATCH,
  },
  exchanges: {
    urls: e.EXCHANGE_URLS,
    timeoutMs: e.EXCHANGE_TIMEOUT_MS,
    paperStartBalances: e.PAPER_START_BALANCES,
    paperPriceExchange: e.PAPER_PRICE_EXCHANGE,
    paperFeeBps: e.PAPER_FEE_BPS,
    paperSlippageBps: e.PAPER_SLIPPAGE_BPS,
    marketsReloadMs: e.EXCHANGE_MARKETS_RELOAD_MS,
    marketCacheTtlMs: e.MARKET_CACHE_TTL_MS,
    orderSyncIntervalMs: e.ORDER_SYNC_INTERVAL_MS,
  },
  realtime: {
    maxSubscriptions: e.WS_MAX_SUBSCRIPTIONS,
    maxBufferBytes: e.WS_MAX_BUFFER_BYTES,
    maxMessageBytes: e.WS_MAX_MESSAGE_BYTES,
    pingIntervalMs: e.WS_PING_INTERVAL_MS,
    messagesPerSecond: e.WS_MESSAGES_PER_SECOND,
    feedSilenceMs: e.FEED_SILENCE_MS,
  },
  deepseek: {
    apiKey: e.DEEPSEEK_API_KEY,
    baseUrl: e.DEEPSEEK_BASE_URL,
    model: e.DEEPSEEK_MODEL,
    timeoutMs: e.DEEPSEEK_TIMEOUT_MS,
    maxTokens: e.DEEPSEEK_MAX_TOKENS,
    dailyQuota: e.AI_DAILY_QUOTA,
  },
  shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
  maxEventLoopDelayMs: e.MAX_EVENT_LOOP_DELAY_MS,
}));

export type Config = z.output<typeof parsedEnv>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Loud warnings to print at start (generated development secrets). */
  warnings: string[];
}

/**
 * Parses and checks the environment. Throws ConfigError naming every bad variable (or, in production, every failed
 * item of the security checklist) at once.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): LoadedConfig {
  const result = parsedEnv.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`),
    );
  }
  const config = result.data;
  const warnings: string[] = [];
  const problems: string[] = [];

  if (config.encryptionKey) {
    try {
      parseKeyRing(config.encryptionKey);
    } catch (err) {
      problems.push(`ENCRYPTION_KEY: ${(err as Error).message}`);
    }
  }

  if (config.isProduction) {
    // The original backend's security checklist, enforced at boot.
    const secret = config.auth.jwtSecret;
    if (!secret) problems.push('JWT_SECRET: required in production');
    else if (secret.length < 32) problems.push('JWT_SECRET: must be at least 32 characters');
    else if (KNOWN_DEFAULT_SECRETS.has(secret.toLowerCase())) problems.push('JWT_SECRET: is a known default value');
    if (!config.encryptionKey) problems.push('ENCRYPTION_KEY: required in production');
    if (config.debug) problems.push('DEBUG: must be off in production');
    if (config.corsOrigins.includes('*')) problems.push('CORS_ORIGINS: must not be * in production');
  } else {
    if (!config.auth.jwtSecret) {
      config.auth.jwtSecret = randomBytes(48).toString('base64url');
      warnings.push('JWT_SECRET is not set: generated a random one for this run. Tokens will not survive a restart.');
    }
    if (!config.encryptionKey) {
      config.encryptionKey = generateKeyRingValue();
      warnings.push(
        'ENCRYPTION_KEY is not set: generated a random one for this run. Exchange keys saved now become unreadable after a restart.',
      );
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return { config, warnings };
}

/** A config for tests and tools: the given overrides on top of a valid development environment. */
export function testConfig(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: 'test-secret-that-is-long-enough-for-hs256-0123456789',
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_TIME_COST: '1',
    // Load shedding off by default: a loaded CI machine must not turn test requests into 503s (tested on its own).
    MAX_EVENT_LOOP_DELAY_MS: '0',
    // Test processes share one Redis: each keeps to its own keys (the apps of one test file share them).
    REDIS_PREFIX: `test:${process.pid}:`,
    ...env,
  }).config;
}
