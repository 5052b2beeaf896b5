/**
 * Incremental indicators: O(1) work per candle (amortised O(1) for highest/lowest), fixed memory.
 *
 * Every indicator is fed one value (or one candle) per closed bar through `update(...)` and returns its current
 * value, `NaN` while it is warming up. A `NaN` input is ignored (the output is `NaN` and the state does not move),
 * so chained indicators (an SMA of an RSI) simply start once their input is defined.
 *
 * `block(src, from, out, len)` does the same for the `len` inputs src[from..from+len) into out[0..len) (the
 * evaluator's array mode; offsets rather than subarray views, which V8 reads markedly slower); for each
 * indicator `update` and `block` share one code path, so both give bit-identical values.
 *
 * Conventions follow TA-Lib: EMA seeded with the SMA of its first `period` inputs; RSI and ATR use Wilder
 * smoothing seeded with a plain average; Bollinger bands use the population standard deviation.
 */

/** Fixed-size ring buffer of the last `size` values. */
export class Ring {
  readonly buf: Float64Array;
  private pos = 0;
  count = 0;
  constructor(readonly size: number) {
    this.buf = new Float64Array(size);
  }
  /** Push x, returning the value that fell out (NaN while the buffer is not full). */
  push(x: number): number {
    const old = this.count === this.size ? this.buf[this.pos] : NaN;
    this.buf[this.pos] = x;
    this.pos = this.pos + 1 === this.size ? 0 : this.pos + 1;
    if (this.count < this.size) this.count++;
    return old;
  }
  /** Value pushed `ago` pushes before the latest one (0 = latest). NaN if not available. */
  get(ago: number): number {
    if (ago >= this.count) return NaN;
    let i = this.pos - 1 - ago;
    if (i < 0) i += this.size;
    return this.buf[i];
  }
}

/** Scratch buffers of the scalar `update` wrappers around `block`. */
const IN1 = new Float64Array(1);
const OUT1 = new Float64Array(1);
const OUT2 = new Float64Array(1);
const OUT3 = new Float64Array(1);

/** Simple moving average over the last `period` inputs (running sum over a ring buffer). */
export class Sma {
  private readonly buf: Float64Array;
  private pos = 0;
  private count = 0;
  private sum = 0;
  constructor(readonly period: number) {
    this.buf = new Float64Array(period);
  }
  update(x: number): number {
    IN1[0] = x;
    this.block(IN1, 0, OUT1, 1);
    return OUT1[0];
  }
  block(src: Float64Array, from: number, out: Float64Array, len: number): void {
    this.run(src, from, out, 0, len);
  }
  /** `block` writing from out[at] (used by pairBlock to finish a block). */
  private run(src: Float64Array, from: number, out: Float64Array, at: number, len: number): void {
    const p = this.period;
    const buf = this.buf;
    let pos = this.pos;
    let count = this.count;
    let sum = this.sum;
    let k = 0;
    while (k < len) {
      if (count === p) {
        // Warm fast path (almost every bar): no warm-up bookkeeping, leaves at a NaN input. Same operations in
        // the same order as the general step below, so the same sums.
        for (; k < len; k++) {
          const x = src[from + k];
          if (x !== x) break;
          sum -= buf[pos];
          buf[pos] = x;
          sum += x;
          pos = pos + 1 === p ? 0 : pos + 1;
          out[at + k] = sum / p;
        }
        if (k === len) break;
      }
      // General step: warming up, or a NaN input (ignored).
      const x = src[from + k];
      if (x !== x) out[at + k] = NaN;
      else {
        if (count === p) sum -= buf[pos];
        else count++;
        buf[pos] = x;
        sum += x;
        pos = pos + 1 === p ? 0 : pos + 1;
        out[at + k] = count === p ? sum / p : NaN;
      }
      k++;
    }
    this.pos = pos;
    this.count = count;
    this.sum = sum;
  }

