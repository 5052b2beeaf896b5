import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { build, createUser, adminEnv, loginAdmin, injectAs } from '../../helper.js';
import { dumpAllTables } from '../../db.js';
import { startFakeExchange, type FakeExchange } from '../../fakes/fake-exchange/index.js';
import { exchangeKeys } from '../../../src/db/schema/exchange-keys.js';
import { encodeFernetToken, generateFernetKey } from '../../../src/modules/account/fernet.js';
import { ConfigError } from '../../../src/config.js';

const ring1 = `k1:${randomBytes(32).toString('base64')}`;
const ring2 = `k2:${randomBytes(32).toString('base64')},${ring1}`;

let binance: FakeExchange;
let okx: FakeExchange;
let withdrawing: FakeExchange;
before(async () => {
  binance = await startFakeExchange({ exchange: 'binance' });
  okx = await startFakeExchange({ exchange: 'okx' });
  withdrawing = await startFakeExchange({ exchange: 'binance', permissions: { withdraw: true } });
});
after(async () => {
  await Promise.all([binance.close(), okx.close(), withdrawing.close()]);
});

const env = (extra: Record<string, string> = {}) => ({
  ENCRYPTION_KEY: ring1,
  EXCHANGE_URLS: JSON.stringify({ binance: binance.url, okx: okx.url }),
  ...extra,
});

const binanceBody = () => ({ exchange: 'binance', apiKey: binance.credentials.apiKey, secret: binance.credentials.secret, label: 'main' });

