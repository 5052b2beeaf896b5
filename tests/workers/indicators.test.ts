import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Atr, Bbands, Ema, Highest, Lag, Lowest, Macd, Roc, Rsi, Sma } from '../../workers/engine/indicators.js';

/** Assert two series are equal within 1e-9 (NaN equals NaN). */
function close(actual: number[], expected: number[]) {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => {
    const e = expected[i];
    if (Number.isNaN(e)) assert.ok(Number.isNaN(a), `index ${i}: expected NaN, got ${a}`);
    else assert.ok(Math.abs(a - e) < 1e-9, `index ${i}: expected ${e}, got ${a}`);
  });
}
const feed = (ind: { update(x: number): number }, xs: number[]) => xs.map((x) => ind.update(x));

describe('indicators against hand-computed values', () => {
  test('SMA(3)', () => {
    close(feed(new Sma(3), [1, 2, 3, 4, 5, 10]), [NaN, NaN, 2, 3, 4, 19 / 3]);
  });

  test('EMA(3): seeded with the SMA of the first 3, then alpha 0.5', () => {
    // seed (2+4+6)/3 = 4; 4 + .5*(8-4) = 6; 6 + .5*(12-6) = 9
    close(feed(new Ema(3), [2, 4, 6, 8, 12]), [NaN, NaN, 4, 6, 9]);
  });

  test("RSI(2) with Wilder smoothing", () => {
    // changes +1, -1, +2, -0.5
    // idx2: gain .5, loss .5 -> 50; idx3: gain (.5+2)/2 = 1.25, loss .25 -> 83.33; idx4: gain .625, loss .375 -> 62.5
    close(feed(new Rsi(2), [1, 2, 1, 3, 2.5]), [NaN, NaN, 50, (100 * 1.25) / 1.5, 62.5]);
  });

  test('RSI of a flat window is 50, of a rising one 100', () => {
    close(feed(new Rsi(2), [5, 5, 5, 5]), [NaN, NaN, 50, 50]);
    close(feed(new Rsi(2), [1, 2, 3, 4]), [NaN, NaN, 100, 100]);
  });

  test('ROC(2) in percent', () => {
    close(feed(new Roc(2), [10, 11, 12, 9]), [NaN, NaN, 20, (100 * (9 - 11)) / 11]);
  });

  test('ATR(2): TR from the second candle, SMA seed, then Wilder', () => {
    const atr = new Atr(2);
    const out = [
      [10, 8, 9], // no previous close
      [11, 9, 10], // TR 2
      [12, 10, 11], // TR 2 -> ATR 2
      [15, 11, 14], // TR 4 -> (2 + 4) / 2 = 3
      [20, 19, 19.5], // gap: TR = |20 - 14| = 6 -> (3 + 6) / 2 = 4.5
    ].map(([h, l, c]) => atr.update(h, l, c));
    close(out, [NaN, NaN, 2, 3, 4.5]);
  });

  test('highest / lowest over 3 bars including the current one', () => {
    const xs = [3, 1, 4, 1, 5, 9, 2, 6];
    close(feed(new Highest(3), xs), [NaN, NaN, 4, 4, 5, 9, 9, 9]);
    close(feed(new Lowest(3), xs), [NaN, NaN, 1, 1, 1, 1, 2, 2]);
    close(feed(new Highest(1), [2, 1, 3]), [2, 1, 3]);
  });

  test('MACD(2, 3, 2): line, signal, hist', () => {
    const m = new Macd(2, 3, 2);
    const rows = [1, 3, 2, 5, 4, 6].map((x) => (m.update(x), [m.line, m.signal, m.hist]));
    // fast EMA(2): 2, 2, 4, 4, 16/3 from idx1; slow EMA(3): 2, 3.5, 3.75, 4.875 from idx2
    const line = [NaN, NaN, 0, 0.5, 0.25, 16 / 3 - 4.875];
    const signal = [NaN, NaN, NaN, 0.25, 0.25, 0.25 + (2 / 3) * (16 / 3 - 4.875 - 0.25)];
    close(rows.map((r) => r[0]), line);
    close(rows.map((r) => r[1]), signal);
    close(rows.map((r) => r[2]), line.map((l, i) => l - signal[i]));
  });

  test('Bollinger bands (3, 2) with the population standard deviation', () => {
    const b = new Bbands(3, 2);
    const rows = [1, 2, 3, 5].map((x) => (b.update(x), [b.upper, b.middle, b.lower]));
    const sd2 = Math.sqrt(2 / 3);
    const sd3 = Math.sqrt(14 / 9);
    assert.ok(Math.abs(rows[2][0] - (2 + 2 * sd2)) < 1e-9 && Math.abs(rows[2][1] - 2) < 1e-9 && Math.abs(rows[2][2] - (2 - 2 * sd2)) < 1e-9);
    assert.ok(Math.abs(rows[3][0] - (10 / 3 + 2 * sd3)) < 1e-9 && Math.abs(rows[3][2] - (10 / 3 - 2 * sd3)) < 1e-9);
  });

  test('Lag(2) returns the input from two updates ago', () => {
    close(feed(new Lag(2), [1, 2, 3, 4]), [NaN, NaN, 1, 2]);
  });

  test('NaN inputs are skipped: chained indicators start when their input is defined', () => {
    close(feed(new Sma(2), [NaN, NaN, 1, 3, 5]), [NaN, NaN, NaN, 2, 4]);
    close(feed(new Ema(2), [NaN, 2, 4, 7]), [NaN, NaN, 3, 3 + (2 / 3) * 4]);
  });

  test('block mode equals one update at a time, whatever the chunking', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const xs = Float64Array.from({ length: 500 }, () => 100 + rnd() * 10);
    const make = () => [new Sma(7), new Ema(5), new Rsi(6), new Roc(3), new Highest(4), new Lowest(4), new Lag(3)];
    const one = make().map((ind) => Array.from(xs, (x) => ind.update(x)));
    const chunked = make().map((ind) => {
      const out = new Float64Array(xs.length);
      for (let i = 0, step = 1; i < xs.length; i += step, step = (step % 37) + 1) {
        const len = Math.min(step, xs.length - i);
        const chunk = new Float64Array(len);
        ind.block(xs, i, chunk, len);
        out.set(chunk, i);
      }
      return Array.from(out);
    });
    one.forEach((series, i) => assert.deepEqual(chunked[i], series));
  });

  test('highest/lowest deque matches a brute-force window scan on a long series', () => {
    let seed = 3;
    const rnd = () => ((seed = (seed * 69069 + 1) % 4294967296) / 4294967296);
    const xs = Array.from({ length: 2000 }, () => Math.round(rnd() * 50));
    for (const p of [1, 2, 5, 17]) {
      const hi = feed(new Highest(p), xs);
      const lo = feed(new Lowest(p), xs);
      xs.forEach((_, i) => {
        if (i < p - 1) return assert.ok(Number.isNaN(hi[i]));
        const w = xs.slice(i - p + 1, i + 1);
        assert.equal(hi[i], Math.max(...w));
        assert.equal(lo[i], Math.min(...w));
      });
    }
  });
});
