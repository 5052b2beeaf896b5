/**
 * Encryption core of the exchange-key vault.
 *
 * ## Key ring (config var ENCRYPTION_KEY)
 * Comma-separated entries; the FIRST entry is the current key (encrypts new values), every entry can decrypt.
 * An entry is either
 *   - `<kid>:<key>` — kid matches [A-Za-z0-9_-]{1,32}; key is base64 or base64url (padding optional) of exactly 32
 *     random bytes, used directly as the AES-256-GCM key. `generateKeyRingValue()` makes one; or
 *   - a Fernet key (44-char padded urlsafe base64 of 32 bytes, the original Python backend's format). Its kid is
 *     derived: `f-` + the first 8 hex digits of SHA-256(the 32 decoded key bytes). Such an entry can
 *       (a) import legacy Fernet tokens (`importFernetToken`), and
 *       (b) act as a normal vault key: its AES-256-GCM key is HKDF-SHA256(ikm = the 32 Fernet key bytes,
 *           salt = "auto-trader/vault", info = "v1 aes-256-gcm", length 32). New values are always AES-GCM.
 * Rotation: prepend a new entry, deploy, run `rotate()` over all stored values (see `needsRotation`), then drop the
 * old entry.
 *
 * ## Stored value format (version 1)
 *   `v1.<kid>.<nonce>.<ciphertext‖tag>`
 * - `nonce`: 12 random bytes, base64url without padding (16 chars); a fresh one per encryption.
 * - `ciphertext‖tag`: AES-256-GCM ciphertext of the UTF-8 plaintext followed by the 16-byte tag, base64url, no padding.
 * - Associated data: UTF-8 of `JSON.stringify(["v1", kid, userId, recordId, field])`. It binds the value to its
 *   owner, row and column, so a ciphertext copied to another user/record/field (or relabelled with another kid)
 *   fails to decrypt.
 * The separator `.` is outside the kid and base64url alphabets, so parsing is unambiguous.
 *
 * Error messages name at most a key id; never plaintext, key material or ciphertext.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { decodeFernetToken, FernetError, parseFernetKey, type FernetKey } from './fernet.js';

const KID_RE = /^[A-Za-z0-9_-]{1,32}$/;
const B64_ANY_RE = /^[A-Za-z0-9+/_-]+={0,2}$/;
const FORMAT_VERSION = 'v1';
const NONCE_LEN = 12;
const TAG_LEN = 16;
const HKDF_SALT = 'auto-trader/vault';
const HKDF_INFO = 'v1 aes-256-gcm';

interface KeyEntry {
  kid: string;
  kind: 'raw' | 'fernet';
  /** 32-byte AES-256-GCM key. */
  aesKey: Buffer;
  /** Only for Fernet entries: the halves used to read legacy tokens. */
  fernet?: FernetKey;
}

/** Key material per ring, kept out of the object itself so nothing can serialize or print it. */
const ringEntries = new WeakMap<KeyRing, readonly KeyEntry[]>();

/** Parsed ENCRYPTION_KEY (build it with parseKeyRing). Shows only key ids in JSON/inspect output. */
export class KeyRing {
  /** Key ids, newest (current) first. */
  readonly kids: readonly string[];

  private constructor(entries: KeyEntry[]) {
    this.kids = Object.freeze(entries.map((e) => e.kid));
    ringEntries.set(this, Object.freeze([...entries]));
  }

  /** @internal */
  static fromEntries(entries: KeyEntry[]): KeyRing {
    if (entries.length === 0) throw new Error('key ring is empty');
    return new KeyRing(entries);
  }

  get currentKid(): string {
    return this.kids[0];
  }

  toJSON() {
    return { currentKid: this.currentKid, kids: [...this.kids] };
  }

  [inspect.custom]() {
    return `KeyRing { currentKid: ${JSON.stringify(this.currentKid)}, kids: ${JSON.stringify(this.kids)} }`;
  }
}

