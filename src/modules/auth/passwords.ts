import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import { serviceUnavailable } from '../../errors.js';

export interface Argon2Params {
  /** KiB */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export interface HashLimits {
  /** argon2 operations running at once; 0 = auto (cores - 1, at least 1), so one core stays with the event loop. */
  concurrency?: number;
  /** Operations allowed to wait; beyond that a 503 with Retry-After (a login flood must not queue without bound). */
  queueMax?: number;
}

/** A counting semaphore with a bounded wait queue. */
function createGate(concurrency: number, queueMax: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return {
    async run<T>(fn: () => Promise<T>): Promise<T> {
      if (running >= concurrency) {
        if (waiting.length >= queueMax) throw serviceUnavailable('Too many password checks in progress; retry shortly', 1, 'AUTH_BUSY');
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else running++;
      try {
        return await fn();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else running--;
      }
    },
    get running() {
      return running;
    },
    get waiting() {
      return waiting.length;
    },
  };
}

/** Email as stored and compared: trimmed and lower-cased. */
export const normaliseEmail = (email: string) => email.trim().toLowerCase();

/**
 * argon2id hashing with the configured parameters. `dummyHash()` is a hash of a random secret with the same
 * parameters: login verifies against it when the email is unknown, so both paths cost one verification.
 */
export function createPasswordHasher(params: Argon2Params, limits: HashLimits = {}) {
  const options: argon2.HashOptions = { type: argon2.argon2id, memoryCost: params.memoryCost, timeCost: params.timeCost, parallelism: params.parallelism };
  const concurrency = limits.concurrency || Math.max(1, availableParallelism() - 1);
  const gate = createGate(concurrency, limits.queueMax ?? 64);
  let dummy: Promise<string> | undefined;
  return {
    concurrency,
    /** Operations running and waiting now (for diagnostics). */
    stats: () => ({ concurrency, running: gate.running, waiting: gate.waiting }),
    hash(password: string): Promise<string> {
      return gate.run(() => argon2.hash(password, options));
    },
    /** False for a wrong password and for an unreadable hash; throws only AUTH_BUSY (503) when the queue is full. */
    async verify(hash: string, password: string): Promise<boolean> {
      return gate.run(async () => {
        try {
          return await argon2.verify(hash, password);
        } catch {
          return false;
        }
      });
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
