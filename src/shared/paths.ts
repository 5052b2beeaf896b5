import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The project root, whether running from source (src/...) or from the build (dist/src/...). */
export const projectRoot = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url)); // <root>/src/shared or <root>/dist/src/shared
  const up = path.resolve(here, '..', '..');
  return path.basename(up) === 'dist' ? path.dirname(up) : up;
})();

export const migrationsFolder = path.join(projectRoot, 'drizzle');