/** Decode base64/base64url (padding optional, canonical only); null when it is not valid. */
function decodeBase64Any(text: string): Buffer | null {
  if (!B64_ANY_RE.test(text)) return null;
  const unpadded = text.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return null;
  if (text.length !== unpadded.length && text.length % 4 !== 0) return null; // wrong amount of padding
  const normalized = unpadded.replace(/\+/g, '-').replace(/\//g, '_');
  const bytes = Buffer.from(normalized, 'base64url');
  return bytes.toString('base64url') === normalized ? bytes : null;
}

function fernetKid(raw: Buffer): string {
  return 'f-' + createHash('sha256').update(raw).digest('hex').slice(0, 8);
}

function deriveFromFernet(raw: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', raw, HKDF_SALT, HKDF_INFO, 32));
}

const FORMAT_HINT = 'expected comma-separated entries "<kid>:<base64 of 32 bytes>" or 44-character Fernet keys, newest first';

/**
 * Parse ENCRYPTION_KEY. Throws an Error whose message says what is wrong (entry number, kid when it is valid,
 * decoded length) without echoing any key material.
 */
export function parseKeyRing(value: string): KeyRing {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new Error(`ENCRYPTION_KEY is empty: ${FORMAT_HINT}`);
  }
  const parts = value.split(',').map((p) => p.trim());
  const entries: KeyEntry[] = [];
  const seenKids = new Map<string, number>();
  const seenKeys = new Map<string, number>();
  parts.forEach((part, i) => {
    const n = i + 1;
    const where = `ENCRYPTION_KEY entry #${n} of ${parts.length}`;
    if (part === '') throw new Error(`${where} is empty (stray comma?): ${FORMAT_HINT}`);
    let entry: KeyEntry;
    const colon = part.indexOf(':');
    if (colon >= 0) {
      const kid = part.slice(0, colon);
      const keyText = part.slice(colon + 1);
      if (!KID_RE.test(kid)) {
        // Do not echo the kid: a malformed entry might have key material where the kid should be.
        throw new Error(`${where}: key id must be 1-32 characters of A-Z, a-z, 0-9, "_" or "-" (got ${kid.length} characters)`);
      }
      if (keyText === '') throw new Error(`${where} (key id "${kid}"): key is missing after ":"`);
      const raw = decodeBase64Any(keyText);
      if (raw === null) throw new Error(`${where} (key id "${kid}"): key is not valid base64/base64url`);
      if (raw.length !== 32) {
        throw new Error(`${where} (key id "${kid}"): key must decode to exactly 32 bytes, got ${raw.length}`);
      }
      entry = { kid, kind: 'raw', aesKey: raw };
    } else {
      if (part.length !== 44) {
        throw new Error(
          `${where}: has no "<kid>:" prefix and is not a Fernet key (a Fernet key is 44 characters, this entry has ${part.length})`,
        );
      }
      let fernet: FernetKey;
      try {
        fernet = parseFernetKey(part);
      } catch (err) {
        if (err instanceof FernetError) {
          throw new Error(`${where}: has no "<kid>:" prefix and is not a valid Fernet key (urlsafe base64 of 32 bytes)`);
        }
        throw err;
      }
      const raw = Buffer.concat([fernet.signingKey, fernet.encryptionKey]);
      entry = { kid: fernetKid(raw), kind: 'fernet', aesKey: deriveFromFernet(raw), fernet };
    }
    const prevKid = seenKids.get(entry.kid);
    if (prevKid !== undefined) throw new Error(`${where}: duplicate key id "${entry.kid}" (also entry #${prevKid})`);
    const fingerprint = createHash('sha256').update(entry.aesKey).digest('hex');
    const prevKey = seenKeys.get(fingerprint);
    if (prevKey !== undefined) throw new Error(`${where} (key id "${entry.kid}"): same key as entry #${prevKey}`);
    seenKids.set(entry.kid, n);
    seenKeys.set(fingerprint, n);
    entries.push(entry);
  });
  return KeyRing.fromEntries(entries);
}

/** A fresh ring entry `<kid>:<base64 of 32 random bytes>` (dev mode, or the next key to prepend when rotating). */
export function generateKeyRingValue(now: Date = new Date()): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `k${day}-${randomBytes(3).toString('hex')}:${randomBytes(32).toString('base64')}`;
}

export interface VaultContext {
  userId: string | number;
  recordId: string | number;
  /** Column name, e.g. 'apiKey', 'apiSecret', 'passphrase'. */
  field: string;
}

export interface Vault {
  readonly currentKid: string;
  encrypt(plaintext: string, ctx: VaultContext): string;
  decrypt(stored: string, ctx: VaultContext): string;
  /** True when `stored` was encrypted with a key other than the current one. Throws on a malformed value. */
  needsRotation(stored: string): boolean;
  /** Re-encrypt with the current key (same context); returns `stored` unchanged when it already uses it. */
  rotate(stored: string, ctx: VaultContext): string;
  /**
   * Decrypt a legacy token made by Python's `Fernet(key).encrypt(...)` with any Fernet key in the ring and return
   * the plaintext; the caller re-encrypts it with `encrypt()` and stores the v1 value. No TTL is applied. `ctx` is
   * optional and only used to say which field failed.
   */
  importFernetToken(token: string, ctx?: VaultContext): string;
}

interface ParsedValue {
  kid: string;
  nonce: Buffer;
  sealed: Buffer;
}

const malformed = () => new Error('credential could not be decrypted (malformed stored value)');
const failed = (kid: string) => new Error(`credential could not be decrypted (key id ${kid})`);

