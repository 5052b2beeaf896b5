import { z } from 'zod';

export const DatasetSource = z.enum(['upload', 'file', 'download']);
export const DatasetStatus = z
  .enum(['importing', 'ready', 'failed', 'available'])
  .describe('`available`: a file in DATASETS_DIR not ingested yet (it is on first use)');

export const QualityReport = z
  .object({
    rows: z.number().int().describe('Bars stored (after dropping duplicates)'),
    sourceRows: z.number().int().describe('Data lines read'),
    duplicates: z.number().int(),
    conflictingDuplicates: z.number().int(),
    outOfOrder: z.number().int(),
    gaps: z.object({
      count: z.number().int(),
      missingBars: z.number().int(),
      largestMs: z.number(),
      weekendOnly: z.number().int(),
      first: z.array(z.object({ from: z.number(), to: z.number() })).describe('First gaps: last bar before → first bar after (epoch ms)'),
    }),
    highLowViolations: z.number().int(),
    priceOutsideRange: z.number().int(),
    zeroVolume: z.number().int(),
    nonPositivePrice: z.number().int(),
    hasVolume: z.boolean(),
    firstLines: z.object({
      outOfOrder: z.number().int().optional(),
      priceOutsideRange: z.number().int().optional(),
      zeroVolume: z.number().int().optional(),
      nonPositivePrice: z.number().int().optional(),
    }),
  })
  .meta({ id: 'DatasetQuality' });

export const Dataset = z
  .object({
    id: z.string().describe('A uuid for imported datasets; `file:<name>` for read-only files in DATASETS_DIR'),
    name: z.string(),
    source: DatasetSource,
    status: DatasetStatus,
    error: z.string().nullable(),
    sha256: z.string().nullable().describe('Hash of the CSV bytes; equal content shares one stored file'),
    rows: z.number().int().nullable(),
    bytes: z.number().int().nullable().describe('CSV size in bytes'),
    from: z.iso.datetime().nullable().describe('First bar time'),
    to: z.iso.datetime().nullable().describe('Last bar time'),
    timeframe: z.string().nullable().describe('e.g. 5m, 1h, 1d, 1M'),
    timeframeMs: z.number().int().nullable(),
    quality: QualityReport.nullable(),
    warnings: z.array(z.string()),
    createdAt: z.iso.datetime().nullable(),
    file: z
      .object({ name: z.string(), bytes: z.number().int(), modifiedAt: z.iso.datetime() })
      .nullable()
      .describe('source = file: the CSV in DATASETS_DIR'),
  })
  .meta({ id: 'Dataset' });
export type Dataset = z.infer<typeof Dataset>;

export const DatasetList = z.object({
  items: z.array(Dataset),
  total: z.number().int(),
  limit: z.number().int(),
  offset: z.number().int(),
});
export type DatasetList = z.infer<typeof DatasetList>;

export const ListDatasetsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

export const UploadQuery = z.object({
  name: z.string().trim().min(1).max(200).optional().describe('Display name (default: the multipart file name, or "upload.csv")'),
});

export const UploadBody = z
  .any()
  .describe('The CSV: raw bytes with `content-type: text/csv`, or `multipart/form-data` with the CSV in field `file`');

export const DatasetRefParams = z.object({
  id: z
    .string()
    .min(1)
    .max(300)
    .describe('Dataset uuid, or `file:<name>` for a file in DATASETS_DIR'),
});

const TimeBound = z
  .union([z.iso.datetime({ offset: true }), z.string().regex(/^-?\d{1,16}$/)])
  .describe('ISO 8601 date-time or epoch milliseconds');

export const CandlesQuery = z.object({
  from: TimeBound.optional().describe('Inclusive lower bound (ISO 8601 or epoch ms)'),
  to: TimeBound.optional().describe('Inclusive upper bound (ISO 8601 or epoch ms)'),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

const DecimalString = z.string().regex(/^-?\d+(\.\d+)?$/).describe('Decimal string: the shortest decimal that reads back as the stored number (the CSV value)');

export const Candle = z.object({
  time: z.iso.datetime(),
  open: DecimalString,
  high: DecimalString,
  low: DecimalString,
  close: DecimalString,
  volume: DecimalString,
});

export const CandlesResponse = z.object({
  id: z.string(),
  timeframe: z.string().nullable(),
  items: z.array(Candle),
  next: z.iso.datetime().nullable().describe('Time of the next bar after this page (pass as `from`), null at the end'),
});
export type CandlesResponse = z.infer<typeof CandlesResponse>;
