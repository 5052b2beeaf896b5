/**
 * CSV ingest benchmark: `npx tsx bench/csv.ts [rows=1000000] [reps=3]`.
 *
 * Generates a seeded OHLCV CSV (bench/gen.ts) in a temp dir, then runs each contender in its own child process
 * (so peak RSS is measured per contender, not polluted by the previous one), `reps` times, and prints the best
 * and median wall time, rows/s, the ratio to papaparse and the peak RSS growth of the first run over the child's
 * idle baseline:
 *  - ingest:       ingestCsv (byte scanner → Float64Arrays, sha256, quality report, columnar file + fsync + rename)
 *  - ingest-reuse: ingestCsv of content already stored (same parse, hash and validation; the write is skipped;
 *                  its peak RSS includes the untimed priming run that stored the file),
 *                  i.e. the parse cost without the disk-bound write + fsync
 *  - papaparse:    Papa.parse(readStream, { worker: false, chunk }) — plain parse, values left as strings
 *  - papaparse+dt: the same with dynamicTyping (numbers converted, the closer like-for-like)
 *  - sha256 only:  reading the file through the same stream + hashing (the I/O + hash floor)
 * Data never goes through one string: all three stream the file in 64 KiB chunks.
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Papa from 'papaparse';
import { ingestCsv } from '../src/modules/datasets/ingest.js';
import { generateCsv } from './gen.js';

export { generateCsv } from './gen.js';

type Mode = 'ingest' | 'ingest-reuse' | 'papaparse' | 'papaparse+dt' | 'sha256';
const MODES: Mode[] = ['ingest', 'ingest-reuse', 'papaparse', 'papaparse+dt', 'sha256'];

interface ChildReport {
  mode: Mode;
  rows: number;
  timesMs: number[];
  baselineRss: number;
  peakRss: number;
}

let reuseDir: string | undefined;

async function runOnce(mode: Mode, file: string): Promise<number> {
  if (mode === 'ingest-reuse') {
    if (!reuseDir) {
      reuseDir = await mkdtemp(join(tmpdir(), 'bench-csv-reuse-'));
      await ingestCsv(createReadStream(file), { dir: reuseDir, maxBytes: Number.MAX_SAFE_INTEGER }); // untimed: store once
    }
    const r = await ingestCsv(createReadStream(file, { highWaterMark: 65536 }), { dir: reuseDir, maxBytes: Number.MAX_SAFE_INTEGER });
    if (!r.reused) throw new Error('expected the stored file to be reused');
    return r.rows;
  }
  if (mode === 'ingest') {
    const dir = await mkdtemp(join(tmpdir(), 'bench-csv-out-'));
    try {
      const r = await ingestCsv(createReadStream(file, { highWaterMark: 65536 }), { dir, maxBytes: Number.MAX_SAFE_INTEGER });
      return r.rows;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (mode === 'sha256') {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(file, { highWaterMark: 65536 })) h.update(chunk as Buffer);
    h.digest();
    return 0;
  }
  let rows = 0;
  await new Promise<void>((resolve, reject) => {
    Papa.parse(createReadStream(file, { highWaterMark: 65536 }) as unknown as File, {
      worker: false,
      header: false,
      skipEmptyLines: true,
      dynamicTyping: mode === 'papaparse+dt',
      chunk: (res: Papa.ParseResult<unknown>) => {
        rows += res.data.length;
      },
      complete: () => resolve(),
      error: (err: Error) => reject(err),
    });
  });
  return rows - 1; // header
}

async function child(mode: Mode, file: string, reps: number): Promise<void> {
  const baselineRss = process.memoryUsage().rss;
  const timesMs: number[] = [];
  let rows = 0;
  let peakRss = 0;
  for (let i = 0; i < reps; i++) {
    if (mode === 'ingest-reuse' && !reuseDir) await runOnce(mode, file); // prime the store outside the timing
    const t0 = performance.now();
    rows = await runOnce(mode, file);
    timesMs.push(performance.now() - t0);
    // peak after the first timed run: later runs would add the previous runs' not yet collected garbage
    if (i === 0) peakRss = process.resourceUsage().maxRSS * 1024;
  }
  if (reuseDir) await rm(reuseDir, { recursive: true, force: true });
  process.send?.({ mode, rows, timesMs, baselineRss, peakRss } satisfies ChildReport);
}

function runChild(mode: Mode, file: string, reps: number): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const cp = fork(fileURLToPath(import.meta.url), ['--child', mode, file, String(reps)], { stdio: 'inherit' });
    let report: ChildReport | undefined;
    cp.on('message', (m) => {
      report = m as ChildReport;
    });
    cp.on('error', reject);
    cp.on('exit', (code) => (report ? resolve(report) : reject(new Error(`${mode} child exited with ${code}`))));
  });
}

const mb = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 1_000_000);
  const reps = Number(process.argv[3] ?? 3);
  const dir = await mkdtemp(join(tmpdir(), 'bench-csv-'));
  try {
    const file = join(dir, 'ohlcv.csv');
    const t0 = performance.now();
    const bytes = await generateCsv(file, rows, 42);
    console.log(`generated ${rows.toLocaleString('en-US')} rows, ${mb(bytes)} (seed 42) in ${(performance.now() - t0).toFixed(0)} ms`);
    console.log(`node ${process.version}, ${reps} runs each, one child process per contender\n`);
    const reports: ChildReport[] = [];
    for (const mode of MODES) reports.push(await runChild(mode, file, reps));
    const pp = reports.find((r) => r.mode === 'papaparse');
    const ppdt = reports.find((r) => r.mode === 'papaparse+dt');
    const pad = (s: string, n: number) => s.padStart(n);
    console.log(`${'contender'.padEnd(14)}${pad('best ms', 9)}${pad('median ms', 11)}${pad('rows/s (best)', 15)}${pad('MB/s', 8)}${pad('vs pp', 8)}${pad('vs pp+dt', 10)}${pad('peak RSS +', 12)}`);
    for (const r of reports) {
      const best = Math.min(...r.timesMs);
      const rps = (rows / best) * 1000;
      const ratio = (other?: ChildReport) => (other ? `${(Math.min(...other.timesMs) / best).toFixed(2)}x` : '-');
      console.log(
        `${r.mode.padEnd(14)}${pad(best.toFixed(0), 9)}${pad(median(r.timesMs).toFixed(0), 11)}` +
          `${pad(r.mode === 'sha256' ? '-' : Math.round(rps).toLocaleString('en-US'), 15)}${pad(((bytes / best) * 1000 / 1e6).toFixed(0), 8)}` +
          `${pad(ratio(pp), 8)}${pad(ratio(ppdt), 10)}${pad(mb(r.peakRss - r.baselineRss), 12)}`,
      );
      if (r.mode !== 'sha256' && r.rows !== rows) throw new Error(`${r.mode} counted ${r.rows} rows, expected ${rows}`);
    }
    const size = (await stat(file)).size;
    console.log(`\n"vs pp" = papaparse time / contender time (higher is faster). Input file ${mb(size)}.`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain && process.argv[2] === '--child') await child(process.argv[3] as Mode, process.argv[4], Number(process.argv[5]));
else if (isMain) await main();
