import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema.js';

export type { paths } from './schema.js';

export interface ApiClientOptions {
  baseUrl: string;
  /** Access token, or a function returning the current one (so a refresh is picked up). */
  token?: string | (() => string | undefined);
  fetch?: typeof globalThis.fetch;
}

/** Typed client for this API, generated from its OpenAPI document (openapi-fetch over openapi-typescript types). */
export function createApiClient(opts: ApiClientOptions) {
  const client = createClient<paths>({ baseUrl: opts.baseUrl, fetch: opts.fetch });
  if (opts.token) {
    const auth: Middleware = {
      onRequest({ request }) {
        const token = typeof opts.token === 'function' ? opts.token() : opts.token;
        if (token) request.headers.set('authorization', `Bearer ${token}`);
        return request;
      },
    };
    client.use(auth);
  }
  return client;
}
export type ApiClient = ReturnType<typeof createApiClient>;
