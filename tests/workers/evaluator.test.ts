import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  createEvaluator,
  LONG_ENTRY,
  LONG_EXIT,
  resolveAction,
  SHORT_ENTRY,
  SHORT_EXIT,
  StrategyError,
  type Columns,
  type DecisionArrays,
} from '../../workers/engine/evaluator.js';
import { resolveSizingAndRisk, simulate } from '../../workers/engine/simulate.js';

const EXAMPLES = ['sma-cross', 'rsi-mean-reversion', 'breakout-atr'];
const example = (name: string) => JSON.parse(readFileSync(new URL(`../../examples/strategies/${name}.json`, import.meta.url), 'utf8'));

/** The real 5-minute BTC/USDT candles, parsed with a few lines of code. */
function loadCsv(path: string): Columns & { ts: Float64Array } {
  const lines = readFileSync(path, 'utf8').trim().split('\n').slice(1);
  const cols = ['ts', 'open', 'high', 'low', 'close', 'volume'].map(() => new Float64Array(lines.length));
  lines.forEach((line, i) => line.split(',').forEach((v, j) => (cols[j][i] = Number(v))));
  const [ts, open, high, low, close, volume] = cols;
  return { ts, open, high, low, close, volume };
}
const btc = loadCsv('/work/shared/data/binance-BTC_USDT-5m.csv');

function arrays(n: number): Required<DecisionArrays> {
  return { signals: new Uint8Array(n), stopAtr: new Float64Array(n), targetAtr: new Float64Array(n), trailAtr: new Float64Array(n) };
}
const sameNumber = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));

