/**
 * Turns ccxt errors into HttpProblems. Messages say which exchange answered what; they never carry an api key,
 * secret, passphrase or signature (ccxt messages can embed signed URLs, so every message is scrubbed).
 */
import { errors as ccxtErrors } from 'ccxt';
import { HttpProblem, badGateway, conflict, gatewayTimeout, serviceUnavailable, unprocessable } from '../../errors.js';

const {
  AuthenticationError,
  BadRequest,
  BadSymbol,
  DuplicateOrderId,
  ExchangeNotAvailable,
  InsufficientFunds,
  InvalidNonce,
  InvalidOrder,
  NetworkError,
  NotSupported,
  OnMaintenance,
  OperationFailed,
  OrderNotFound,
  RateLimitExceeded,
  DDoSProtection,
  RequestTimeout,
  BaseError,
  ExchangeError,
} = ccxtErrors;

/** Whether a failed call may still have taken effect on the exchange. */
export type CallOutcome = 'unknown' | 'rejected';

export interface ErrorContext {
  /** `binance`, `okx`, `bitget` or `paper`. */
  exchange: string;
  /** The adapter method that failed, e.g. `createOrder`. */
  operation: string;
  /** Values to blank out wherever they appear (api key, secret, passphrase). */
  secrets?: Array<string | undefined>;
  /** Seconds to advertise in Retry-After when the exchange sent none. */
  defaultRetryAfterSeconds?: number;
  /** The exchange's Retry-After header, when it sent one. */
  retryAfterHeader?: string;
  /** For createOrder: the client order id to reconcile with when the outcome is unknown. */
  clientOrderId?: string;
}

/**
 * A createOrder whose outcome is UNKNOWN: the request may have reached the exchange (timeout, dropped connection,
 * 5xx). The caller must not retry blindly; it reconciles with `fetchOrderByClientId(clientOrderId)`.
 */
export class OrderOutcomeUnknownError extends HttpProblem {
  readonly clientOrderId: string;
  readonly outcome = 'unknown' as const;

  constructor(problem: HttpProblem, clientOrderId: string) {
    super(problem.statusCode, problem.code, problem.title, problem.message, {
      extensions: { ...problem.extensions, outcome: 'unknown', clientOrderId },
      headers: problem.headers,
      cause: problem.cause,
    });
    this.name = 'OrderOutcomeUnknownError';
    this.clientOrderId = clientOrderId;
  }
}

export function isOrderOutcomeUnknown(err: unknown): err is OrderOutcomeUnknownError {
  return err instanceof OrderOutcomeUnknownError;
}

const MAX_MESSAGE = 300;

