import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpProblem } from '../../../src/errors.js';
import { createPasswordHasher, normaliseEmail } from '../../../src/modules/auth/passwords.js';

const params = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

test('argon2id with the configured parameters; verify never throws on garbage', async () => {
  const h = createPasswordHasher(params, { concurrency: 2 });
  const hash = await h.hash('a long enough password');
  assert.match(hash, /^\$argon2id\$v=19\$m=1024,p=1,t=1\$/);
  assert.equal(await h.verify(hash, 'a long enough password'), true);
  assert.equal(await h.verify(hash, 'another password!!'), false);
  assert.equal(await h.verify('not a hash', 'x'), false);
  assert.equal(h.needsRehash(hash), false);
  assert.equal(createPasswordHasher({ ...params, timeCost: 2 }).needsRehash(hash), true);
  // The dummy hash is made once, with the same parameters.
  assert.equal(await h.dummyHash(), await h.dummyHash());
  assert.match(await h.dummyHash(), /^\$argon2id\$v=19\$m=1024,p=1,t=1\$/);
  assert.equal(normaliseEmail('  MiXed@Example.COM '), 'mixed@example.com');
});

test('concurrency gate: at most N argon2 operations run, a bounded number wait, the rest get 503 AUTH_BUSY', async () => {
  const h = createPasswordHasher(params, { concurrency: 1, queueMax: 1 });
  const hash = await h.hash('a long enough password');
  const first = h.verify(hash, 'a long enough password');
  const second = h.verify(hash, 'wrong password here');
  assert.deepEqual(h.stats(), { concurrency: 1, running: 1, waiting: 1 });
  await assert.rejects(h.verify(hash, 'a long enough password'), (err: unknown) => {
    assert.ok(err instanceof HttpProblem);
    assert.equal(err.statusCode, 503);
    assert.equal(err.code, 'AUTH_BUSY');
    assert.equal(err.headers?.['retry-after'], '1');
    return true;
  });
  assert.deepEqual(await Promise.all([first, second]), [true, false]);
  assert.deepEqual(h.stats(), { concurrency: 1, running: 0, waiting: 0 });
  // Auto: cores - 1, at least one.
  assert.ok(createPasswordHasher(params).concurrency >= 1);
});
