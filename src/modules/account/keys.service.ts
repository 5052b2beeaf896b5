import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/client.js';
import { badRequest, notFound, unprocessable } from '../../errors.js';
import { audit, type AuditEntry } from '../audit/index.js';
import type { CredentialsReport, ExchangeId, MarketType } from '../exchanges/types.js';
import type { Vault } from './vault.js';
import { createKeysRepository, type ExchangeKeyRow } from './keys.repository.js';
import type { ExchangeKey, SaveKeysBody } from './keys.schemas.js';

/** Decrypted credentials: handed to a callback, never stored, logged or returned. */
export interface DecryptedCredentials {
  keyId: string;
  exchange: ExchangeId;
  sandbox: boolean;
  marketType: MarketType;
  apiKey: string;
  secret: string;
  passphrase?: string;
}

/** Proves a credential set with a signed call (the exchanges module provides it: ccxt against the real exchange). */
export type KeyVerifier = (credentials: Omit<DecryptedCredentials, 'keyId'>) => Promise<CredentialsReport>;

export type AuditCtx = Pick<AuditEntry, 'actorId' | 'ip' | 'requestId'>;

const FIELDS = ['apiKey', 'secret', 'passphrase'] as const;

export function toKeyView(row: ExchangeKeyRow): ExchangeKey {
  return {
    id: row.id,
    exchange: row.exchange,
    label: row.label,
    apiKeyLast4: row.apiKeyLast4,
    sandbox: row.sandbox,
    marketType: row.marketType,
    permissions: row.permissions as ExchangeKey['permissions'],
    verifiedAt: row.verifiedAt?.toISOString() ?? null,
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
  };
}