function parseStored(stored: string): ParsedValue {
  if (typeof stored !== 'string') throw malformed();
  const parts = stored.split('.');
  if (parts.length !== 4 || parts[0] !== FORMAT_VERSION) throw malformed();
  const [, kid, nonceText, sealedText] = parts;
  if (!KID_RE.test(kid)) throw malformed();
  const b64url = /^[A-Za-z0-9_-]+$/;
  if (!b64url.test(nonceText) || !b64url.test(sealedText)) throw malformed();
  const nonce = Buffer.from(nonceText, 'base64url');
  const sealed = Buffer.from(sealedText, 'base64url');
  if (nonce.length !== NONCE_LEN || sealed.length < TAG_LEN) throw malformed();
  return { kid, nonce, sealed };
}

function aad(kid: string, ctx: VaultContext): Buffer {
  if (ctx === null || typeof ctx !== 'object') throw new TypeError('vault context {userId, recordId, field} is required');
  const { userId, recordId, field } = ctx;
  for (const [name, v] of [['userId', userId], ['recordId', recordId], ['field', field]] as const) {
    if ((typeof v !== 'string' && typeof v !== 'number') || String(v) === '') {
      throw new TypeError(`vault context ${name} must be a non-empty string or a number`);
    }
  }
  return Buffer.from(JSON.stringify([FORMAT_VERSION, kid, String(userId), String(recordId), String(field)]), 'utf8');
}

/** Build the vault over a parsed key ring (or the raw ENCRYPTION_KEY value). */
export function createVault(ringOrValue: KeyRing | string): Vault {
  const ring = typeof ringOrValue === 'string' ? parseKeyRing(ringOrValue) : ringOrValue;
  const entries = ringEntries.get(ring);
  if (entries === undefined) throw new TypeError('createVault needs a KeyRing from parseKeyRing()');
  const current = entries[0];
  const byKid = new Map(entries.map((e) => [e.kid, e]));
  const fernetEntries = entries.filter((e) => e.fernet !== undefined);

  function encrypt(plaintext: string, ctx: VaultContext): string {
    if (typeof plaintext !== 'string') throw new TypeError('vault plaintext must be a string');
    const nonce = randomBytes(NONCE_LEN);
    const cipher = createCipheriv('aes-256-gcm', current.aesKey, nonce, { authTagLength: TAG_LEN });
    cipher.setAAD(aad(current.kid, ctx));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const sealed = Buffer.concat([ct, cipher.getAuthTag()]);
    return `${FORMAT_VERSION}.${current.kid}.${nonce.toString('base64url')}.${sealed.toString('base64url')}`;
  }

  function decrypt(stored: string, ctx: VaultContext): string {
    const { kid, nonce, sealed } = parseStored(stored);
    const entry = byKid.get(kid);
    if (entry === undefined) {
      throw new Error(`credential could not be decrypted: key id ${kid} is not in ENCRYPTION_KEY`);
    }
    const additional = aad(kid, ctx);
    try {
      const decipher = createDecipheriv('aes-256-gcm', entry.aesKey, nonce, { authTagLength: TAG_LEN });
      decipher.setAAD(additional);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
      const pt = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_LEN)), decipher.final()]);
      return pt.toString('utf8');
    } catch {
      throw failed(kid);
    }
  }

  function needsRotation(stored: string): boolean {
    return parseStored(stored).kid !== current.kid;
  }

  function rotate(stored: string, ctx: VaultContext): string {
    if (!needsRotation(stored)) {
      decrypt(stored, ctx); // still prove it is readable in this context
      return stored;
    }
    return encrypt(decrypt(stored, ctx), ctx);
  }

  function importFernetToken(token: string, ctx?: VaultContext): string {
    const what = ctx ? ` for field ${String(ctx.field)}` : '';
    if (fernetEntries.length === 0) {
      throw new Error(`legacy Fernet credential${what} cannot be imported: ENCRYPTION_KEY holds no Fernet key`);
    }
    if (typeof token !== 'string') throw new Error(`legacy Fernet credential${what} could not be decrypted (not a string)`);
    let lastReason = 'bad-signature';
    for (const entry of fernetEntries) {
      try {
        return decodeFernetToken(entry.fernet!, token.trim()).plaintext.toString('utf8');
      } catch (err) {
        if (!(err instanceof FernetError)) throw err;
        lastReason = err.reason;
        // Structural problems do not depend on the key: no point trying the others.
        if (err.reason === 'bad-encoding' || err.reason === 'bad-version' || err.reason === 'too-short') break;
      }
    }
    throw new Error(
      `legacy Fernet credential${what} could not be decrypted (${lastReason}; tried key ids ${fernetEntries.map((e) => e.kid).join(', ')})`,
    );
  }

  return { currentKid: current.kid, encrypt, decrypt, needsRotation, rotate, importFernetToken };
}
