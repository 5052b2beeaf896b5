import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { problems } from '../../shared/problem.js';
import { TIMEFRAMES } from './market.schemas.js';

const security = [{ bearerAuth: [] }];

export const DownloadBody = z.object({
  exchange: z.enum(['binance', 'bitget', 'okx']),
  symbol: z.string().trim().min(3).max(40).describe('Unified symbol: BTC/USDT (spot) or BTC/USDT:USDT (swap)'),
  timeframe: z.enum(TIMEFRAMES),
  since: z.iso.datetime().describe('First candle (ISO 8601)'),
  until: z.iso.datetime().optional().describe('End of the range (exclusive); default now'),
  name: z.string().trim().min(1).max(200).optional().describe('Dataset name (default: exchange, symbol, timeframe, start date)'),
});

export const DownloadView = z
  .object({
    id: z.uuid(),
    exchange: z.enum(['binance', 'bitget', 'okx']),
    symbol: z.string(),
    timeframe: z.string(),
    name: z.string(),
    since: z.iso.datetime(),
    until: z.iso.datetime(),
    next: z.iso.datetime().describe('Resume point: candles before it are downloaded'),
    candles: z.number().int().describe('Candles downloaded so far'),
    status: z.enum(['pending', 'running', 'importing', 'done', 'failed']),
    datasetId: z.uuid().nullable().describe('The dataset, once done'),
    error: z.string().nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'DatasetDownload' });

/** Exchange history into datasets (a background job per request). */
const downloadRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.authenticate);

  app.post(
    '/datasets/download',
    {
      schema: {
        tags: ['datasets'],
        summary: 'Download OHLCV history from an exchange into a dataset (background job)',
        description: 'Answers 202 with the job at once; poll GET /datasets/download/{id} (or listen for `dataset.download` events) until `done` (then `datasetId` is set) or `failed`.',
        security,
        body: DownloadBody,
        response: { 202: DownloadView, ...problems(400, 401, 422, 429, 502, 503, 504) },
      },
    },
    async (request, reply) => {
      const job = await app.downloadService.start(request.user.sub, request.body);
      return reply.code(202).header('location', `/datasets/download/${job.id}`).send(job);
    },
  );

  app.get(
    '/datasets/download/:id',
    {
      schema: {
        tags: ['datasets'],
        summary: 'A download job: status and progress',
        security,
        params: z.object({ id: z.uuid() }),
        response: { 200: DownloadView, ...problems(400, 401, 404, 429) },
      },
    },
    async (request) => app.downloadService.get(request.user.sub, request.params.id),
  );
};

export default downloadRoutes;
