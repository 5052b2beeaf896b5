import { z } from 'zod';

/** RFC 9457 problem details, as every error of this API is sent (`application/problem+json`). */
export const Problem = z
  .looseObject({
    type: z.string().describe('URI reference naming the problem type, e.g. urn:problem:not-found'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().describe('The request path'),
    requestId: z.string().describe('Also sent as the x-request-id header; quote it when reporting a problem'),
    code: z.string().describe('Stable machine-readable code, e.g. NOT_FOUND'),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('Validation issues, one per failing field (JSON pointer paths)'),
  })
  .meta({ id: 'Problem' });
export type Problem = z.infer<typeof Problem>;

const descriptions: Record<number, string> = {
  400: 'Invalid request (problem+json; `errors` lists each failing field)',
  401: 'Missing, invalid or expired credentials',
  403: 'Authenticated but not allowed',
  404: 'Not found (or not yours)',
  409: 'Conflict with the current state',
  413: 'Body too large',
  415: 'Unsupported content type',
  422: 'Well-formed but refused (e.g. by an exchange)',
  423: 'Locked (kill switch engaged)',
  429: 'Rate limited; see Retry-After',
  500: 'Internal error (no details exposed)',
  502: 'An upstream service answered with an error',
  503: 'Temporarily unavailable; see Retry-After when present',
  504: 'An upstream service did not answer in time',
};

/** Response schema entries for the error statuses a route can return: `response: { 200: X, ...problems(400, 404) }`. */
export function problems<const S extends number>(...statuses: S[]): Record<S, typeof Problem> {
  const out = {} as Record<S, typeof Problem>;
  for (const s of statuses) out[s] = Problem.describe(descriptions[s] ?? 'Error') as typeof Problem;
  return out;
}