/** Removes query strings of URLs, signature-like parameters and every given secret from a message. */
export function scrubMessage(message: string, secrets: Array<string | undefined> = []): string {
  let out = message
    // signed URLs: keep scheme+host+path, drop the query (timestamps, signatures, keys)
    .replace(/\b((?:https?|wss?):\/\/[^\s?"']+)\?[^\s"']*/gi, '$1?[redacted]')
    .replace(/((?:signature|sign|apikey|api_key|secret|passphrase|password|access-sign|access-key|ok-access-[a-z]+|x-mbx-apikey)["']?\s*[=:]\s*["']?)[^\s&"',}]+/gi, '$1[redacted]');
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out.length > MAX_MESSAGE ? `${out.slice(0, MAX_MESSAGE)}...` : out;
}

/**
 * Best-effort name of the exchange limit a rejection message is about: Binance filters (`Filter failure: NOTIONAL`,
 * `LOT_SIZE`, `PRICE_FILTER`), OKX codes (51020 minimum size, 51121 lot size), Bitget codes (45110 minimum value,
 * 45111 minimum quantity, 40808 precision).
 */
export function limitFromMessage(message: string): string | undefined {
  const m = message.toLowerCase();
  if (/notional|45110|minimum amount \d|order value|minimum order value/.test(m)) return 'cost.min';
  if (/51020|45111|minimum amount precision|minimum order quantity|minimum order amount|min(imum)? (order )?(size|quantity)/.test(m)) return 'amount.min';
  if (/lot_size|51121|lot size|step size|checkbdscale|quantity precision/.test(m)) return 'amount.precision';
  if (/price_filter|tick size|price precision/.test(m)) return 'price.precision';
  return undefined;
}

function parseRetryAfter(value: string | undefined, fallback: number): number {
  if (!value) return fallback;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const date = Date.parse(value);
  if (Number.isFinite(date)) return Math.max(1, Math.ceil((date - Date.now()) / 1000));
  return fallback;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.constructor.name : 'Error';
}

/**
 * Maps any error thrown by a ccxt call to an HttpProblem. HttpProblems pass through. For `createOrder`, errors whose
 * outcome is unknown come back as `OrderOutcomeUnknownError`.
 */
export function mapExchangeError(err: unknown, ctx: ErrorContext): HttpProblem {
  if (err instanceof HttpProblem) return err;
  const problem = toProblem(err, ctx);
  if (ctx.operation === 'createOrder' && ctx.clientOrderId !== undefined && outcomeOf(err) === 'unknown') {
    return new OrderOutcomeUnknownError(problem, ctx.clientOrderId);
  }
  return problem;
}

/**
 * `unknown` for failures after which the request may have been executed (timeouts, dropped connections, 5xx,
 * internal errors); `rejected` when the exchange definitely refused it (ExchangeError family, rate limits).
 */
export function outcomeOf(err: unknown): CallOutcome {
  if (err instanceof RateLimitExceeded || err instanceof DDoSProtection || err instanceof OnMaintenance) return 'rejected';
  if (err instanceof InvalidNonce) return 'rejected';
  if (err instanceof NetworkError) return 'unknown';
  // e.g. Binance -1001 "Internal error", or a response ccxt could not parse: the request may have been executed.
  if (err instanceof OperationFailed) return 'unknown';
  if (err instanceof BaseError) return 'rejected';
  // Not a ccxt error (a bug, an aborted fetch): we cannot tell what happened on the exchange.
  return 'unknown';
}

function toProblem(err: unknown, ctx: ErrorContext): HttpProblem {
  const raw = err instanceof Error ? err.message : String(err);
  const said = scrubMessage(raw, ctx.secrets);
  const who = `${ctx.exchange} ${ctx.operation}`;
  const detail = (what: string) => `${who}: ${what} (${errorName(err)}: ${said})`;
  const ext = { exchange: ctx.exchange, operation: ctx.operation, exchangeError: errorName(err) };
  const cause = undefined; // the raw error may hold signed URLs: never chain it

  if (err instanceof AuthenticationError) {
    return unprocessable(detail('the exchange rejected the API credentials or their permissions'), 'EXCHANGE_AUTH_FAILED', {
      extensions: ext,
      cause,
    });
  }
  if (err instanceof InsufficientFunds) {
    return unprocessable(detail('insufficient funds'), 'EXCHANGE_INSUFFICIENT_FUNDS', { extensions: ext });
  }
  if (err instanceof OrderNotFound) {
    return new HttpProblem(404, 'EXCHANGE_ORDER_NOT_FOUND', 'Not Found', detail('order not found'), { extensions: ext });
  }
  if (err instanceof DuplicateOrderId || (err instanceof ExchangeError && /duplicate/i.test(raw) && ctx.operation === 'createOrder')) {
    const problem = conflict(detail('the client order id is already used'), 'EXCHANGE_DUPLICATE_CLIENT_ORDER_ID');
    return withExtensions(problem, ext);
  }
  // Binance reports filter failures (e.g. `Filter failure: NOTIONAL`) as BadRequest.
  const limit = ctx.operation === 'createOrder' ? limitFromMessage(raw) : undefined;
  if (err instanceof InvalidOrder || (ctx.operation === 'createOrder' && (err instanceof BadRequest || (err instanceof ExchangeError && limit)))) {
    const what = limit ? `order rejected by the exchange limit ${limit}` : 'order rejected as invalid';
    return unprocessable(detail(what), 'EXCHANGE_INVALID_ORDER', { extensions: { ...ext, ...(limit ? { limit } : {}) } });
  }
  if (err instanceof BadSymbol) {
    return unprocessable(detail('unknown or unsupported symbol'), 'EXCHANGE_BAD_SYMBOL', { extensions: ext });
  }
  if (err instanceof NotSupported) {
    return unprocessable(detail('not supported by this exchange'), 'EXCHANGE_NOT_SUPPORTED', { extensions: ext });
  }
  if (err instanceof RateLimitExceeded || err instanceof DDoSProtection) {
    const retryAfter = parseRetryAfter(ctx.retryAfterHeader, ctx.defaultRetryAfterSeconds ?? 1);
    return withExtensions(serviceUnavailable(detail('rate limited by the exchange'), retryAfter, 'EXCHANGE_RATE_LIMITED'), ext);
  }
  if (err instanceof RequestTimeout) {
    return withExtensions(gatewayTimeout(detail('the exchange did not answer in time'), 'EXCHANGE_TIMEOUT'), ext);
  }
  if (err instanceof ExchangeNotAvailable) {
    const retryAfter = parseRetryAfter(ctx.retryAfterHeader, ctx.defaultRetryAfterSeconds ?? 5);
    const what = err instanceof OnMaintenance ? 'the exchange is under maintenance' : 'the exchange is unavailable';
    return withExtensions(serviceUnavailable(detail(what), retryAfter, 'EXCHANGE_UNAVAILABLE'), ext);
  }
  if (err instanceof NetworkError) {
    return withExtensions(badGateway(detail('network error talking to the exchange'), 'EXCHANGE_NETWORK_ERROR'), ext);
  }
  return withExtensions(badGateway(detail('the exchange returned an error'), 'EXCHANGE_ERROR'), ext);
}

function withExtensions(problem: HttpProblem, extensions: Record<string, unknown>): HttpProblem {
  return new HttpProblem(problem.statusCode, problem.code, problem.title, problem.message, {
    extensions: { ...problem.extensions, ...extensions },
    headers: problem.headers,
  });
}