export function createKeysService(deps: { db: Db; vault: Vault; verify?: KeyVerifier; log: FastifyBaseLogger }) {
  const { db, vault, log } = deps;
  const repo = createKeysRepository(db);

  const decryptRow = (row: ExchangeKeyRow): DecryptedCredentials => {
    const ctx = (field: string) => ({ userId: row.userId, recordId: row.id, field });
    return {
      keyId: row.id,
      exchange: row.exchange,
      sandbox: row.sandbox,
      marketType: row.marketType,
      apiKey: vault.decrypt(row.apiKeyEnc, ctx('apiKey')),
      secret: vault.decrypt(row.secretEnc, ctx('secret')),
      passphrase: row.passphraseEnc ? vault.decrypt(row.passphraseEnc, ctx('passphrase')) : undefined,
    };
  };

  return {
    /**
     * Verifies the credentials with a signed call, refuses keys that can withdraw, then stores them encrypted (and the
     * audit row) in one transaction.
     */
    async save(userId: string, input: SaveKeysBody, who: AuditCtx): Promise<ExchangeKey> {
      const plain = { apiKey: input.apiKey, secret: input.secret, passphrase: input.passphrase };
      if (input.encoding === 'fernet') {
        for (const f of FIELDS) {
          const token = plain[f];
          if (token === undefined) continue;
          try {
            plain[f] = vault.importFernetToken(token, { userId, recordId: 'import', field: f });
          } catch {
            throw badRequest(`${f} is not a Fernet token made with a key in ENCRYPTION_KEY`, 'INVALID_FERNET_TOKEN');
          }
        }
      }
      let report: CredentialsReport | undefined;
      if (deps.verify) {
        report = await deps.verify({ exchange: input.exchange, sandbox: input.sandbox, marketType: input.marketType, ...plain });
        if (report.canWithdraw === true) {
          throw unprocessable(
            `These ${input.exchange} API keys can withdraw funds. Create keys with withdrawals disabled (trading only) and save those instead.`,
            'KEY_CAN_WITHDRAW',
          );
        }
      }
      const id = randomUUID();
      const enc = (field: string, value: string) => vault.encrypt(value, { userId, recordId: id, field });
      const row = await db.transaction(async (tx) => {
        const created = await repo.insert(
          {
            id,
            userId,
            exchange: input.exchange,
            label: input.label ?? `${input.exchange} ${plain.apiKey.slice(-4)}`,
            sandbox: input.sandbox,
            marketType: input.marketType,
            apiKeyLast4: plain.apiKey.slice(-4),
            apiKeyEnc: enc('apiKey', plain.apiKey),
            secretEnc: enc('secret', plain.secret),
            passphraseEnc: plain.passphrase ? enc('passphrase', plain.passphrase) : null,
            permissions: report
              ? { canTrade: report.canTrade, canWithdraw: report.canWithdraw, permissions: report.permissions }
              : {},
            verifiedAt: report ? new Date() : null,
          },
          tx,
        );
        await audit(tx, {
          ...who,
          action: 'account.key.saved',
          targetType: 'exchange_key',
          targetId: id,
          details: { exchange: input.exchange, sandbox: input.sandbox, imported: input.encoding === 'fernet' },
        });
        return created;
      });
      log.info({ keyId: id, exchange: input.exchange }, 'exchange key saved');
      return toKeyView(row);
    },

    async list(userId: string): Promise<ExchangeKey[]> {
      return (await repo.listByUser(userId)).map(toKeyView);
    },

    async get(userId: string, id: string): Promise<ExchangeKey> {
      const row = await repo.findOwned(userId, id);
      if (!row) throw notFound('Exchange key', id, 'KEY_NOT_FOUND');
      return toKeyView(row);
    },

    async remove(userId: string, id: string, who: AuditCtx): Promise<void> {
      await db.transaction(async (tx) => {
        const row = await repo.deleteOwned(userId, id, tx);
        if (!row) throw notFound('Exchange key', id, 'KEY_NOT_FOUND');
        await audit(tx, { ...who, action: 'account.key.deleted', targetType: 'exchange_key', targetId: id, details: { exchange: row.exchange } });
      });
    },

    /**
     * Runs `fn` with the decrypted credentials of one of the user's keys. The plaintext exists only for the duration
     * of the call; another user's key id answers 404.
     */
    async withCredentials<T>(userId: string, keyId: string, fn: (c: DecryptedCredentials) => Promise<T>): Promise<T> {
      const row = await repo.findOwned(userId, keyId);
      if (!row) throw notFound('Exchange key', keyId, 'KEY_NOT_FOUND');
      const result = await fn(decryptRow(row));
      await repo.touch(row.id).catch((err: Error) => log.warn({ err: err.message }, 'could not record key use'));
      return result;
    },

    /**
     * Boot check: one stored credential per key id must decrypt with the configured ring, so a wrong or incomplete
     * ENCRYPTION_KEY stops the service at start instead of failing every trade later. Returns the problems found.
     */
    async checkRing(): Promise<string[]> {
      const problems: string[] = [];
      const seen = new Set<string>();
      let after: string | null = null;
      for (;;) {
        const rows = await repo.page(after, 500);
        if (rows.length === 0) break;
        for (const row of rows) {
          const kid = row.secretEnc.split('.')[1] ?? '?';
          if (seen.has(kid)) continue;
          seen.add(kid);
          try {
            decryptRow(row);
          } catch (err) {
            problems.push((err as Error).message);
          }
        }
        after = rows[rows.length - 1].id;
      }
      return problems;
    },

    /**
     * Re-encrypts every credential that is not under the newest key. Row by row with compare-and-set, so it can run
     * while the service serves requests; returns counts.
     */
    async rotateAll(batchSize = 200): Promise<{ scanned: number; rotated: number }> {
      let scanned = 0;
      let rotated = 0;
      let after: string | null = null;
      for (;;) {
        const rows = await repo.page(after, batchSize);
        if (rows.length === 0) break;
        for (const row of rows) {
          scanned++;
          const stale = [row.apiKeyEnc, row.secretEnc, row.passphraseEnc].some((v) => v !== null && vault.needsRotation(v));
          if (!stale) continue;
          const ctx = (field: string) => ({ userId: row.userId, recordId: row.id, field });
          const ok = await repo.replaceCiphertexts(row, {
            apiKeyEnc: vault.rotate(row.apiKeyEnc, ctx('apiKey')),
            secretEnc: vault.rotate(row.secretEnc, ctx('secret')),
            passphraseEnc: row.passphraseEnc ? vault.rotate(row.passphraseEnc, ctx('passphrase')) : null,
          });
          if (ok) rotated++;
        }
        after = rows[rows.length - 1].id;
      }
      return { scanned, rotated };
    },
  };
}
export type KeysService = ReturnType<typeof createKeysService>;
