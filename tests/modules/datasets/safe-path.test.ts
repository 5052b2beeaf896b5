import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { HttpProblem } from '../../../src/errors.js';
import { listDatasetFiles, resolveDatasetFile } from '../../../src/modules/datasets/safe-path.js';

let root: string;
let base: string;
let outside: string;

before(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'safe-path-')));
  base = join(root, 'datasets');
  outside = join(root, 'outside');
  await mkdir(base);
  await mkdir(outside);
  await writeFile(join(base, 'good.csv'), 'a,b\n1,2\n');
  await writeFile(join(base, 'Upper.CSV'), 'x\n');
  await writeFile(join(base, 'notes.txt'), 'not a dataset');
  await writeFile(join(base, '.hidden.csv'), 'hidden');
  await mkdir(join(base, 'dir.csv'));
  await writeFile(join(outside, 'secret.csv'), 'secret');
  await symlink(join(outside, 'secret.csv'), join(base, 'escape.csv'));
  await symlink('../outside/secret.csv', join(base, 'relescape.csv'));
  await symlink(join(base, 'good.csv'), join(base, 'alias.csv'));
  await symlink(join(base, 'missing-target.csv'), join(base, 'dangling.csv'));
  await symlink(outside, join(base, 'linkdir.csv'));
  execFileSync('mkfifo', [join(base, 'pipe.csv')]);
  await utimes(join(base, 'good.csv'), new Date('2024-01-02T03:04:05Z'), new Date('2024-01-02T03:04:05Z'));
});

after(() => rm(root, { recursive: true, force: true }));

async function refused(name: string, code: string, status: number): Promise<void> {
  await assert.rejects(resolveDatasetFile(base, name), (err: unknown) => {
    assert.ok(err instanceof HttpProblem, `expected HttpProblem for ${JSON.stringify(name)}`);
    assert.equal(err.statusCode, status, `${JSON.stringify(name)}: ${err.message}`);
    assert.equal(err.code, code);
    assert.ok(!err.message.includes(root), 'the base directory is not disclosed');
    return true;
  });
}

describe('resolveDatasetFile', () => {
  test('resolves plain names to the real path inside the base directory', async () => {
    assert.equal(await resolveDatasetFile(base, 'good.csv'), join(base, 'good.csv'));
    assert.equal(await resolveDatasetFile(base, 'Upper.CSV'), join(base, 'Upper.CSV'));
    // a symlink that stays inside is fine and resolves to its target
    assert.equal(await resolveDatasetFile(base, 'alias.csv'), join(base, 'good.csv'));
    // a base dir given with a trailing slash or through a symlink works the same
    assert.equal(await resolveDatasetFile(`${base}/`, 'good.csv'), join(base, 'good.csv'));
    await symlink(base, join(root, 'base-link'));
    assert.equal(await resolveDatasetFile(join(root, 'base-link'), 'good.csv'), join(base, 'good.csv'));
  });

  const traversal = [
    '../x',
    '..',
    '.',
    '../outside/secret.csv',
    '/etc/passwd',
    '/etc/passwd.csv',
    'a/../../b',
    'a/../../b.csv',
    'sub/good.csv',
    './good.csv',
    decodeURIComponent('%2e%2e%2fsecret.csv'), // ../secret.csv
    decodeURIComponent('%2e%2e'), // ..
    decodeURIComponent('..%2F..%2Fetc%2Fpasswd'),
    '%2e%2e%2fsecret.csv', // still encoded: refused too, so a second decode elsewhere cannot turn it into ../
    '%2e%2e',
    'x\0.csv',
    'good.csv\0',
    '..\\outside\\secret.csv',
    'a\\b.csv',
    'C:\\Windows\\win.ini',
    'C:secret.csv',
    '',
    ' good.csv',
    'good.csv.',
    'line\nbreak.csv',
    '.hidden.csv',
    `${'a'.repeat(252)}.csv`,
  ];
  for (const name of traversal) {
    test(`refuses ${JSON.stringify(name)}`, () => refused(name, 'INVALID_DATASET_NAME', 400));
  }

  test('refuses names without the .csv extension (configurable)', async () => {
    await refused('notes.txt', 'INVALID_DATASET_NAME', 400);
    await refused('.csv', 'INVALID_DATASET_NAME', 400);
    assert.equal(await resolveDatasetFile(base, 'notes.txt', { extensions: ['.txt'] }), join(base, 'notes.txt'));
  });

  test('refuses symlinks whose real path leaves the base directory', async () => {
    await refused('escape.csv', 'INVALID_DATASET_NAME', 400);
    await refused('relescape.csv', 'INVALID_DATASET_NAME', 400);
    await refused('linkdir.csv', 'INVALID_DATASET_NAME', 400);
  });

  test('refuses directories and FIFOs', async () => {
    await refused('dir.csv', 'INVALID_DATASET_NAME', 400);
    await refused('pipe.csv', 'INVALID_DATASET_NAME', 400);
  });

  test('missing files, dangling links and a missing base directory are 404', async () => {
    await refused('nope.csv', 'DATASET_NOT_FOUND', 404);
    await refused('dangling.csv', 'DATASET_NOT_FOUND', 404);
    await assert.rejects(resolveDatasetFile(join(root, 'no-such-dir'), 'good.csv'), { statusCode: 404 });
  });
});

describe('listDatasetFiles', () => {
  test('lists regular *.csv files inside the base directory only', async () => {
    const list = await listDatasetFiles(base);
    assert.deepEqual(
      list.map((f) => f.name),
      ['Upper.CSV', 'alias.csv', 'good.csv'],
    );
    const good = list.find((f) => f.name === 'good.csv');
    assert.deepEqual(good, { name: 'good.csv', bytes: 8, modifiedAt: '2024-01-02T03:04:05.000Z' });
    assert.equal(list.find((f) => f.name === 'alias.csv')?.bytes, 8);
  });

  test('a missing directory lists as empty', async () => {
    assert.deepEqual(await listDatasetFiles(join(root, 'no-such-dir')), []);
  });
});