  /**
   * `a.block(src, from, outA, len)` and `b.block(src, from, outB, len)` in one pass, same numbers. Why: each SMA
   * step is a chain of two dependent additions on its running sum, so one SMA per pass runs at the latency of
   * that chain; two independent chains in one loop overlap in the CPU (about twice the throughput). The fused loop
   * only covers the common case, both warm and no NaN input; it hands the rest of the block to `block`.
   */
  static pairBlock(a: Sma, b: Sma, src: Float64Array, from: number, outA: Float64Array, outB: Float64Array, len: number): void {
    const pa = a.period;
    const pb = b.period;
    let k = 0;
    if (a.count === pa && b.count === pb) {
      const bufA = a.buf;
      const bufB = b.buf;
      let posA = a.pos;
      let posB = b.pos;
      let sumA = a.sum;
      let sumB = b.sum;
      for (; k < len; k++) {
        const x = src[from + k];
        if (x !== x) break;
        sumA -= bufA[posA];
        bufA[posA] = x;
        sumA += x;
        posA = posA + 1 === pa ? 0 : posA + 1;
        outA[k] = sumA / pa;
        sumB -= bufB[posB];
        bufB[posB] = x;
        sumB += x;
        posB = posB + 1 === pb ? 0 : posB + 1;
        outB[k] = sumB / pb;
      }
      a.pos = posA;
      a.sum = sumA;
      b.pos = posB;
      b.sum = sumB;
    }
    if (k < len) {
      a.run(src, from + k, outA, k, len - k);
      b.run(src, from + k, outB, k, len - k);
    }
  }
}

/** Exponential moving average, alpha = 2 / (period + 1), seeded with the SMA of the first `period` inputs. */
export class Ema {
  private readonly alpha: number;
  private n = 0;
  private seed = 0;
  private value = NaN;
  constructor(readonly period: number) {
    this.alpha = 2 / (period + 1);
  }
  update(x: number): number {
    IN1[0] = x;
    this.block(IN1, 0, OUT1, 1);
    return OUT1[0];
  }
  block(src: Float64Array, from: number, out: Float64Array, len: number): void {
    const p = this.period;
    const alpha = this.alpha;
    let value = this.value;
    for (let k = 0; k < len; k++) {
      const x = src[from + k];
      if (x !== x) {
        out[k] = NaN;
        continue;
      }
      if (this.n < p) {
        this.seed += x;
        this.n++;
        if (this.n === p) value = this.seed / p;
      } else value = value + alpha * (x - value);
      out[k] = value;
    }
    this.value = value;
  }
}

/**
 * Wilder's RSI. The first value appears once `period` changes are known (input index `period`): average gain and
 * loss are the plain means of those changes, then `avg = (avg * (period - 1) + x) / period`.
 * RSI = 100 * avgGain / (avgGain + avgLoss); a perfectly flat window (both zero) gives 50.
 */

export class Rsi {
  private prev = NaN;
  private n = 0;
  private gain = 0;
  private loss = 0;
  value = NaN;
  constructor(readonly period: number) {}
  block(src: Float64Array, from: number, out: Float64Array, len: number): void {
    // A loop per class keeps `this.update` monomorphic, so V8 inlines it (no boxed doubles).
    for (let k = 0; k < len; k++) out[k] = this.update(src[from + k]);
  }
  update(x: number): number {
    if (x !== x) return NaN;
    const prev = this.prev;
    this.prev = x;
    if (prev !== prev) return NaN;
    const d = x - prev;
    const g = d > 0 ? d : 0;
    const l = d < 0 ? -d : 0;
    const p = this.period;
    if (this.n < p) {
      this.gain += g;
      this.loss += l;
      this.n++;
      if (this.n < p) return NaN;
      this.gain /= p;
      this.loss /= p;
    } else {
      this.gain = (this.gain * (p - 1) + g) / p;
      this.loss = (this.loss * (p - 1) + l) / p;
    }
    const sum = this.gain + this.loss;
    return (this.value = sum === 0 ? 50 : (100 * this.gain) / sum);
  }
}

