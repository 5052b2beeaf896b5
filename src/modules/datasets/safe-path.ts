/**
 * Safe resolution of user-placed dataset files (read-only CSVs in DATA_DIR/datasets), referenced by bare name.
 *
 * A name is a single file name, never a path: it is refused (400 INVALID_DATASET_NAME) when it is empty, longer
 * than 255 bytes, contains a NUL/control character, `/` or `\`, a `%` (so no percent-encoded form such as `%2e%2e`
 * or `%2f` can turn into something else if anyone decodes it again), a `:` (drive letters, NTFS streams), starts with
 * `.` (covers `.` and `..`, and hidden files), ends with a dot or a space, or does not end in an allowed extension
 * (`.csv` by default). The file must exist (else 404), be a regular file after following symlinks (FIFOs and
 * devices would block or misbehave), and its real path (fs.realpath) must stay inside the real base directory:
 * a symlink that leaves it is refused like a traversal. The returned path is that real path.
 */
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { badRequest, notFound } from '../../errors.js';

export interface DatasetFileInfo {
  name: string;
  bytes: number;
  /** ISO 8601 modification time. */
  modifiedAt: string;
}

export interface ResolveOptions {
  /** Allowed extensions, lower case with the dot. Default `['.csv']`. */
  extensions?: readonly string[];
}

const invalidName = (reason: string) =>
  badRequest(`Invalid dataset name: ${reason}`, 'INVALID_DATASET_NAME', { extensions: { reason } });

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws INVALID_DATASET_NAME unless `name` is a plain, safe file name. */
export function assertSafeDatasetName(name: unknown, extensions: readonly string[] = ['.csv']): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw invalidName('name is empty');
  if (Buffer.byteLength(name, 'utf8') > 255) throw invalidName('name is longer than 255 bytes');
  if (name.includes('\0')) throw invalidName('name contains a NUL byte');
  if (CONTROL.test(name)) throw invalidName('name contains control characters');
  if (name.includes('/') || name.includes('\\')) throw invalidName('name must not contain a path separator');
  if (name.includes('%')) throw invalidName('name must not contain percent-encoded characters');
  if (name.includes(':')) throw invalidName('name must not contain ":"');
  if (name.startsWith('.')) throw invalidName('name must not start with "."');
  if (name.endsWith('.') || name.endsWith(' ') || name !== name.trim()) {
    throw invalidName('name must not start or end with whitespace or end with "."');
  }
  const lower = name.toLowerCase();
  if (!extensions.some((ext) => lower.endsWith(ext) && lower.length > ext.length)) {
    throw invalidName(`name must end with ${extensions.join(' or ')}`);
  }
}

function isInside(base: string, p: string): boolean {
  const prefix = base.endsWith(sep) ? base : base + sep;
  return p.startsWith(prefix);
}

/**
 * Resolves `name` inside `baseDir` and returns the file's real path. 400 INVALID_DATASET_NAME for unsafe names and
 * symlinks leading outside `baseDir` or to non-regular files; 404 NOT_FOUND when there is no such file.
 */
export async function resolveDatasetFile(baseDir: string, name: string, opts: ResolveOptions = {}): Promise<string> {
  assertSafeDatasetName(name, opts.extensions);
  let base: string;
  try {
    base = await realpath(baseDir);
  } catch {
    throw notFound('Dataset file', name, 'DATASET_NOT_FOUND');
  }
  const candidate = join(base, name);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      // Missing file, or a dangling symlink: nothing to read either way.
      throw notFound('Dataset file', name, 'DATASET_NOT_FOUND');
    }
    throw invalidName('file cannot be resolved');
  }
  if (!isInside(base, real)) throw invalidName('file resolves outside the datasets directory');
  const st = await stat(real);
  if (!st.isFile()) throw invalidName('not a regular file');
  return real;
}

/**
 * Lists the `*.csv` files (case-insensitive) directly in `baseDir` whose names pass the same checks as
 * resolveDatasetFile and whose real path stays inside it, sorted by name. A missing directory yields [].
 */
export async function listDatasetFiles(baseDir: string): Promise<DatasetFileInfo[]> {
  let base: string;
  let entries: string[];
  try {
    base = await realpath(baseDir);
    entries = await readdir(base);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: DatasetFileInfo[] = [];
  for (const name of entries) {
    try {
      assertSafeDatasetName(name);
      const p = join(base, name);
      const l = await lstat(p);
      const real = l.isSymbolicLink() ? await realpath(p) : p;
      if (!isInside(base, real)) continue;
      const st = await stat(real);
      if (!st.isFile()) continue;
      out.push({ name, bytes: st.size, modifiedAt: st.mtime.toISOString() });
    } catch {
      // unsafe name, dangling link, vanished file: not listed
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
