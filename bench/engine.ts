/**
 * Engine benchmark: `npx tsx bench/engine.ts [bars] [reps]` (defaults 1,000,000 and 9).
 *
 * On a seeded random walk (default 1,000,000 candles) it times, side by side and several times:
 *  (a) the limit: a hand-written typed-array SMA(10)/SMA(30) cross loop with the same trading rules as
 *      examples/strategies/sma-cross.json (always in the market, reversal on each cross, next-open fills, fees);
 *  (b) our engine: createEvaluator(sma-cross.json, { fast: 10, slow: 30 }) in array mode + simulate().
 * It prints bars/s of each, the ratio (b)/(a) (target >= 0.5) and checks that both end with the same equity.
 */
import { readFileSync } from 'node:fs';
import { mulberry32, smaCrossLoop } from './gen.js';
import { createEvaluator, type Columns } from '../workers/engine/evaluator.js';
import { resolveSizingAndRisk, simulate, type SimSettings } from '../workers/engine/simulate.js';

const BARS = Number(process.argv[2] ?? 1_000_000);
const REPS = Number(process.argv[3] ?? 9);
const FAST = 10;
const SLOW = 30;
const settings: SimSettings = { initialCash: 10_000, feeBps: 0, slippageBps: 0, fill: 'next_open', lotStep: 0, closeAtEnd: true };

function randomWalk(n: number, seed: number): Columns & { ts: Float64Array } {
  const rnd = mulberry32(seed);
  const cols = {
    ts: new Float64Array(n),
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
    volume: new Float64Array(n),
  };
  let price = 100;
  for (let i = 0; i < n; i++) {
    const o = price;
    const c = o * Math.exp((rnd() - 0.5) * 0.004);
    cols.ts[i] = 1_600_000_000_000 + i * 60_000;
    cols.open[i] = o;
    cols.close[i] = c;
    cols.high[i] = Math.max(o, c) * (1 + rnd() * 0.001);
    cols.low[i] = Math.min(o, c) * (1 - rnd() * 0.001);
    cols.volume[i] = 1 + rnd() * 10;
    price = c;
  }
  return cols;
}

/** (a) Hand-written loop: running sums, cross detection, next-open fills, all-in sizing, reversals. */
function handLoop(cols: Columns): number {
  return smaCrossLoop(cols.open, cols.close, { fast: FAST, slow: SLOW, initialCash: settings.initialCash, feeBps: settings.feeBps });
}

/** (b) The engine: compiled strategy in array mode, then the broker simulation. */
function engine(cols: Columns, doc: unknown): number {
  const ev = createEvaluator(doc, { fast: FAST, slow: SLOW });
  const n = cols.close.length;
  const decisions = { signals: new Uint8Array(n) };
  ev.runInto(cols, 0, n, decisions);
  const { sizing, risk } = resolveSizingAndRisk(ev.doc, ev.params);
  const sim = simulate({ cols, from: 0, to: n, decisions, sizing, risk, settings });
  return sim.equity[n - 1];
}

function time(fn: () => number): { ms: number; result: number } {
  const t0 = performance.now();
  const result = fn();
  return { ms: performance.now() - t0, result };
}

const doc = JSON.parse(readFileSync(new URL('../examples/strategies/sma-cross.json', import.meta.url), 'utf8'));
const cols = randomWalk(BARS, 42);
const WARMUP = 3;
console.log(`engine bench: ${BARS.toLocaleString('en')} candles, SMA(${FAST})/SMA(${SLOW}) cross, ${REPS} reps (after ${WARMUP} warm-ups each)`);
// Several warm-up runs, not one: V8 first compiles each loop on-stack while it runs (OSR) and deoptimises it on
// code it has never seen run (after the loop); with a single warm-up the hand loop sometimes stayed in a slow
// tier for the whole run (~25 instead of ~150 M bars/s), which made the ratio look better than it is.
for (let w = 0; w < WARMUP; w++) {
  handLoop(cols);
  engine(cols, doc);
}
const hand: number[] = [];
const ours: number[] = [];
let handEq = NaN;
let ourEq = NaN;
for (let r = 0; r < REPS; r++) {
  const a = time(() => handLoop(cols));
  const b = time(() => engine(cols, doc));
  hand.push(a.ms);
  ours.push(b.ms);
  handEq = a.result;
  ourEq = b.result;
  console.log(
    `rep ${r + 1}: hand ${(BARS / a.ms / 1000).toFixed(1)} M bars/s (${a.ms.toFixed(1)} ms) | engine ${(BARS / b.ms / 1000).toFixed(1)} M bars/s (${b.ms.toFixed(1)} ms) | ratio ${(a.ms / b.ms).toFixed(2)}`,
  );
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const mh = median(hand);
const me = median(ours);
const bh = Math.min(...hand);
const be = Math.min(...ours);
const rate = (ms: number) => `${(BARS / ms / 1000).toFixed(1)} M bars/s`;
console.log(`median: hand ${rate(mh)}, engine ${rate(me)}, ratio engine/hand = ${(mh / me).toFixed(2)}`);
console.log(`best:   hand ${rate(bh)}, engine ${rate(be)}, ratio engine/hand = ${(bh / be).toFixed(2)} (target >= 0.5)`);
// Where the engine's time goes: the evaluator (array mode) and the broker simulation, timed separately.
const evalMs: number[] = [];
const simMs: number[] = [];
for (let r = 0; r < REPS; r++) {
  const ev = createEvaluator(doc, { fast: FAST, slow: SLOW });
  const decisions = { signals: new Uint8Array(BARS) };
  evalMs.push(time(() => (ev.runInto(cols, 0, BARS, decisions), 0)).ms);
  const { sizing, risk } = resolveSizingAndRisk(ev.doc, ev.params);
  simMs.push(time(() => simulate({ cols, from: 0, to: BARS, decisions, sizing, risk, settings }).equity[BARS - 1]).ms);
}
console.log(`engine parts (best): evaluator ${rate(Math.min(...evalMs))}, simulate ${rate(Math.min(...simMs))}`);
const same = Math.abs(handEq - ourEq) <= 1e-6 * Math.abs(handEq);
console.log(`final equity: hand ${handEq.toFixed(6)}, engine ${ourEq.toFixed(6)} -> ${same ? 'identical rules' : 'MISMATCH'}`);
