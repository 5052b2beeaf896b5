import { z } from 'zod';

export const ExchangeName = z.enum(['binance', 'bitget', 'okx']).describe('Exchange id');

export const SaveKeysBody = z
  .object({
    exchange: ExchangeName,
    apiKey: z.string().trim().min(4).max(512),
    secret: z.string().trim().min(4).max(1024),
    passphrase: z.string().min(1).max(256).optional().describe('Required for OKX and Bitget'),
    label: z.string().trim().min(1).max(64).optional(),
    sandbox: z.boolean().default(false).describe("Use the exchange's testnet/demo environment"),
    marketType: z.enum(['spot', 'swap']).default('spot').describe('Spot or USDT-margined perpetual swaps'),
    encoding: z
      .enum(['plain', 'fernet'])
      .default('plain')
      .describe('`fernet`: apiKey/secret/passphrase are tokens from the original backend, encrypted with a Fernet key in ENCRYPTION_KEY'),
  })
  .refine((b) => b.exchange === 'binance' || b.passphrase !== undefined, {
    path: ['passphrase'],
    message: 'passphrase is required for okx and bitget',
  });
export type SaveKeysBody = z.infer<typeof SaveKeysBody>;

/** The only view of a key that ever leaves the service: no secret, no ciphertext. */
export const ExchangeKey = z
  .object({
    id: z.uuid(),
    exchange: ExchangeName,
    label: z.string(),
    apiKeyLast4: z.string().describe('Last four characters of the API key'),
    sandbox: z.boolean(),
    marketType: z.enum(['spot', 'swap']),
    permissions: z.object({ canTrade: z.boolean().optional(), canWithdraw: z.boolean().optional(), permissions: z.array(z.string()).optional() }),
    verifiedAt: z.iso.datetime().nullable(),
    lastUsedAt: z.iso.datetime().nullable(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'ExchangeKey' });
export type ExchangeKey = z.infer<typeof ExchangeKey>;

export const KeyIdParams = z.object({ id: z.uuid() });
