/**
 * Fernet token codec (https://github.com/fernet/spec, version 0x80): the format the original Python backend used
 * (`cryptography.fernet.Fernet(key).encrypt(...)`) to store exchange credentials. We only *read* these tokens to
 * migrate them into the AES-256-GCM vault (see vault.ts); `encodeFernetToken` exists so tests can produce tokens
 * byte-for-byte as Python's library does.
 *
 * Key:   base64url(signing key 16 bytes ‖ encryption key 16 bytes), 44 characters with padding.
 * Token: base64url(0x80 ‖ timestamp u64 big-endian seconds ‖ IV 16 ‖ AES-128-CBC/PKCS7 ciphertext ‖ HMAC-SHA256 32),
 *        with `=` padding; the HMAC (signing key) covers everything before it.
 *
 * Errors never carry key material, plaintext or token bytes: only a short reason.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const VERSION = 0x80;
const HEADER_LEN = 1 + 8 + 16; // version + timestamp + IV
const HMAC_LEN = 32;
const BLOCK = 16;
/** Same as Python's `cryptography.fernet._MAX_CLOCK_SKEW`. */
export const FERNET_MAX_CLOCK_SKEW_SECONDS = 60;

export interface FernetKey {
  signingKey: Buffer;
  encryptionKey: Buffer;
}

export type FernetErrorReason =
  | 'bad-key'
  | 'bad-encoding'
  | 'bad-version'
  | 'too-short'
  | 'bad-signature'
  | 'bad-length'
  | 'bad-padding'
  | 'expired'
  | 'future';

export class FernetError extends Error {
  readonly reason: FernetErrorReason;
  constructor(reason: FernetErrorReason) {
    super(`invalid Fernet ${reason === 'bad-key' ? 'key' : 'token'} (${reason})`);
    this.name = 'FernetError';
    this.reason = reason;
  }
}

const URLSAFE_PADDED = /^[A-Za-z0-9_-]*={0,2}$/;

/** Strict urlsafe base64 with padding (what Python's `base64.urlsafe_b64encode` emits). */
function decodeUrlsafePadded(text: string): Buffer | null {
  if (text.length === 0 || text.length % 4 !== 0 || !URLSAFE_PADDED.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  // Reject non-canonical encodings (stray bits in the last character).
  return bytes.toString('base64url') === text.replace(/=+$/, '') ? bytes : null;
}

function toUrlsafePadded(bytes: Buffer): string {
  return bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** Is `text` shaped like a Fernet key (44 chars of padded urlsafe base64 decoding to 32 bytes)? */
export function isFernetKeyString(text: string): boolean {
  if (text.length !== 44) return false;
  const bytes = decodeUrlsafePadded(text);
  return bytes !== null && bytes.length === 32;
}

/** Split a Fernet key string into its two halves. Throws FernetError('bad-key') (no key material in the message). */
export function parseFernetKey(key: string | Buffer): FernetKey {
  const raw = typeof key === 'string' ? (key.length === 44 ? decodeUrlsafePadded(key) : null) : key;
  if (raw === null || raw.length !== 32) throw new FernetError('bad-key');
  return { signingKey: Buffer.from(raw.subarray(0, 16)), encryptionKey: Buffer.from(raw.subarray(16, 32)) };
}

/** A fresh key, as `Fernet.generate_key()` would return it. */
export function generateFernetKey(): string {
  return toUrlsafePadded(randomBytes(32));
}

export interface FernetEncodeOptions {
  /** Unix time in seconds for the token's timestamp (default: now). */
  now?: number;
  /** 16-byte IV (default: random). Only tests should pass one. */
  iv?: Buffer;
}

/** Produce a token exactly as Python's `Fernet(key).encrypt_at_time(now, data)` does. */
export function encodeFernetToken(key: string | FernetKey, plaintext: string | Buffer, opts: FernetEncodeOptions = {}): string {
  const k = typeof key === 'string' ? parseFernetKey(key) : key;
  const iv = opts.iv ?? randomBytes(16);
  if (iv.length !== 16) throw new RangeError('Fernet IV must be 16 bytes');
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(Math.floor(now)));
  const cipher = createCipheriv('aes-128-cbc', k.encryptionKey, iv); // PKCS7 padding is node's default
  const ciphertext = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
  const body = Buffer.concat([Buffer.from([VERSION]), ts, iv, ciphertext]);
  const mac = createHmac('sha256', k.signingKey).update(body).digest();
  return toUrlsafePadded(Buffer.concat([body, mac]));
}

export interface FernetDecodeOptions {
  /** When set, reject tokens older than this many seconds, and tokens from the future (clock skew > 60 s), like Python's `decrypt(token, ttl)`. */
  ttlSeconds?: number;
  /** Unix time in seconds used for the TTL check (default: now). */
  now?: number;
}

export interface DecodedFernetToken {
  plaintext: Buffer;
  /** Token creation time, Unix seconds. */
  timestamp: number;
}

/**
 * Verify and decrypt a token. Order follows Python's implementation: structure → (TTL) → HMAC → AES-CBC → PKCS7,
 * so nothing is decrypted before the signature is verified (no padding oracle).
 */
export function decodeFernetToken(key: string | FernetKey, token: string, opts: FernetDecodeOptions = {}): DecodedFernetToken {
  const k = typeof key === 'string' ? parseFernetKey(key) : key;
  const data = decodeUrlsafePadded(token);
  if (data === null) throw new FernetError('bad-encoding');
  if (data[0] !== VERSION) throw new FernetError('bad-version');
  if (data.length < HEADER_LEN + BLOCK + HMAC_LEN) throw new FernetError('too-short');
  const timestamp = Number(data.readBigUInt64BE(1));
  if (opts.ttlSeconds !== undefined) {
    const now = opts.now ?? Math.floor(Date.now() / 1000);
    if (timestamp + opts.ttlSeconds < now) throw new FernetError('expired');
    if (now + FERNET_MAX_CLOCK_SKEW_SECONDS < timestamp) throw new FernetError('future');
  }
  const body = data.subarray(0, data.length - HMAC_LEN);
  const mac = data.subarray(data.length - HMAC_LEN);
  const expected = createHmac('sha256', k.signingKey).update(body).digest();
  if (!timingSafeEqual(mac, expected)) throw new FernetError('bad-signature');
  const iv = data.subarray(9, HEADER_LEN);
  const ciphertext = body.subarray(HEADER_LEN);
  if (ciphertext.length % BLOCK !== 0) throw new FernetError('bad-length');
  const decipher = createDecipheriv('aes-128-cbc', k.encryptionKey, iv);
  let plaintext: Buffer;
  try {
    plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw new FernetError('bad-padding');
  }
  return { plaintext, timestamp };
}