describe('exchange-key vault', () => {
  test('save (verified by a signed call), list masked, get, delete; audit rows written', async (t) => {
    const app = await build(t, { env: env() });
    const user = await createUser(app);
    const saved = await injectAs(app, user.token, { method: 'POST', url: '/account/save_keys', payload: binanceBody() });
    assert.equal(saved.statusCode, 201, saved.body);
    const key = saved.json();
    assert.equal(key.exchange, 'binance');
    assert.equal(key.apiKeyLast4, binance.credentials.apiKey.slice(-4));
    assert.equal(key.permissions.canWithdraw, false);
    assert.ok(key.verifiedAt);
    assert.equal(saved.headers.location, `/account/keys/${key.id}`);
    assert.ok(binance.requests.some((r) => r.path.includes('apiRestrictions')), 'the exchange was asked for the key restrictions');

    const list = await injectAs(app, user.token, { url: '/account/keys' });
    assert.deepEqual(list.json().items.map((k: { id: string }) => k.id), [key.id]);
    const one = await injectAs(app, user.token, { url: `/account/keys/${key.id}` });
    assert.equal(one.json().label, 'main');

    const del = await injectAs(app, user.token, { method: 'DELETE', url: `/account/keys/${key.id}` });
    assert.equal(del.statusCode, 204);
    assert.equal((await injectAs(app, user.token, { url: `/account/keys/${key.id}` })).statusCode, 404);

    const dump = await dumpAllTables(app.database);
    assert.match(dump, /"action":"account\.key\.saved"/);
    assert.match(dump, /"action":"account\.key\.deleted"/);
  });

  test("user A cannot read, delete or use user B's key: 404", async (t) => {
    const app = await build(t, { env: env() });
    const a = await createUser(app);
    const b = await createUser(app);
    const key = (await injectAs(app, b.token, { method: 'POST', url: '/account/save_keys', payload: binanceBody() })).json();
    for (const req of [
      { url: `/account/keys/${key.id}` },
      { method: 'DELETE' as const, url: `/account/keys/${key.id}` },
    ]) {
      const res = await injectAs(app, a.token, req);
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().code, 'KEY_NOT_FOUND');
    }
    assert.deepEqual((await injectAs(app, a.token, { url: '/account/keys' })).json().items, []);
    await assert.rejects(app.keysService.withCredentials(a.id, key.id, async () => 'used'), /not found/);
    assert.equal(await app.keysService.withCredentials(b.id, key.id, async (c) => c.exchange), 'binance');
  });

  test('wrong secret: 422 from the exchange, nothing stored', async (t) => {
    const app = await build(t, { env: env() });
    const user = await createUser(app);
    const res = await injectAs(app, user.token, { method: 'POST', url: '/account/save_keys', payload: { ...binanceBody(), secret: 'not-the-right-secret' } });
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().code, 'EXCHANGE_AUTH_FAILED');
    assert.match(res.json().detail, /binance/);
    assert.equal((await app.database.db.select().from(exchangeKeys)).length, 0);
  });

  test('keys that can withdraw are refused with the reason', async (t) => {
    const app = await build(t, { env: env({ EXCHANGE_URLS: JSON.stringify({ binance: withdrawing.url }) }) });
    const user = await createUser(app);
    const res = await injectAs(app, user.token, { method: 'POST', url: '/account/save_keys', payload: binanceBody() });
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().code, 'KEY_CAN_WITHDRAW');
    assert.match(res.json().detail, /withdrawals disabled/);
    assert.equal((await app.database.db.select().from(exchangeKeys)).length, 0);
  });

  test('OKX needs a passphrase (400 naming the field); with it, the fake checks the passphrase and signature', async (t) => {
    const app = await build(t, { env: env() });
    const user = await createUser(app);
    const body = { exchange: 'okx', apiKey: okx.credentials.apiKey, secret: okx.credentials.secret };
    const missing = await injectAs(app, user.token, { method: 'POST', url: '/account/save_keys', payload: body });
    assert.equal(missing.statusCode, 400);
    assert.deepEqual(missing.json().errors.map((e: { path: string }) => e.path), ['/body/passphrase']);
    const ok = await injectAs(app, user.token, { method: 'POST', url: '/account/save_keys', payload: { ...body, passphrase: okx.credentials.passphrase } });
    assert.equal(ok.statusCode, 201, ok.body);
  });

  test('the secret never appears in responses, logs or the database', async (t) => {
    const app = await build(t, { env: env() });
    const user = await createUser(app);
    const responses: string[] = [];
    const saved = await injectAs(app, user.token, { method: 'POST', url: '/account/save_keys', payload: binanceBody() });
    responses.push(saved.body, JSON.stringify(saved.headers));
    const id = saved.json().id;
    for (const url of ['/account/keys', `/account/keys/${id}`]) {
      const r = await injectAs(app, user.token, { url });
      responses.push(r.body);
    }
    const bad = await injectAs(app, user.token, { method: 'POST', url: '/account/save_keys', payload: { ...binanceBody(), secret: `${binance.credentials.secret}-typo` } });
    responses.push(bad.body);
    await app.keysService.withCredentials(user.id, id, async (c) => {
      app.log.info({ credentials: c }, 'a careless log line with the decrypted credentials');
    });
    const dump = await dumpAllTables(app.database);
    const { secret, apiKey } = binance.credentials;
    for (const [where, text] of [['responses', responses.join('\n')], ['logs', app.rawLogs()], ['database', dump]] as const) {
      assert.ok(!text.includes(secret), `secret found in ${where}`);
      assert.ok(!text.includes(apiKey), `api key found in ${where}`);
    }
    assert.ok(dump.includes('v1.k1.'), 'the dump holds vault values');
  });

  test('a ciphertext copied to another row does not decrypt', async (t) => {
    const app = await build(t, { env: env() });
    const a = await createUser(app);
    const b = await createUser(app);
    const ka = (await injectAs(app, a.token, { method: 'POST', url: '/account/save_keys', payload: binanceBody() })).json();
    const kb = (await injectAs(app, b.token, { method: 'POST', url: '/account/save_keys', payload: binanceBody() })).json();
    const [rowA] = await app.database.db.select().from(exchangeKeys).where(eq(exchangeKeys.id, ka.id));
    await app.database.db.update(exchangeKeys).set({ secretEnc: rowA.secretEnc }).where(eq(exchangeKeys.id, kb.id));
    await assert.rejects(app.keysService.withCredentials(b.id, kb.id, async () => 'x'), /could not be decrypted/);
  });

  test('Fernet tokens from the original backend are imported and re-encrypted', async (t) => {
    const fernetKey = generateFernetKey();
    const app = await build(t, { env: env({ ENCRYPTION_KEY: `${ring1},${fernetKey}` }) });
    const user = await createUser(app);
    const res = await injectAs(app, user.token, {
      method: 'POST',
      url: '/account/save_keys',
      payload: {
        exchange: 'binance',
        apiKey: encodeFernetToken(fernetKey, binance.credentials.apiKey),
        secret: encodeFernetToken(fernetKey, binance.credentials.secret),
        encoding: 'fernet',
      },
    });
    assert.equal(res.statusCode, 201, res.body); // the fake verified a signature made with the decrypted secret
    assert.equal(res.json().apiKeyLast4, binance.credentials.apiKey.slice(-4));
    const [row] = await app.database.db.select().from(exchangeKeys);
    assert.match(row.secretEnc, /^v1\.k1\./);
    const bad = await injectAs(app, user.token, {
      method: 'POST',
      url: '/account/save_keys',
      payload: { exchange: 'binance', apiKey: encodeFernetToken(generateFernetKey(), 'x'), secret: 'nope', encoding: 'fernet' },
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 'INVALID_FERNET_TOKEN');
  });

  test('key rotation: a new key ring re-encrypts every row and every credential stays readable', async (t) => {
    const first = await build(t, { env: env() });
    const user = await createUser(first);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await injectAs(first, user.token, { method: 'POST', url: '/account/save_keys', payload: { ...binanceBody(), label: `k${i}` } })).json().id);
    }
    await first.close();

    const second = await build(t, { env: env({ ENCRYPTION_KEY: ring2, ...adminEnv }), keepData: true });
    const admin = await loginAdmin(second);
    const rotated = await injectAs(second, admin.token, { method: 'POST', url: '/admin/keys/rotate' });
    assert.equal(rotated.statusCode, 200, rotated.body);
    assert.deepEqual(rotated.json(), { scanned: 3, rotated: 3 });
    const again = await injectAs(second, admin.token, { method: 'POST', url: '/admin/keys/rotate' });
    assert.deepEqual(again.json(), { scanned: 3, rotated: 0 });
    const rows = await second.database.db.select().from(exchangeKeys);
    assert.ok(rows.every((r) => r.apiKeyEnc.startsWith('v1.k2.') && r.secretEnc.startsWith('v1.k2.')));
    await second.close();

    // The old key can now be dropped from the ring.
    const third = await build(t, { env: env({ ENCRYPTION_KEY: ring2.split(',')[0] }), keepData: true });
    for (const id of ids) {
      const secret = await third.keysService.withCredentials(user.id, id, async (c) => c.secret);
      assert.equal(secret, binance.credentials.secret);
    }
  });

  test('a wrong ENCRYPTION_KEY at boot is a clear error naming the key id, not a later failure', async (t) => {
    const app = await build(t, { env: env() });
    const user = await createUser(app);
    await injectAs(app, user.token, { method: 'POST', url: '/account/save_keys', payload: binanceBody() });
    await app.close();
    await assert.rejects(
      build(t, { env: env({ ENCRYPTION_KEY: `k9:${randomBytes(32).toString('base64')}` }), keepData: true }),
      (err: unknown) => err instanceof ConfigError && /ENCRYPTION_KEY cannot decrypt stored exchange keys/.test(err.message) && /k1/.test(err.message),
    );
    // Same key id, different key material: also refused.
    await assert.rejects(
      build(t, { env: env({ ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}` }), keepData: true }),
      /ENCRYPTION_KEY cannot decrypt stored exchange keys/,
    );
  });
});
