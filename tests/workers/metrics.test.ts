import { describe, test } from 'node:test';
import { mulberry32 } from '../../bench/gen.js';
import assert from 'node:assert/strict';
import { computeMetrics, type Metrics, type TradeLike } from '../../workers/engine/metrics.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;


const rel = (a: number | null, b: number, what: string) => {
  assert.ok(a !== null, `${what} is null, expected ${b}`);
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} != ${b}`);
};

/** The straightforward, independent reading of backtesting.py's compute_stats. */
function reference(ts: number[], equity: number[], close: number[], trades: TradeLike[], initialCash: number) {
  // daily equity: last value of each UTC date present
  const byDay = new Map<string, number>();
  ts.forEach((t, i) => byDay.set(new Date(t).toISOString().slice(0, 10), equity[i]));
  const daily = [...byDay.values()];
  const rets = daily.slice(1).map((e, i) => e / daily[i] - 1);
  const weekendShare = ts.filter((t) => [0, 6].includes(new Date(t).getUTCDay())).length / ts.length;
  const A = weekendShare > (2 / 7) * 0.6 ? 365 : 252;
  const g = Math.exp(rets.reduce((s, r) => s + Math.log(1 + r), 0) / daily.length) - 1;
  const annual = (1 + g) ** A - 1;
  const m = rets.reduce((s, r) => s + r, 0) / rets.length;
  const variance = rets.reduce((s, r) => s + (r - m) ** 2, 0) / (rets.length - 1);
  const vol = Math.sqrt((variance + (1 + g) ** 2) ** A - (1 + g) ** (2 * A));
  const downside = Math.sqrt(rets.reduce((s, r) => s + Math.min(0, r) ** 2, 0) / rets.length) * Math.sqrt(A);
  let peak = -Infinity;
  const dd = equity.map((e) => ((peak = Math.max(peak, e)), 1 - e / peak));
  const maxDd = Math.max(...dd);
  const atPeak = dd.flatMap((d, i) => (d === 0 ? [i] : []));
  if (atPeak[atPeak.length - 1] !== dd.length - 1) atPeak.push(dd.length - 1);
  const spans: { days: number; depth: number }[] = [];
  for (let z = 1; z < atPeak.length; z++) {
    if (atPeak[z] - atPeak[z - 1] > 1)
      spans.push({ days: (ts[atPeak[z]] - ts[atPeak[z - 1]]) / DAY, depth: Math.max(...dd.slice(atPeak[z - 1], atPeak[z] + 1)) });
  }
  const years = (ts[ts.length - 1] - ts[0]) / DAY / A;
  const final = equity[equity.length - 1];
  const r = trades.map((t) => t.pnlPct / 100);
  const pl = trades.map((t) => t.pnl);
  const n = trades.length;
  const wr = pl.filter((p) => p > 0).length / n;
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const plMean = mean(pl);
  const plStd = Math.sqrt(pl.reduce((s, p) => s + (p - plMean) ** 2, 0) / (n - 1));
  const held = new Set<number>();
  trades.forEach((t) => {
    for (let i = t.entryBar; i <= t.exitBar; i++) held.add(i);
  });
  return {
    A,
    finalEquity: final,
    totalReturnPct: ((final - initialCash) / initialCash) * 100,
    buyHoldReturnPct: ((close[close.length - 1] - close[0]) / close[0]) * 100,
    cagrPct: ((final / initialCash) ** (1 / years) - 1) * 100,
    annualReturnPct: annual * 100,
    annualVolatilityPct: vol * 100,
    sharpe: annual / vol,
    sortino: annual / downside,
    calmar: annual / maxDd,
    maxDrawdownPct: -maxDd * 100,
    maxDrawdownDurationDays: Math.max(...spans.map((s) => s.days)),
    avgDrawdownPct: -mean(spans.map((s) => s.depth)) * 100,
    exposurePct: (held.size / equity.length) * 100,
    trades: n,
    winRatePct: wr * 100,
    bestTradePct: Math.max(...r) * 100,
    worstTradePct: Math.min(...r) * 100,
    avgTradePct: (r.reduce((p, x) => p * (1 + x), 1) ** (1 / n) - 1) * 100,
    profitFactor: r.filter((x) => x > 0).reduce((s, x) => s + x, 0) / -r.filter((x) => x < 0).reduce((s, x) => s + x, 0),
    expectancyPct: mean(r) * 100,
    sqn: (Math.sqrt(n) * plMean) / plStd,
    kelly: wr - (1 - wr) / (mean(pl.filter((p) => p > 0)) / -mean(pl.filter((p) => p < 0))),
  };
}

/** A seeded random walk of equity and prices, plus random non-overlapping trades. */
function scenario(seed: number, bars: number, stepMs: number, start: number, skipWeekends = false) {
  const rnd = mulberry32(seed);
  const ts: number[] = [];
  for (let t = start; ts.length < bars; t += stepMs) {
    const dow = new Date(t).getUTCDay();
    if (skipWeekends && (dow === 0 || dow === 6)) continue;
    ts.push(t);
  }
  let e = 10_000;
  let c = 100;
  const equity: number[] = [];
  const close: number[] = [];
  for (let i = 0; i < bars; i++) {
    e *= 1 + (rnd() - 0.49) * 0.01;
    c *= 1 + (rnd() - 0.5) * 0.01;
    equity.push(e);
    close.push(c);
  }
  const trades: TradeLike[] = [];
  for (let i = 5; i + 10 < bars; i += 12) {
    const pnlPct = (rnd() - 0.45) * 6;
    trades.push({ entryBar: i, exitBar: i + 1 + Math.floor(rnd() * 9), pnlPct, pnl: pnlPct * 100 });
  }
  return { ts, equity, close, trades };
}

function checkAgainstReference(m: Metrics, ref: ReturnType<typeof reference>) {
  for (const key of Object.keys(m) as (keyof Metrics)[]) {
    if (key === 'feesPaid') continue;
    rel(m[key], ref[key], key);
  }
}

describe('metrics (backtesting.py definitions)', () => {
  test('crypto-style hourly data with weekends: 365 periods per year, every metric matches', () => {
    const { ts, equity, close, trades } = scenario(42, 24 * 90, HOUR, Date.UTC(2021, 0, 1));
    const m = computeMetrics({ ts, equity, close, trades, initialCash: 10_000, feesPaid: 12.5 });
    const ref = reference(ts, equity, close, trades, 10_000);
    assert.equal(ref.A, 365);
    checkAgainstReference(m, ref);
    assert.equal(m.feesPaid, 12.5);
    assert.ok(m.maxDrawdownPct < 0);
  });

  test('weekday-only daily data: 252 periods per year', () => {
    const { ts, equity, close, trades } = scenario(7, 400, DAY, Date.UTC(2020, 0, 6), true);
    const m = computeMetrics({ ts, equity, close, trades, initialCash: 10_000, feesPaid: 0 });
    const ref = reference(ts, equity, close, trades, 10_000);
    assert.equal(ref.A, 252);
    checkAgainstReference(m, ref);
  });

  test('trade bars are absolute indexes: firstBar shifts them into the range', () => {
    const { ts, equity, close } = scenario(3, 100, HOUR, Date.UTC(2021, 0, 1));
    const m = computeMetrics({ ts, equity, close, initialCash: 10_000, feesPaid: 0, firstBar: 1000, trades: [{ entryBar: 1010, exitBar: 1019, pnl: 1, pnlPct: 0.1 }] });
    assert.equal(m.exposurePct, 10);
  });
});

describe('undefined metrics are null, never NaN or Infinity', () => {
  const hourly = (n: number, f: (i: number) => number) => ({
    ts: Array.from({ length: n }, (_, i) => Date.UTC(2021, 0, 1) + i * HOUR),
    equity: Array.from({ length: n }, (_, i) => f(i)),
    close: Array.from({ length: n }, (_, i) => 100 + i),
  });
  const allFiniteOrNull = (m: Metrics) =>
    Object.entries(m).forEach(([k, v]) => assert.ok(v === null || Number.isFinite(v), `${k} = ${v}`));

  test('no trades', () => {
    const m = computeMetrics({ ...hourly(24 * 10, () => 10_000), trades: [], initialCash: 10_000, feesPaid: 0 });
    allFiniteOrNull(m);
    assert.equal(m.trades, 0);
    for (const k of ['winRatePct', 'bestTradePct', 'worstTradePct', 'avgTradePct', 'profitFactor', 'expectancyPct', 'sqn', 'kelly'] as const)
      assert.equal(m[k], null, k);
    // flat equity: zero variance and no drawdown
    assert.equal(m.annualVolatilityPct, 0);
    assert.equal(m.sharpe, null);
    assert.equal(m.sortino, null);
    assert.equal(m.calmar, null);
    assert.equal(m.maxDrawdownPct, 0);
    assert.equal(m.maxDrawdownDurationDays, null);
    assert.equal(m.avgDrawdownPct, null);
    assert.equal(m.exposurePct, 0);
    assert.equal(m.totalReturnPct, 0);
  });

  test('less than two daily returns: annualised metrics are null', () => {
    const m = computeMetrics({ ...hourly(30, (i) => 10_000 + (i % 3) * 10), trades: [], initialCash: 10_000, feesPaid: 0 });
    allFiniteOrNull(m);
    for (const k of ['cagrPct', 'annualReturnPct', 'annualVolatilityPct', 'sharpe', 'sortino', 'calmar'] as const) assert.equal(m[k], null, k);
    assert.ok(m.maxDrawdownPct < 0);
  });

  test('one trade: no SQN; only winners: no profit factor and no Kelly', () => {
    const h = hourly(24 * 5, (i) => 10_000 + i);
    const one = computeMetrics({ ...h, trades: [{ entryBar: 1, exitBar: 3, pnl: 5, pnlPct: 0.5 }], initialCash: 10_000, feesPaid: 0 });
    allFiniteOrNull(one);
    assert.equal(one.sqn, null);
    assert.equal(one.profitFactor, null);
    assert.equal(one.kelly, null);
    assert.equal(one.winRatePct, 100);
    const same = computeMetrics({ ...h, trades: [1, 2, 3].map((i) => ({ entryBar: i, exitBar: i, pnl: 5, pnlPct: 0.5 })), initialCash: 10_000, feesPaid: 0 });
    assert.equal(same.sqn, null); // zero variance of pnl
  });

  test('only losers: profit factor 0, Kelly null', () => {
    const h = hourly(24 * 5, (i) => 10_000 - i);
    const m = computeMetrics({ ...h, trades: [1, 2].map((i) => ({ entryBar: i, exitBar: i, pnl: -5 * i, pnlPct: -0.5 * i })), initialCash: 10_000, feesPaid: 0 });
    allFiniteOrNull(m);
    assert.equal(m.profitFactor, 0);
    assert.equal(m.kelly, null);
    assert.equal(m.winRatePct, 0);
  });

  test('equity wiped out: a -100% trade gives avgTrade 0 like upstream, ratios stay finite or null', () => {
    const h = hourly(24 * 5, (i) => (i < 50 ? 10_000 : 0));
    const m = computeMetrics({ ...h, trades: [{ entryBar: 1, exitBar: 50, pnl: -10_000, pnlPct: -100 }, { entryBar: 60, exitBar: 61, pnl: 0, pnlPct: 0 }], initialCash: 10_000, feesPaid: 0 });
    allFiniteOrNull(m);
    assert.equal(m.maxDrawdownPct, -100);
    assert.equal(m.avgTradePct, 0);
  });
});
