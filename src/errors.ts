/**
 * Domain errors. Services throw these; the root error handler (src/plugins/error-handler.ts) turns every one of
 * them into an RFC 9457 `application/problem+json` body. Nobody builds error replies by hand.
 */

export interface ProblemOptions {
  /** Extra members added to the problem body (e.g. `errors` for validation issues). Never put secrets here. */
  extensions?: Record<string, unknown>;
  /** Extra response headers, e.g. `{ 'retry-after': '5' }`. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class HttpProblem extends Error {
  readonly statusCode: number;
  /** Short machine-readable code, SCREAMING_SNAKE; becomes the problem `type` (`urn:problem:<code>`). */
  readonly code: string;
  readonly title: string;
  readonly extensions?: Record<string, unknown>;
  readonly headers?: Record<string, string>;

  constructor(statusCode: number, code: string, title: string, detail: string, opts: ProblemOptions = {}) {
    super(detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HttpProblem';
    this.statusCode = statusCode;
    this.code = code;
    this.title = title;
    this.extensions = opts.extensions;
    this.headers = opts.headers;
  }
}

export interface ValidationIssue {
  /** JSON path of the failing field, e.g. `/body/rules/0/when`. */
  path: string;
  message: string;
}

export const badRequest = (detail: string, code = 'BAD_REQUEST', opts?: ProblemOptions) =>
  new HttpProblem(400, code, 'Bad Request', detail, opts);

export const validationFailed = (detail: string, errors: ValidationIssue[], code = 'VALIDATION_FAILED') =>
  new HttpProblem(400, code, 'Validation Failed', detail, { extensions: { errors } });

export const unauthorized = (detail = 'Authentication required', code = 'UNAUTHORIZED') =>
  new HttpProblem(401, code, 'Unauthorized', detail, { headers: { 'www-authenticate': 'Bearer' } });

export const forbidden = (detail = 'Not allowed', code = 'FORBIDDEN') => new HttpProblem(403, code, 'Forbidden', detail);

export const notFound = (what: string, id?: string | number, code = 'NOT_FOUND') =>
  new HttpProblem(404, code, 'Not Found', id === undefined ? `${what} not found` : `${what} ${id} not found`);

export const conflict = (detail: string, code = 'CONFLICT') => new HttpProblem(409, code, 'Conflict', detail);

export const unprocessable = (detail: string, code = 'UNPROCESSABLE', opts?: ProblemOptions) =>
  new HttpProblem(422, code, 'Unprocessable Content', detail, opts);

export const locked = (detail: string, code = 'LOCKED') => new HttpProblem(423, code, 'Locked', detail);

export const tooManyRequests = (detail: string, retryAfterSeconds: number, code = 'RATE_LIMITED') =>
  new HttpProblem(429, code, 'Too Many Requests', detail, { headers: { 'retry-after': String(retryAfterSeconds) } });

export const badGateway = (detail: string, code = 'BAD_GATEWAY') => new HttpProblem(502, code, 'Bad Gateway', detail);

export const serviceUnavailable = (detail: string, retryAfterSeconds?: number, code = 'SERVICE_UNAVAILABLE') =>
  new HttpProblem(503, code, 'Service Unavailable', detail, {
    headers: retryAfterSeconds === undefined ? undefined : { 'retry-after': String(retryAfterSeconds) },
  });

export const gatewayTimeout = (detail: string, code = 'GATEWAY_TIMEOUT') =>
  new HttpProblem(504, code, 'Gateway Timeout', detail);
