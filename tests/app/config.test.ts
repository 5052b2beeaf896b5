import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config.js';

test('development: no environment at all still boots, with generated secrets and loud warnings', () => {
  const { config, warnings } = loadConfig({});
  assert.equal(config.port, 8000);
  assert.equal(config.host, '0.0.0.0');
  assert.equal(config.db.url, undefined);
  assert.equal(config.db.dataDir, './data');
  assert.ok(config.auth.jwtSecret.length >= 32);
  assert.ok(config.encryptionKey.length > 0);
  assert.equal(warnings.length, 2);
  assert.match(warnings.join('\n'), /JWT_SECRET/);
  assert.match(warnings.join('\n'), /ENCRYPTION_KEY/);
});

test('bad values fail with a message naming the variable', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'abc' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ DATABASE_URL: 'mysql://localhost/db' }, /DATABASE_URL/],
    [{ DATABASE_URL: 'not a url' }, /DATABASE_URL/],
    [{ DEBUG: 'maybe' }, /DEBUG/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ NODE_ENV: 'staging' }, /NODE_ENV/],
  ];
  for (const [env, re] of cases) {
    assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && re.test(err.message), JSON.stringify(env));
  }
});

test('production enforces the whole security checklist and lists every failed item at once', () => {
  try {
    loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'change_me', DEBUG: 'true', CORS_ORIGINS: '*' });
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.problems.join('\n');
    assert.match(text, /JWT_SECRET: must be at least 32 characters/);
    assert.match(text, /ENCRYPTION_KEY: required in production/);
    assert.match(text, /DEBUG: must be off in production/);
    assert.match(text, /CORS_ORIGINS: must not be \* in production/);
    assert.equal(err.problems.length, 4);
  }
  assert.throws(
    () => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'your-super-secret-key-change-in-production' }),
    /JWT_SECRET: is a known default value/,
  );
});

test('production with a proper configuration passes', () => {
  const { config, warnings } = loadConfig({
    NODE_ENV: 'production',
    JWT_SECRET: 'x'.repeat(20) + 'a-long-and-random-secret-value',
    ENCRYPTION_KEY: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    CORS_ORIGINS: 'https://app.example.com, https://admin.example.com',
  });
  assert.equal(config.isProduction, true);
  assert.deepEqual(config.corsOrigins, ['https://app.example.com', 'https://admin.example.com']);
  assert.deepEqual(warnings, []);
});

test('a malformed ENCRYPTION_KEY is a clear boot error that does not echo the key', () => {
  const leaked = 'AAAAshort-key-material';
  assert.throws(
    () => loadConfig({ ENCRYPTION_KEY: `k1:${leaked}` }),
    (err: unknown) => err instanceof ConfigError && /ENCRYPTION_KEY/.test(err.message) && !err.message.includes(leaked),
  );
});
