import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import {
  decodeFernetToken,
  encodeFernetToken,
  FernetError,
  generateFernetKey,
  parseFernetKey,
} from '../../../src/modules/account/fernet.js';
import { createVault, generateKeyRingValue, parseKeyRing, type VaultContext } from '../../../src/modules/account/vault.js';

const KEY_A = Buffer.alloc(32, 0xa1).toString('base64'); // standard base64 with '=' padding
const KEY_B = randomBytes(32).toString('base64url'); // base64url without padding
const RING_A = `ka:${KEY_A}`;
const RING_BA = `kb:${KEY_B},ka:${KEY_A}`;
const CTX: VaultContext = { userId: 'user-1', recordId: 42, field: 'apiSecret' };
const SECRET = 'sk-live-3f9a0c1e7b2d4c6e8a0b2c4d6e8f0a1b';

/** Flip one bit of byte `index` inside the base64url segment `segment` of a stored value. */
function tamper(stored: string, segment: 2 | 3, index: number): string {
  const parts = stored.split('.');
  const bytes = Buffer.from(parts[segment], 'base64url');
  bytes[index < 0 ? bytes.length + index : index] ^= 0x01;
  parts[segment] = bytes.toString('base64url');
  return parts.join('.');
}

describe('vault: AES-256-GCM values', () => {
  test('round trip, including unicode and the empty string; documented format', () => {
    const vault = createVault(parseKeyRing(RING_A));
    for (const plaintext of [SECRET, 'pässwörd-秘密-🔑', '']) {
      const stored = vault.encrypt(plaintext, CTX);
      assert.match(stored, /^v1\.ka\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
      assert.ok(!stored.includes(plaintext) || plaintext === '');
      assert.equal(vault.decrypt(stored, CTX), plaintext);
    }
  });

  test('the stored format is decodable from its documentation alone (independent AES-GCM decrypt)', () => {
    const vault = createVault(RING_A);
    const stored = vault.encrypt(SECRET, CTX);
    const [version, kid, nonce, sealedText] = stored.split('.');
    const sealed = Buffer.from(sealedText, 'base64url');
    const d = createDecipheriv('aes-256-gcm', Buffer.from(KEY_A, 'base64'), Buffer.from(nonce, 'base64url'));
    d.setAAD(Buffer.from(JSON.stringify([version, kid, 'user-1', '42', 'apiSecret'])));
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const pt = Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]).toString('utf8');
    assert.equal(pt, SECRET);
  });

  test('a value copied to another user, record or field does not decrypt', () => {
    const vault = createVault(RING_A);
    const stored = vault.encrypt(SECRET, CTX);
    const others: VaultContext[] = [
      { ...CTX, userId: 'user-2' },
      { ...CTX, recordId: 43 },
      { ...CTX, field: 'apiKey' },
    ];
    for (const ctx of others) {
      assert.throws(
        () => vault.decrypt(stored, ctx),
        (err: Error) => err.message === 'credential could not be decrypted (key id ka)' && !err.message.includes(SECRET),
      );
    }
    // Number vs numeric string is the same identity.
    assert.equal(vault.decrypt(stored, { ...CTX, recordId: '42' }), SECRET);
  });

  test('tampered ciphertext, tag or nonce fails without leaking anything', () => {
    const vault = createVault(RING_A);
    const stored = vault.encrypt(SECRET, CTX);
    const variants = [
      tamper(stored, 3, 0), // first ciphertext byte
      tamper(stored, 3, -1), // last tag byte
      tamper(stored, 3, -16), // first tag byte
      tamper(stored, 2, 5), // nonce
    ];
    for (const bad of variants) {
      assert.notEqual(bad, stored);
      assert.throws(
        () => vault.decrypt(bad, CTX),
        (err: Error) => {
          assert.equal(err.message, 'credential could not be decrypted (key id ka)');
          assert.ok(!err.message.includes(bad.split('.')[3]));
          return true;
        },
      );
    }
    // Truncated tag / wrong nonce length / garbage → malformed, still no material in the message.
    const parts = stored.split('.');
    for (const bad of [
      `${parts[0]}.${parts[1]}.${parts[2]}.${Buffer.alloc(8).toString('base64url')}`,
      `${parts[0]}.${parts[1]}.${Buffer.alloc(8).toString('base64url')}.${parts[3]}`,
      `v2.${parts[1]}.${parts[2]}.${parts[3]}`,
      'not-a-vault-value',
      `${stored}.extra`,
    ]) {
      assert.throws(() => vault.decrypt(bad, CTX), { message: 'credential could not be decrypted (malformed stored value)' });
    }
  });

  test('relabelling a value with another kid of the ring fails', () => {
    const vault = createVault(RING_BA);
    const stored = vault.encrypt(SECRET, CTX);
    const relabelled = stored.replace(/^v1\.kb\./, 'v1.ka.');
    assert.throws(() => vault.decrypt(relabelled, CTX), { message: 'credential could not be decrypted (key id ka)' });
  });

  test('every encryption uses a fresh nonce', () => {
    const vault = createVault(RING_A);
    const nonces = new Set<string>();
    const values = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const stored = vault.encrypt(SECRET, CTX);
      nonces.add(stored.split('.')[2]);
      values.add(stored);
    }
    assert.equal(nonces.size, 2000);
    assert.equal(values.size, 2000);
  });
});

