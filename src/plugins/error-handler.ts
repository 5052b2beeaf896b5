import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from '@fastify/type-provider-zod';
import { HttpProblem, type ValidationIssue } from '../errors.js';

const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

const kebab = (code: string) => code.toLowerCase().replace(/_/g, '-');

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  423: 'Locked',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  extra: { title?: string; extensions?: Record<string, unknown>; headers?: Record<string, string> } = {},
) {
  if (extra.headers) reply.headers(extra.headers);
  return reply
    .code(status)
    .type(PROBLEM_CONTENT_TYPE)
    .send({
      type: `urn:problem:${kebab(code)}`,
      title: extra.title ?? TITLES[status] ?? 'Error',
      status,
      detail,
      instance: request.url.split('?')[0],
      requestId: String(request.id),
      code,
      ...extra.extensions,
    });
}

/** Fastify's own validation errors (non-zod routes) and zod's, as `{path, message}` with JSON-pointer paths. */
function validationIssues(err: FastifyError): ValidationIssue[] {
  const context = (err as FastifyError & { validationContext?: string }).validationContext ?? 'body';
  return (err.validation ?? []).map((v) => {
    const params = v.params as { issue?: { path?: PropertyKey[] }; missingProperty?: string } | undefined;
    let pointer = v.instancePath ?? '';
    if (params?.issue?.path) pointer = params.issue.path.map((p) => `/${String(p)}`).join('');
    if (params?.missingProperty) pointer += `/${params.missingProperty}`;
    return { path: `/${context}${pointer}`, message: v.message ?? 'is invalid' };
  });
}

/**
 * The one place errors become responses: RFC 9457 problem+json with the request id. 5xx never carry internals.
 * Registered at the root so every encapsulated scope inherits it.
 */
export default fp(
  async function errorHandler(app: FastifyInstance) {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      if (err instanceof HttpProblem) {
        if (err.statusCode >= 500) request.log.warn({ err, code: err.code }, 'upstream or availability problem');
        return sendProblem(request, reply, err.statusCode, err.code, err.message, {
          title: err.title,
          extensions: err.extensions,
          headers: err.headers,
        });
      }
      if (hasZodFastifySchemaValidationErrors(err) || err.validation) {
        const errors = validationIssues(err);
        return sendProblem(request, reply, 400, 'VALIDATION_FAILED', `Request ${errors.length === 1 ? 'field is' : 'fields are'} invalid: ${errors.map((e) => e.path).join(', ')}`, {
          title: 'Validation Failed',
          extensions: { errors },
        });
      }
      if (isResponseSerializationError(err)) {
        request.log.error({ issues: err.cause?.issues, url: request.url }, 'response did not match its schema');
        return sendProblem(request, reply, 500, 'INTERNAL', 'An unexpected error occurred. Quote the request id when reporting it.');
      }
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
      if (status >= 500) {
        request.log.error({ err }, 'unhandled error');
        return sendProblem(request, reply, status, status === 503 ? 'SERVICE_UNAVAILABLE' : 'INTERNAL', 'An unexpected error occurred. Quote the request id when reporting it.');
      }
      // Fastify's own 4xx (malformed JSON, body too large, unsupported media type, rate limit): their messages are safe.
      const code = err.code?.startsWith('FST_') || !err.code ? codeForStatus(status) : err.code;
      const headers = (err as FastifyError & { headers?: Record<string, string> }).headers;
      return sendProblem(request, reply, status, code, err.message, { headers });
    });
  },
  { name: 'error-handler' },
);

function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'BAD_REQUEST';
    case 404:
      return 'NOT_FOUND';
    case 413:
      return 'BODY_TOO_LARGE';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 429:
      return 'RATE_LIMITED';
    default:
      return `HTTP_${status}`;
  }
}
