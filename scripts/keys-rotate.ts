// `npm run keys:rotate`: re-encrypts every stored exchange credential with the newest key of ENCRYPTION_KEY (the
// first entry). Row by row with compare-and-set, so it is safe while the service runs against the same PostgreSQL
// database. The embedded database belongs to the running server: use `POST /admin/keys/rotate` there instead.
import pino from 'pino';
import { ConfigError, loadConfig } from '../src/config.js';
import { createDatabase } from '../src/db/client.js';
import { DataDirLockedError } from '../src/db/lock.js';
import { createVault } from '../src/modules/account/vault.js';
import { createKeysService } from '../src/modules/account/keys.service.js';

async function main() {
  const { config } = loadConfig();
  if (!process.env.ENCRYPTION_KEY) throw new ConfigError(['ENCRYPTION_KEY: required (the key ring to rotate to, newest first)']);
  const database = await createDatabase({ url: config.db.url, dataDir: config.db.dataDir, poolMax: 2 });
  try {
    const vault = createVault(config.encryptionKey);
    const service = createKeysService({ db: database.db, vault, log: pino({ level: 'warn' }) });
    const { scanned, rotated } = await service.rotateAll();
    process.stdout.write(`keys:rotate: ${rotated} of ${scanned} credential sets re-encrypted to key ${vault.currentKid}\n`);
  } finally {
    await database.close();
  }
}

main().catch((err: unknown) => {
  if (err instanceof DataDirLockedError) {
    process.stderr.write(`keys:rotate: ${err.message}\nWhile the server runs on the embedded database, call POST /admin/keys/rotate instead.\n`);
    process.exit(75);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`keys:rotate: ${err.message}\n`);
    process.exit(78);
  }
  process.stderr.write(`keys:rotate failed: ${(err as Error).message}\n`);
  process.exit(1);
});