describe('vault: key ring and rotation', () => {
  test('a multi-key ring decrypts old values and encrypts with the newest key', () => {
    const old = createVault(RING_A).encrypt(SECRET, CTX);
    const vault = createVault(parseKeyRing(RING_BA));
    assert.equal(vault.currentKid, 'kb');
    assert.equal(vault.decrypt(old, CTX), SECRET);
    const fresh = vault.encrypt(SECRET, CTX);
    assert.ok(fresh.startsWith('v1.kb.'));
    assert.equal(vault.needsRotation(old), true);
    assert.equal(vault.needsRotation(fresh), false);
  });

  test('rotate() re-encrypts with the newest key; the old key can then be dropped', () => {
    const old = createVault(RING_A).encrypt(SECRET, CTX);
    const vault = createVault(RING_BA);
    const rotated = vault.rotate(old, CTX);
    assert.ok(rotated.startsWith('v1.kb.'));
    assert.equal(vault.needsRotation(rotated), false);
    assert.equal(vault.rotate(rotated, CTX), rotated, 'already current: unchanged');
    // Rotation keeps the binding to the row: another context cannot rotate (nor read) it.
    assert.throws(() => vault.rotate(old, { ...CTX, userId: 'user-2' }), { message: 'credential could not be decrypted (key id ka)' });

    const newOnly = createVault(`kb:${KEY_B}`);
    assert.equal(newOnly.decrypt(rotated, CTX), SECRET);
    assert.throws(
      () => newOnly.decrypt(old, CTX),
      (err: Error) => {
        assert.equal(err.message, 'credential could not be decrypted: key id ka is not in ENCRYPTION_KEY');
        assert.ok(!err.message.includes(KEY_A) && !err.message.includes(KEY_B));
        return true;
      },
    );
    assert.throws(() => vault.needsRotation('garbage'), { message: /malformed stored value/ });
  });

  test('generateKeyRingValue() yields a parseable, unique entry', () => {
    const a = generateKeyRingValue();
    const b = generateKeyRingValue();
    assert.notEqual(a, b);
    const ring = parseKeyRing(`${a},${b}`);
    assert.equal(ring.kids.length, 2);
    assert.equal(ring.currentKid, a.split(':')[0]);
    assert.equal(Buffer.from(a.split(':')[1], 'base64').length, 32);
    const vault = createVault(ring);
    assert.equal(vault.decrypt(vault.encrypt(SECRET, CTX), CTX), SECRET);
  });

  test('the parsed ring never shows key material in JSON or inspect output', () => {
    const fk = generateFernetKey();
    const ring = parseKeyRing(`${RING_BA},${fk}`);
    const shown = JSON.stringify(ring) + inspect(ring) + String(ring);
    for (const material of [KEY_A, KEY_B, fk]) assert.ok(!shown.includes(material));
    assert.deepEqual(JSON.parse(JSON.stringify(ring)).kids.slice(0, 2), ['kb', 'ka']);
  });

  describe('bad ENCRYPTION_KEY values give clear messages without key material', () => {
    const short = randomBytes(16).toString('base64');
    const long = randomBytes(48).toString('base64');
    const notB64 = '!!!!' + randomBytes(30).toString('hex');
    const cases: Array<{ name: string; value: string; expect: RegExp; material: string[] }> = [
      { name: 'empty', value: '', expect: /ENCRYPTION_KEY is empty/, material: [] },
      { name: 'blank', value: '   ', expect: /ENCRYPTION_KEY is empty/, material: [] },
      { name: 'too short key', value: `k1:${short}`, expect: /entry #1 of 1 \(key id "k1"\): key must decode to exactly 32 bytes, got 16/, material: [short] },
      { name: 'too long key', value: `k1:${long}`, expect: /exactly 32 bytes, got 48/, material: [long] },
      { name: 'bad base64', value: `k1:${notB64}`, expect: /key id "k1"\): key is not valid base64\/base64url/, material: [notB64] },
      { name: 'missing key', value: 'k1:', expect: /key is missing/, material: [] },
      { name: 'bad kid', value: `bad kid!:${KEY_A}`, expect: /entry #1 of 1: key id must be 1-32 characters/, material: [KEY_A, 'bad kid!'] },
      { name: 'kid too long', value: `${'k'.repeat(33)}:${KEY_A}`, expect: /key id must be 1-32 characters .*\(got 33 characters\)/, material: [KEY_A] },
      { name: 'duplicate kid', value: `k1:${KEY_A},k1:${KEY_B}`, expect: /entry #2 of 2: duplicate key id "k1" \(also entry #1\)/, material: [KEY_A, KEY_B] },
      { name: 'same key twice', value: `k1:${KEY_A},k2:${KEY_A}`, expect: /entry #2 of 2 \(key id "k2"\): same key as entry #1/, material: [KEY_A] },
      { name: 'stray comma', value: `k1:${KEY_A},`, expect: /entry #2 of 2 is empty/, material: [KEY_A] },
      { name: 'bare key that is not Fernet', value: KEY_B, expect: /no "<kid>:" prefix and is not a Fernet key \(a Fernet key is 44 characters, this entry has 43\)/, material: [KEY_B] },
      { name: 'bare 44 chars that are not Fernet', value: '+' + KEY_A.slice(1), expect: /not a valid Fernet key/, material: [KEY_A.slice(1)] },
    ];
    for (const c of cases) {
      test(c.name, () => {
        assert.throws(
          () => parseKeyRing(c.value),
          (err: Error) => {
            assert.match(err.message, c.expect);
            for (const m of c.material) assert.ok(!err.message.includes(m), `message leaks material: ${err.message}`);
            return true;
          },
        );
      });
    }
  });
});

describe('fernet codec against the fernet/spec vectors', () => {
  // From github.com/fernet/spec generate.json / verify.json (version 0x80).
  const SPEC = {
    token: 'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==',
    generateNow: '1985-10-26T01:20:00-07:00',
    verifyNow: '1985-10-26T01:20:01-07:00',
    iv: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    src: 'hello',
    secret: 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=',
  };
  const secs = (iso: string) => Date.parse(iso) / 1000;

  test('generate.json: same token byte for byte', () => {
    const token = encodeFernetToken(SPEC.secret, SPEC.src, { iv: Buffer.from(SPEC.iv), now: secs(SPEC.generateNow) });
    assert.equal(token, SPEC.token);
  });

  test('verify.json: decodes with ttl 60', () => {
    const out = decodeFernetToken(SPEC.secret, SPEC.token, { ttlSeconds: 60, now: secs(SPEC.verifyNow) });
    assert.equal(out.plaintext.toString('utf8'), SPEC.src);
    assert.equal(out.timestamp, secs(SPEC.generateNow));
  });

  test('invalid.json: every invalid token is rejected', () => {
    const now = secs('1985-10-26T01:20:01-07:00');
    const cases: Array<[string, string, number, string]> = [
      ['incorrect mac', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==', now, 'bad-signature'],
      ['too short', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==', now, 'too-short'],
      ['invalid base64', '%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==', now, 'bad-encoding'],
      ['payload size not multiple of block size', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_v7mrfyudzUm', now, 'too-short'], // 72 bytes: below the 73-byte minimum
      ['payload padding error', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==', now, 'bad-padding'],
      ['far-future TS', 'gAAAAAAdwStRAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAnja1xKYyhd-Y6mSkTOyTGJmw2Xc2a6kBd-iX9b_qXQcw==', now, 'future'],
      ['expired TTL', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==', secs('1985-10-26T01:21:31-07:00'), 'expired'],
      ['incorrect IV', 'gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==', now, 'bad-padding'],
      ['trailing characters after padding', SPEC.token + 'trailingdata', now, 'bad-encoding'],
      ['invalid characters', '*gAAAAAAdwJ6wAAECAwQFBgcI!CQoLDA0ODy021?cpGVWKZ_eEwC@GM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==', now, 'bad-encoding'],
      ['non-urlsafe characters', 'gAAAAAAdwJ6wAAEC/AwQFBgcICQoLDA0ODy+021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==', now, 'bad-encoding'],
    ];
    for (const [desc, token, at, reason] of cases) {
      assert.throws(
        () => decodeFernetToken(SPEC.secret, token, { ttlSeconds: 60, now: at }),
        (err: unknown) => err instanceof FernetError && err.reason === reason,
        desc,
      );
    }
  });

  test('round trip of a multi-block payload with a random key; key halves split as the spec says', () => {
    const key = generateFernetKey();
    const k = parseFernetKey(key);
    assert.deepEqual(Buffer.concat([k.signingKey, k.encryptionKey]), Buffer.from(key, 'base64url'));
    const msg = 'x'.repeat(100) + '€';
    assert.equal(decodeFernetToken(key, encodeFernetToken(key, msg)).plaintext.toString('utf8'), msg);
    assert.throws(() => decodeFernetToken(generateFernetKey(), encodeFernetToken(key, msg)), { message: 'invalid Fernet token (bad-signature)' });
    // Correctly signed but the ciphertext is not a whole number of AES blocks.
    const raw = Buffer.from(encodeFernetToken(key, msg), 'base64url');
    const body = Buffer.concat([raw.subarray(0, raw.length - 32 - 16), raw.subarray(raw.length - 32 - 15, raw.length - 32)]);
    const forged = Buffer.concat([body, createHmac('sha256', k.signingKey).update(body).digest()]).toString('base64');
    const forgedToken = forged.replace(/\+/g, '-').replace(/\//g, '_');
    assert.throws(() => decodeFernetToken(key, forgedToken), (err: unknown) => err instanceof FernetError && err.reason === 'bad-length');
  });
});

describe('vault: Fernet ring entries', () => {
  const SPEC_SECRET = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
  const SPEC_TOKEN = 'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==';

  test('importFernetToken reads Python-made tokens with any Fernet key of the ring; caller re-encrypts', () => {
    const legacyKey = generateFernetKey();
    const token = encodeFernetToken(legacyKey, SECRET); // as Python's Fernet(legacyKey).encrypt(SECRET) would
    const vault = createVault(parseKeyRing(`${RING_A},${SPEC_SECRET},${legacyKey}`));
    const plaintext = vault.importFernetToken(token, CTX);
    assert.equal(plaintext, SECRET);
    const stored = vault.encrypt(plaintext, CTX);
    assert.ok(stored.startsWith('v1.ka.'));
    assert.equal(vault.decrypt(stored, CTX), SECRET);
    // The external spec token, decrypted through the vault without a TTL (stored credentials never expire).
    assert.equal(vault.importFernetToken(SPEC_TOKEN), 'hello');
  });

  test('importFernetToken failures name only key ids', () => {
    const legacyKey = generateFernetKey();
    const token = encodeFernetToken(generateFernetKey(), SECRET);
    const vault = createVault(`${RING_A},${legacyKey}`);
    const kid = parseKeyRing(legacyKey).currentKid;
    assert.throws(
      () => vault.importFernetToken(token, CTX),
      (err: Error) => {
        assert.equal(err.message, `legacy Fernet credential for field apiSecret could not be decrypted (bad-signature; tried key ids ${kid})`);
        assert.ok(!err.message.includes(legacyKey) && !err.message.includes(token) && !err.message.includes(SECRET));
        return true;
      },
    );
    assert.throws(() => createVault(RING_A).importFernetToken(SPEC_TOKEN), { message: /ENCRYPTION_KEY holds no Fernet key/ });
  });

  test('a Fernet key as the current entry encrypts with AES-256-GCM under an HKDF-derived key', () => {
    const ring = parseKeyRing(`${SPEC_SECRET},${RING_A}`);
    assert.match(ring.currentKid, /^f-[0-9a-f]{8}$/);
    const vault = createVault(ring);
    const stored = vault.encrypt(SECRET, CTX);
    const [version, kid, nonce, sealedText] = stored.split('.');
    assert.equal(kid, ring.currentKid);
    assert.equal(vault.decrypt(stored, CTX), SECRET);

    // Independent check of the documented derivation: HKDF-SHA256(fernet key bytes, "auto-trader/vault", "v1 aes-256-gcm").
    const aesKey = Buffer.from(hkdfSync('sha256', Buffer.from(SPEC_SECRET, 'base64url'), 'auto-trader/vault', 'v1 aes-256-gcm', 32));
    const sealed = Buffer.from(sealedText, 'base64url');
    const d = createDecipheriv('aes-256-gcm', aesKey, Buffer.from(nonce, 'base64url'));
    d.setAAD(Buffer.from(JSON.stringify([version, kid, 'user-1', '42', 'apiSecret'])));
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    assert.equal(Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]).toString('utf8'), SECRET);

    // Later rotation to a kid:key entry works like any other.
    const next = createVault(`kb:${KEY_B},${SPEC_SECRET}`);
    assert.equal(next.needsRotation(stored), true);
    assert.ok(next.rotate(stored, CTX).startsWith('v1.kb.'));
  });
});