describe('evaluator', () => {
  test('array mode and one-candle-at-a-time mode give identical decisions on real data, for every example', () => {
    assert.ok(btc.close.length > 60_000);
    for (const name of EXAMPLES) {
      const doc = example(name);
      const n = btc.close.length;
      const arr = arrays(n);
      createEvaluator(doc).runInto(btc, 0, n, arr);
      const live = createEvaluator(doc);
      let fired = 0;
      for (let i = 0; i < n; i++) {
        const d = live.onCandle({ time: btc.ts[i], open: btc.open[i], high: btc.high[i], low: btc.low[i], close: btc.close[i], volume: btc.volume[i] });
        assert.equal(d.bar, i);
        if (d.signals !== arr.signals[i]) assert.fail(`${name}: bar ${i}: one-at-a-time ${d.signals} != array ${arr.signals[i]}`);
        assert.equal(d.longEntry, (d.signals & LONG_ENTRY) !== 0);
        if (!sameNumber(d.stopAtr, arr.stopAtr[i]) && live.usesAtr.stopLoss) assert.fail(`${name}: bar ${i}: stop ATR differs`);
        if (!sameNumber(d.trailAtr, arr.trailAtr[i]) && live.usesAtr.trailingStop) assert.fail(`${name}: bar ${i}: trail ATR differs`);
        if (d.longEntry || d.shortEntry) fired++;
      }
      assert.ok(fired > 10, `${name} fired ${fired} entries`);
      assert.equal(live.bars, n);
    }
  });

  test('array mode in uneven chunks equals one pass', () => {
    const doc = example('breakout-atr');
    const n = 20_000;
    const whole = arrays(n);
    createEvaluator(doc).runInto(btc, 0, n, whole);
    const parts = arrays(n);
    const ev = createEvaluator(doc);
    for (let i = 0, step = 1; i < n; i += step, step = (step * 7) % 3001) ev.runInto(btc, i, Math.min(n, i + step), parts, i);
    assert.deepEqual(parts.signals, whole.signals);
    assert.deepEqual(parts.trailAtr, whole.trailAtr);
  });

  test('no look-ahead: perturbing candles after k leaves decisions and equity up to k unchanged', () => {
    const n = 6000;
    const k = 4000;
    let seed = 99;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const perturbed: Columns = {
      open: btc.open.slice(0, n),
      high: btc.high.slice(0, n),
      low: btc.low.slice(0, n),
      close: btc.close.slice(0, n),
      volume: btc.volume.slice(0, n),
      ts: btc.ts.slice(0, n),
    };
    for (let i = k + 1; i < n; i++) {
      const o = 20_000 + rnd() * 40_000;
      const c = 20_000 + rnd() * 40_000;
      perturbed.open[i] = o;
      perturbed.close[i] = c;
      perturbed.high[i] = Math.max(o, c) * (1 + rnd() * 0.05);
      perturbed.low[i] = Math.min(o, c) * (1 - rnd() * 0.05);
      perturbed.volume[i] = rnd() * 1000;
    }
    for (const name of EXAMPLES) {
      const doc = example(name);
      const results = [btc, perturbed].map((cols) => {
        const ev = createEvaluator(doc);
        const d = arrays(n);
        ev.runInto(cols, 0, n, d);
        const { sizing, risk } = resolveSizingAndRisk(ev.doc, ev.params);
        const sim = simulate({ cols, from: 0, to: n, decisions: d, sizing, risk, settings: { initialCash: 10_000, feeBps: 10, slippageBps: 5, fill: 'next_open', lotStep: 0, closeAtEnd: true } });
        return { d, sim };
      });
      const [a, b] = results;
      assert.deepEqual(a.d.signals.subarray(0, k + 1), b.d.signals.subarray(0, k + 1), `${name}: decisions up to ${k}`);
      assert.deepEqual(a.sim.equity.subarray(0, k + 1), b.sim.equity.subarray(0, k + 1), `${name}: equity up to ${k}`);
      assert.notDeepEqual(a.d.signals.subarray(k + 1), b.d.signals.subarray(k + 1), `${name}: the perturbation changed later decisions`);
    }
  });

  test('condition semantics on a tiny series: crosses, barsAgo, and/or/not, eq, warm-up', () => {
    const doc = {
      version: 1,
      name: 'semantics',
      indicators: { ma: { type: 'sma', period: 2 } },
      rules: {
        // long entry: close crosses above its 2-bar SMA
        long: { entry: { op: 'crossesAbove', left: { price: 'close' }, right: { indicator: 'ma' } }, exit: { op: 'eq', left: { price: 'close' }, right: 5 } },
        // short entry: close below the previous close and not above 4, or the open equals 9
        short: {
          entry: {
            op: 'or',
            conditions: [
              { op: 'and', conditions: [{ op: 'lt', left: { price: 'close' }, right: { price: 'close', barsAgo: 1 } }, { op: 'not', condition: { op: 'gt', left: { price: 'close' }, right: 4 } }] },
              { op: 'eq', left: { price: 'open' }, right: 9 },
            ],
          },
          exit: { op: 'crossesBelow', left: { price: 'close' }, right: { indicator: 'ma' } },
        },
      },
    };
    const closes = [4, 3, 5, 6, 2, 4];
    const opens = [1, 1, 1, 9, 1, 1];
    const ev = createEvaluator(doc);
    const sig = closes.map((c, i) => ev.onCandle({ open: opens[i], high: 10, low: 0, close: c, volume: 1 }).signals);
    // ma: NaN, 3.5, 4, 5.5, 4, 3
    // bar0: nothing defined. bar1: close 3 < prev 4 and <= 4 -> short entry; ma defined only now -> no cross.
    // bar2: close 5 > ma 4 and prev 3 <= 3.5 -> long entry; close == 5 -> long exit.
    // bar3: open 9 -> short entry. bar4: 2 < 6 and <= 4 -> short entry; close 2 < ma 4 and prev 6 >= 5.5 -> crossesBelow.
    // bar5: close 4 > ma 3, prev 2 <= 4 -> long entry.
    assert.deepEqual(sig, [0, SHORT_ENTRY, LONG_ENTRY | LONG_EXIT, SHORT_ENTRY, SHORT_ENTRY | SHORT_EXIT, LONG_ENTRY]);
  });

  test('params override defaults; invalid strategies throw a StrategyError with issues', () => {
    const ev = createEvaluator(example('sma-cross'), { fast: 5, slow: 50 });
    assert.deepEqual(ev.params, { fast: 5, slow: 50 });
    assert.throws(() => createEvaluator(example('sma-cross'), { fast: 1000 }), (e: unknown) => e instanceof StrategyError && e.issues[0].path === '/params/fast');
    assert.throws(() => createEvaluator({ version: 1 }), StrategyError);
  });

  test('resolveAction: position-aware orders from signals', () => {
    assert.equal(resolveAction(0, LONG_ENTRY), 1); // open long
    assert.equal(resolveAction(0, SHORT_ENTRY), 2); // open short
    assert.equal(resolveAction(0, LONG_ENTRY | SHORT_ENTRY), 0);
    assert.equal(resolveAction(0, LONG_EXIT), 0);
    assert.equal(resolveAction(1, LONG_EXIT), 3); // close
    assert.equal(resolveAction(1, SHORT_ENTRY), 5); // reverse to short
    assert.equal(resolveAction(1, LONG_ENTRY), 0);
    assert.equal(resolveAction(-1, LONG_ENTRY | SHORT_EXIT), 4); // reverse to long
    assert.equal(resolveAction(-1, SHORT_EXIT), 3);
  });
});