/** Rate of change in percent: 100 * (x - x[period bars ago]) / x[period bars ago]. */
export class Roc {
  private readonly ring: Ring;
  value = NaN;
  constructor(readonly period: number) {
    this.ring = new Ring(period + 1);
  }
  block(src: Float64Array, from: number, out: Float64Array, len: number): void {
    // A loop per class keeps `this.update` monomorphic, so V8 inlines it (no boxed doubles).
    for (let k = 0; k < len; k++) out[k] = this.update(src[from + k]);
  }
  update(x: number): number {
    if (x !== x) return NaN;
    this.ring.push(x);
    const old = this.ring.get(this.period);
    return (this.value = old === old && old !== 0 ? (100 * (x - old)) / old : NaN);
  }
}

/**
 * Wilder's average true range. TR = max(high - low, |high - prevClose|, |low - prevClose|) from the second candle
 * on; the first ATR (candle index `period`) is the mean of the first `period` TRs, then
 * `atr = (atr * (period - 1) + tr) / period` (TA-Lib ATR).
 */
export class Atr {
  private prevClose = NaN;
  private n = 0;
  private sum = 0;
  value = NaN;
  constructor(readonly period: number) {}
  block(high: Float64Array, low: Float64Array, close: Float64Array, from: number, out: Float64Array, len: number): void {
    for (let k = 0; k < len; k++) out[k] = this.update(high[from + k], low[from + k], close[from + k]);
  }
  update(high: number, low: number, close: number): number {
    const pc = this.prevClose;
    this.prevClose = close;
    if (pc !== pc) return NaN;
    const tr = Math.max(high - low, Math.abs(high - pc), Math.abs(low - pc));
    const p = this.period;
    if (this.n < p) {
      this.sum += tr;
      this.n++;
      if (this.n === p) this.value = this.sum / p;
      return this.value;
    }
    return (this.value = (this.value * (p - 1) + tr) / p);
  }
}

/**
 * Highest (or lowest) of the last `period` inputs, current one included: a monotonic deque of input indexes in a
 * ring, amortised O(1) per input.
 */
export class Extreme {
  /** Deque (in a ring of `period` cells) of input indexes and sign-adjusted values, best at the head. */
  private readonly idx: Float64Array;
  private readonly val: Float64Array;
  private head = 0;
  private len = 0;
  private i = -1;
  /** `sign` 1 = highest, -1 = lowest. */
  constructor(
    readonly period: number,
    private readonly sign: 1 | -1,
  ) {
    this.idx = new Float64Array(period);
    this.val = new Float64Array(period);
  }
  update(x: number): number {
    IN1[0] = x;
    this.block(IN1, 0, OUT1, 1);
    return OUT1[0];
  }
  block(src: Float64Array, from: number, out: Float64Array, len: number): void {
    const p = this.period;
    const sign = this.sign;
    const idx = this.idx;
    const val = this.val;
    let { head, len: size, i } = this;
    for (let k = 0; k < len; k++) {
      const x = src[from + k];
      if (x !== x) {
        out[k] = NaN;
        continue;
      }
      i++;
      const sx = sign * x;
      // Drop from the back everything not better than x.
      while (size > 0) {
        let back = head + size - 1;
        if (back >= p) back -= p;
        if (val[back] > sx) break;
        size--;
      }
      // Drop the front if it slid out of the window.
      if (size > 0 && idx[head] <= i - p) {
        head = head + 1 === p ? 0 : head + 1;
        size--;
      }
      let slot = head + size;
      if (slot >= p) slot -= p;
      idx[slot] = i;
      val[slot] = sx;
      size++;
      out[k] = i >= p - 1 ? sign * val[head] : NaN;
    }
    this.head = head;
    this.len = size;
    this.i = i;
  }
}

export class Highest extends Extreme {
  constructor(period: number) {
    super(period, 1);
  }
}
export class Lowest extends Extreme {
  constructor(period: number) {
    super(period, -1);
  }
}

/**
 * MACD: line = EMA(fast) - EMA(slow) (both fed from the first input, each seeded with its own SMA), defined from
 * input index `slow - 1`; signal = EMA(signal) of the line, defined from index `slow + signal - 2`;
 * hist = line - signal.
 */
