import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';

export interface Argon2Params {
  /** KiB */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** Email as stored and compared: trimmed and lower-cased. */
export const normaliseEmail = (email: string) => email.trim().toLowerCase();

/**
 * argon2id hashing with the configured parameters. `dummyHash()` is a hash of a random secret with the same
 * parameters: login verifies against it when the email is unknown, so both paths cost one verification.
 */
export function createPasswordHasher(params: Argon2Params) {
  const options: argon2.HashOptions = { type: argon2.argon2id, memoryCost: params.memoryCost, timeCost: params.timeCost, parallelism: params.parallelism };
  let dummy: Promise<string> | undefined;
  return {
    hash(password: string): Promise<string> {
      return argon2.hash(password, options);
    },
    /** False for a wrong password and for an unreadable hash (never throws). */
    async verify(hash: string, password: string): Promise<boolean> {
      try {
        return await argon2.verify(hash, password);
      } catch {
        return false;
      }
    },
    /** True when the hash was made with other parameters than the configured ones (rehash after a good login). */
    needsRehash(hash: string): boolean {
      try {
        return argon2.needsRehash(hash, { memoryCost: params.memoryCost, timeCost: params.timeCost, parallelism: params.parallelism });
      } catch {
        return true;
      }
    },
    dummyHash(): Promise<string> {
      dummy ??= argon2.hash(randomBytes(32).toString('base64url'), options);
      return dummy;
    },
  };
}
export type PasswordHasher = ReturnType<typeof createPasswordHasher>;
