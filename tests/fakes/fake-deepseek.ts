/**
 * Loopback fake of the DeepSeek API (OpenAI-compatible wire format), for tests that point the real `openai` client
 * at it. Speaks:
 *   POST /chat/completions  (non-streaming)  → chat.completion object with id, model, choices[0].message.content,
 *                                              finish_reason and DeepSeek's usage fields
 *   GET  /models                             → { object: 'list', data: [{ id, object: 'model', owned_by }] }
 * Every request needs `Authorization: Bearer <apiKey>`; a wrong key gets DeepSeek's real 401 body.
 * As the real API does, `response_format: {type: 'json_object'}` without the word "json" in the messages is a 400.
 *
 * Each chat completion consumes the next scripted answer (see `script()`); with nothing scripted the fake answers
 * 500 with a message saying so, so a test that under-scripts fails loudly.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ScriptedAnswer =
  /** Assistant message content, as is (a JSON string for a valid answer, anything else for an invalid one). */
  | string
  | { kind: 'content'; content: string; finishReason?: 'stop' | 'length' | 'content_filter' }
  /** Content that is not valid JSON (cut off mid-object, as a JSON-mode answer can be). */
  | { kind: 'invalid-json' }
  /** Empty content, which DeepSeek's JSON mode documents as possible. */
  | { kind: 'empty' }
  /** HTTP error with DeepSeek's error body for that status (or `body` when given). */
  | { kind: 'error'; status: number; retryAfter?: string; body?: unknown }
  /** Never answers; the socket stays open until the client gives up or the fake is closed. */
  | { kind: 'hang' };

export interface RecordedRequest {
  method: string;
  path: string;
  /** Whether the bearer token matched (the token itself is not recorded). */
  authorized: boolean;
  /** Parsed JSON body (chat completions) or undefined. */
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeDeepSeek {
  baseURL: string;
  apiKey: string;
  /** Append answers to the queue consumed by POST /chat/completions. */
  script(...answers: ScriptedAnswer[]): void;
  /** Answers still queued. */
  pending(): number;
  requests: RecordedRequest[];
  /** Only the chat completion requests, in order. */
  chatRequests(): RecordedRequest[];
  close(): Promise<void>;
}

export interface FakeDeepSeekOptions {
  apiKey?: string;
  models?: Array<{ id: string; owned_by: string }>;
}

/** DeepSeek's documented error codes and the bodies it sends (OpenAI error envelope). */
function errorBody(status: number, apiKey: string | undefined): unknown {
  const err = (message: string, type: string, code = 'invalid_request_error') => ({
    error: { message, type, param: null, code },
  });
  switch (status) {
    case 400:
      return err('Invalid request body format', 'invalid_request_error');
    case 401:
      // The real service masks all but the last 4 characters of the key it received.
      return err(`Authentication Fails, Your api key: ****${(apiKey ?? '').slice(-4)} is invalid`, 'authentication_error');
    case 402:
      return err('Insufficient Balance', 'unknown_error');
    case 422:
      return err('Invalid Parameters', 'invalid_request_error');
    case 429:
      return err('Rate Limit Reached', 'rate_limit_error', 'rate_limit_exceeded');
    case 500:
      return err('Server Error', 'server_error', 'internal_error');
    case 503:
      return err('Server Overloaded', 'server_error', 'overloaded');
    default:
      return err(`HTTP ${status}`, 'api_error', 'unknown');
  }
}

const BROKEN_JSON = '{"strategy": {"name": "RSI dip buyer", "rules": [{"when": "rsi(14) < 30", ';

const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

export async function startFakeDeepSeek(opts: FakeDeepSeekOptions = {}): Promise<FakeDeepSeek> {
  const apiKey = opts.apiKey ?? `sk-fake-${randomUUID().replace(/-/g, '')}`;
  const models = opts.models ?? [
    { id: 'deepseek-chat', owned_by: 'deepseek' },
    { id: 'deepseek-reasoner', owned_by: 'deepseek' },
  ];
  const queue: ScriptedAnswer[] = [];
  const requests: RecordedRequest[] = [];
  const hanging = new Set<ServerResponse>();

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'x-ds-trace-id': randomUUID().replace(/-/g, ''),
      ...headers,
    });
    res.end(text);
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.replace(/^\/v1(?=\/)/, '');
    const auth = req.headers.authorization;
    const bearer = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const authorized = bearer === apiKey;
    const { authorization: _omit, ...headers } = req.headers;
    let raw = '';
    try {
      raw = await readBody(req);
    } catch {
      return;
    }
    let body: any;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
    }
    requests.push({ method: req.method ?? '', path, authorized, body, headers });

    if (!authorized) return sendJson(res, 401, errorBody(401, bearer));

    if (req.method === 'GET' && path === '/models') {
      return sendJson(res, 200, { object: 'list', data: models.map((m) => ({ id: m.id, object: 'model', owned_by: m.owned_by })) });
    }
    if (req.method !== 'POST' || path !== '/chat/completions') {
      return sendJson(res, 404, { error: { message: 'Not Found', type: 'invalid_request_error', param: null, code: 'not_found' } });
    }
    if (body === undefined || typeof body.model !== 'string' || !Array.isArray(body.messages) || body.messages.length === 0) {
      return sendJson(res, 400, errorBody(400, undefined));
    }
    if (body.response_format?.type === 'json_object') {
      const text = body.messages.map((m: any) => (typeof m.content === 'string' ? m.content : '')).join('\n');
      if (!/json/i.test(text)) {
        return sendJson(res, 400, {
          error: {
            message: "Prompt must contain the word 'json' in some form to use 'response_format' of type 'json_object'.",
            type: 'invalid_request_error',
            param: null,
            code: 'invalid_request_error',
          },
        });
      }
    }

    const next = queue.shift();
    if (next === undefined) {
      return sendJson(res, 500, {
        error: { message: 'fake-deepseek: no scripted answer left', type: 'server_error', param: null, code: 'internal_error' },
      }, { 'x-should-retry': 'false' });
    }
    const answer: Exclude<ScriptedAnswer, string> = typeof next === 'string' ? { kind: 'content', content: next } : next;
    if (answer.kind === 'hang') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if (answer.kind === 'error') {
      return sendJson(res, answer.status, answer.body ?? errorBody(answer.status, bearer), answer.retryAfter === undefined ? {} : { 'retry-after': answer.retryAfter });
    }
    const content = answer.kind === 'content' ? answer.content : answer.kind === 'invalid-json' ? BROKEN_JSON : '';
    const finishReason = answer.kind === 'content' ? (answer.finishReason ?? 'stop') : 'stop';
    const promptTokens = tokens(body.messages.map((m: any) => String(m.content ?? '')).join(''));
    const completionTokens = content === '' ? 0 : tokens(content);
    return sendJson(res, 200, {
      id: randomUUID(),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: finishReason }],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        prompt_tokens_details: { cached_tokens: 0 },
        prompt_cache_hit_tokens: 0,
        prompt_cache_miss_tokens: promptTokens,
      },
      system_fingerprint: 'fp_fake_deepseek',
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}`,
    apiKey,
    script: (...answers) => void queue.push(...answers),
    pending: () => queue.length,
    requests,
    chatRequests: () => requests.filter((r) => r.path === '/chat/completions'),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        hanging.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