export class Macd {
  private readonly fastEma: Ema;
  private readonly slowEma: Ema;
  private readonly signalEma: Ema;
  private fast = new Float64Array(0);
  private slow = new Float64Array(0);
  line = NaN;
  signal = NaN;
  hist = NaN;
  constructor(fast: number, slow: number, signal: number) {
    this.fastEma = new Ema(fast);
    this.slowEma = new Ema(slow);
    this.signalEma = new Ema(signal);
  }
  update(x: number): number {
    IN1[0] = x;
    this.block(IN1, 0, OUT1, OUT2, OUT3, 1);
    return OUT1[0];
  }
  /** line/signal/hist of src[from..from+len) into the three outputs. NaN inputs leave the state unchanged. */
  block(src: Float64Array, from: number, line: Float64Array, signal: Float64Array, hist: Float64Array, len: number): void {
    if (this.fast.length < len) {
      this.fast = new Float64Array(len);
      this.slow = new Float64Array(len);
    }
    const f = this.fast;
    const s = this.slow;
    this.fastEma.block(src, from, f, len);
    this.slowEma.block(src, from, s, len);
    for (let k = 0; k < len; k++) line[k] = f[k] - s[k]; // NaN while either EMA warms up or for a NaN input
    this.signalEma.block(line, 0, signal, len); // NaN until the line is defined, then seeded with its SMA
    for (let k = 0; k < len; k++) hist[k] = line[k] - signal[k];
    if (len > 0) {
      // Carry the last values for `update` callers (a NaN input keeps the previous state visible as NaN).
      this.line = line[len - 1];
      this.signal = signal[len - 1];
      this.hist = hist[len - 1];
    }
  }
}

/**
 * Bollinger bands: middle = SMA(period), upper/lower = middle +/- k * population standard deviation of the window.
 * Running sums of x and x^2; the variance is clamped at 0 against rounding.
 */
export class Bbands {
  private readonly buf: Float64Array;
  private pos = 0;
  private count = 0;
  private sum = 0;
  private sumSq = 0;
  upper = NaN;
  middle = NaN;
  lower = NaN;
  constructor(
    readonly period: number,
    readonly k: number,
  ) {
    this.buf = new Float64Array(period);
  }
  update(x: number): number {
    IN1[0] = x;
    this.block(IN1, 0, OUT1, OUT2, OUT3, 1);
    this.upper = OUT1[0];
    this.middle = OUT2[0];
    this.lower = OUT3[0];
    return OUT2[0];
  }
  block(src: Float64Array, from: number, upper: Float64Array, middle: Float64Array, lower: Float64Array, len: number): void {
    const n = this.period;
    const buf = this.buf;
    const mult = this.k;
    let { pos, count, sum, sumSq } = this;
    for (let k = 0; k < len; k++) {
      const x = src[from + k];
      if (x === x) {
        if (count === n) {
          const old = buf[pos];
          sum -= old;
          sumSq -= old * old;
        } else count++;
        buf[pos] = x;
        sum += x;
        sumSq += x * x;
        pos = pos + 1 === n ? 0 : pos + 1;
      }
      if (x !== x || count < n) {
        upper[k] = middle[k] = lower[k] = NaN;
        continue;
      }
      const mean = sum / n;
      const v = sumSq / n - mean * mean;
      const sd = v > 0 ? Math.sqrt(v) : 0;
      middle[k] = mean;
      upper[k] = mean + mult * sd;
      lower[k] = mean - mult * sd;
    }
    this.pos = pos;
    this.count = count;
    this.sum = sum;
    this.sumSq = sumSq;
  }
}

/** The input from `bars` updates ago (0 = the current one): NaN until that much history exists. */
export class Lag {
  private readonly ring: Ring;
  constructor(readonly bars: number) {
    this.ring = new Ring(bars + 1);
  }
  block(src: Float64Array, from: number, out: Float64Array, len: number): void {
    // A loop per class keeps `this.update` monomorphic, so V8 inlines it (no boxed doubles).
    for (let k = 0; k < len; k++) out[k] = this.update(src[from + k]);
  }
  update(x: number): number {
    this.ring.push(x);
    return this.ring.get(this.bars);
  }
}
