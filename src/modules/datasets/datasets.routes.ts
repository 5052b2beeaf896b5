import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import multipart from '@fastify/multipart';
import { z } from 'zod';
import { HttpProblem, badRequest } from '../../errors.js';
import { problems } from '../../shared/problem.js';
import { auditContext } from '../audit/index.js';
import {
  CandlesQuery,
  CandlesResponse,
  Dataset,
  DatasetList,
  DatasetRefParams,
  ListDatasetsQuery,
  UploadBody,
  UploadQuery,
} from './datasets.schemas.js';
import type { UploadInput } from './datasets.service.js';

const security = [{ bearerAuth: [] }];
/** Largest rest of a refused upload read and discarded rather than closing the connection. */
const DRAIN_LIMIT = 64 * 1024 * 1024;

/** Aborts when the client goes away before the request body was read to the end. */
function clientGone(request: FastifyRequest): AbortSignal {
  const ac = new AbortController();
  request.raw.once('close', () => {
    if (!request.raw.complete) ac.abort(badRequest('The upload was interrupted', 'UPLOAD_ABORTED'));
  });
  return ac.signal;
}

// eslint-disable-next-line no-control-regex
const displayName = (s: string) => s.replace(/[\u0000-\u001f\u007f]/g, '').split(/[\\/]/).pop()!.trim().slice(0, 200);

/** The CSV stream of a raw `text/csv` body or of multipart field `file` (the first file part). */
async function readUpload(request: FastifyRequest, query: { name?: string }, maxBytes: number): Promise<Omit<UploadInput, 'signal'>> {
  if (request.isMultipart()) {
    const part = await request.file({ limits: { fileSize: maxBytes + 1, files: 1 } });
    if (!part || part.fieldname !== 'file') throw badRequest('The multipart form must carry the CSV in field "file"', 'UPLOAD_FILE_MISSING');
    const field = part.fields.name as { value?: unknown } | undefined;
    const fromField = typeof field?.value === 'string' ? displayName(field.value) : '';
    const name = query.name ?? (fromField || displayName(part.filename ?? '') || 'upload.csv');
    return { name, stream: part.file };
  }
  if (!(request.body instanceof Readable)) {
    throw new HttpProblem(415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type', 'Send the CSV as text/csv or as multipart/form-data field "file"');
  }
  const length = Number(request.headers['content-length']);
  return { name: query.name ?? 'upload.csv', stream: request.body, declaredBytes: Number.isFinite(length) ? length : undefined };
}

/**
 * OHLCV datasets: CSV uploads (streamed into the columnar store), read-only files from DATASETS_DIR (`file:<name>`),
 * listing, details, chart candles, delete.
 */
const datasetsRoutes: FastifyPluginAsyncZod = async (app) => {
  const { maxBytes } = app.config.datasets;
  app.addHook('onRequest', app.authenticate);

  // The CSV body is handed to the route as the raw stream: never buffered, read once by the ingest.
  app.addContentTypeParser('text/csv', (_request, payload, done) => done(null, payload));
  await app.register(multipart, { limits: { fileSize: maxBytes + 1, files: 1, fields: 5, parts: 10 } });
  // A refused upload whose body was not read to the end: Node discards the rest after the answer, which keeps the
  // answer reliable for the client; past DRAIN_LIMIT (or with no declared length) the connection is closed instead.
  app.addHook('onSend', async (request, reply) => {
    if (request.method !== 'POST' || reply.statusCode < 400 || request.raw.complete !== false) return;
    const declared = Number(request.headers['content-length']);
    if (!(declared <= DRAIN_LIMIT)) reply.header('connection', 'close');
  });

  app.post(
    '/datasets',
    {
      bodyLimit: maxBytes,
      schema: {
        tags: ['datasets'],
        summary: 'Import an OHLCV CSV (raw text/csv body or multipart field "file")',
        description:
          'The body is streamed into the columnar store (never held in memory). The header names the columns: a time column ' +
          '(timestamp, open_time, datetime, date, time, ts or an unnamed first column; epoch s/ms/µs/ns or ISO 8601), open, high, ' +
          'low, close and optional volume. Bad data answers 400 INVALID_CSV with `line` and `reason` and stores nothing; ' +
          'gaps, duplicates and out-of-order rows are warnings. Over DATASET_MAX_BYTES: 413 DATASET_TOO_LARGE. ' +
          'Progress is published as `dataset.progress` events on the user\'s realtime channel.',
        security,
        consumes: ['text/csv', 'multipart/form-data'],
        querystring: UploadQuery,
        body: UploadBody,
        response: { 201: Dataset, ...problems(400, 401, 409, 413, 415, 429) },
      },
    },
    async (request, reply) => {
      const upload = await readUpload(request, request.query, maxBytes);
      const dataset = await app.datasetsService.importUpload(request.user.sub, { ...upload, signal: clientGone(request) }, auditContext(request));
      return reply.code(201).header('location', `/datasets/${dataset.id}`).send(dataset);
    },
  );

  app.get(
    '/datasets',
    {
      schema: {
        tags: ['datasets'],
        summary: 'Your imported datasets (newest first), then the read-only files of DATASETS_DIR',
        security,
        querystring: ListDatasetsQuery,
        response: { 200: DatasetList, ...problems(400, 401, 429) },
      },
    },
    async (request) => app.datasetsService.list(request.user.sub, request.query),
  );

  app.get(
    '/datasets/:id',
    {
      schema: {
        tags: ['datasets'],
        summary: 'One dataset with its quality report (a file:<name> dataset is ingested on first use)',
        security,
        params: DatasetRefParams,
        response: { 200: Dataset, ...problems(400, 401, 404, 413, 429) },
      },
    },
    async (request) => app.datasetsService.get(request.user.sub, request.params.id, auditContext(request)),
  );

  app.get(
    '/datasets/:id/candles',
    {
      schema: {
        tags: ['datasets'],
        summary: 'Bars of a ready dataset for charts (prices and volume as decimal strings)',
        security,
        params: DatasetRefParams,
        querystring: CandlesQuery,
        response: { 200: CandlesResponse, ...problems(400, 401, 404, 409, 413, 429) },
      },
    },
    async (request) => {
      const { from, to, limit } = request.query;
      const ms = (v: string | undefined) => (v === undefined ? undefined : /^-?\d+$/.test(v) ? Number(v) : Date.parse(v));
      return app.datasetsService.candles(request.user.sub, request.params.id, { fromMs: ms(from), toMs: ms(to), limit });
    },
  );

  app.delete(
    '/datasets/:id',
    {
      schema: {
        tags: ['datasets'],
        summary: 'Delete one of your datasets (files in DATASETS_DIR are read-only: 409)',
        security,
        params: DatasetRefParams,
        response: { 204: z.undefined(), ...problems(400, 401, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      await app.datasetsService.remove(request.user.sub, request.params.id, auditContext(request));
      return reply.code(204).send();
    },
  );
};

export default datasetsRoutes;
