// Creates the bootstrap admin: `npm run admin:create -- --email admin@example.com`
// The password is read from stdin when piped (`printf '%s' "$PW" | npm run admin:create -- --email ...`) and prompted
// for (twice, not echoed) on a terminal. Nothing changes when a user with that email already exists (exit code 2).
// Uses the same configuration as the server (DATABASE_URL or DATA_DIR, ARGON2_*); applies pending migrations first.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../src/config.js';
import { createDatabase } from '../src/db/client.js';
import { DataDirLockedError } from '../src/db/lock.js';
import { migrateDatabase } from '../src/db/migrate.js';
import { createAuthRepository } from '../src/modules/auth/auth.repository.js';
import { Email, Password } from '../src/modules/auth/auth.schemas.js';
import { createAuthService } from '../src/modules/auth/auth.service.js';
import { createPasswordHasher } from '../src/modules/auth/passwords.js';

const fail = (message: string, code = 1): never => {
  process.stderr.write(`admin:create: ${message}\n`);
  process.exit(code);
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Reads one line from the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          return resolve(value);
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          return reject(new Error('cancelled'));
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function main() {
  const { values } = parseArgs({ options: { email: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help || !values.email) {
    process.stderr.write('usage: npm run admin:create -- --email <email>   (password from stdin, or prompted on a terminal)\n');
    process.exit(values.help ? 0 : 64);
  }
  const email = Email.safeParse(values.email);
  if (!email.success) fail(`--email: ${z.prettifyError(email.error)}`, 64);

  let password: string;
  if (process.stdin.isTTY) {
    password = await promptHidden('Password (12-256 characters): ');
    if ((await promptHidden('Repeat: ')) !== password) fail('the passwords differ', 64);
  } else {
    password = await readStdin();
  }
  const checked = Password.safeParse(password);
  if (!checked.success) fail(`password ${checked.error.issues[0]?.message ?? 'is invalid'}`, 64);

  let config;
  try {
    ({ config } = loadConfig());
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 78);
    throw err;
  }
  let database;
  try {
    database = await createDatabase({ url: config.db.url, dataDir: config.db.dataDir, poolMax: 2 });
  } catch (err) {
    if (err instanceof DataDirLockedError) fail(err.message, 75);
    throw err;
  }
  try {
    await migrateDatabase(database);
    const service = createAuthService({
      db: database.db,
      repo: createAuthRepository(database.db),
      passwords: createPasswordHasher(config.auth.argon2),
      signAccessToken: () => {
        throw new Error('not used');
      },
      accessTtlSeconds: config.auth.accessTtlSeconds,
      refreshTtlSeconds: config.auth.refreshTtlSeconds,
      log: { warn() {}, info() {}, error() {} } as never,
    });
    const { created, user } = await service.ensureAdmin({ email: email.data!, password }, { requestId: 'admin:create' });
    if (!created) {
      process.stderr.write(`admin:create: a user with email ${user.email} already exists (role ${user.role}); nothing changed\n`);
      process.exitCode = 2;
      return;
    }
    process.stdout.write(`admin created: ${user.email} (id ${user.id})\n`);
  } finally {
    await database.close();
  }
}

main().catch((err) => fail((err as Error).message));
