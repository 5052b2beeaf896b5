/**
 * Performance metrics of a backtest. Definitions follow kernc/backtesting.py `backtesting/_stats.py`
 * (`compute_stats`), written out one by one in docs/metrics.md. Differences: the base of returns is the initial
 * cash (upstream: equity[0], the same unless the first bar trades), durations are exact days, and any metric that
 * is undefined (too few trades or days, zero variance, division by zero, overflow) is `null` instead of NaN/Inf.
 */

import { ENTRY_BAR, EXIT_BAR, packTrades, PNL, PNL_PCT, TRADE_FIELDS, tradeCount, type TradeRecords } from './trades.js';

export interface Metrics {
  finalEquity: number;
  totalReturnPct: number;
  buyHoldReturnPct: number | null;
  cagrPct: number | null;
  annualReturnPct: number | null;
  annualVolatilityPct: number | null;
  sharpe: number | null;
  sortino: number | null;
  calmar: number | null;
  /** <= 0. */
  maxDrawdownPct: number;
  maxDrawdownDurationDays: number | null;
  avgDrawdownPct: number | null;
  exposurePct: number;
  trades: number;
  winRatePct: number | null;
  bestTradePct: number | null;
  worstTradePct: number | null;
  avgTradePct: number | null;
  profitFactor: number | null;
  expectancyPct: number | null;
  sqn: number | null;
  kelly: number | null;
  feesPaid: number;
}

/** The trade fields metrics need. */
export interface TradeLike {
  entryBar: number;
  exitBar: number;
  pnl: number;
  pnlPct: number;
}

export interface MetricsInput {
  /** Bar open times (epoch ms, UTC, ascending) of the simulated range. */
  ts: ArrayLike<number>;
  /** Closes of the simulated range (buy & hold). */
  close: ArrayLike<number>;
  /** Equity at each bar's close, same length as ts. */
  equity: ArrayLike<number>;
  initialCash: number;
  /** Closed trades, in order: packed records (./trades.ts, what the simulation logs) or objects. */
  trades: TradeRecords | readonly TradeLike[];
  /** Index into the full columns of ts[0] (trade bars are absolute indexes). Default 0. */
  firstBar?: number;
  feesPaid: number;
}

const DAY_MS = 86_400_000;

/** NaN/Infinity -> null. */
const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** Geometric mean of returns (NaN counted as 0), 0 if any return is <= -100% (upstream `geometric_mean`). */
function geometricMean(returns: ArrayLike<number>): number {
  if (returns.length === 0) return NaN;
  let logSum = 0;
  for (let i = 0; i < returns.length; i++) {
    const r0 = returns[i];
    const r = (r0 === r0 ? r0 : 0) + 1;
    if (r <= 0) return 0;
    logSum += Math.log(r);
  }
  return Math.exp(logSum / returns.length) - 1;
}

function mean(xs: ArrayLike<number>): number {
  if (!xs.length) return NaN;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Sample variance (ddof 1), NaN below 2 values. */
function variance(xs: ArrayLike<number>): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) * (xs[i] - m);
  return s / (xs.length - 1);
}

/**
 * One pass over the bars: the annualisation base (365 if more than 60% of the weekend share of a week, 2/7, of
 * the bars fall on Saturday/Sunday UTC, else 252); the last equity of each UTC calendar day that has bars; the
 * maximum drawdown; and the drawdown periods, from a bar at a peak (drawdown 0) to the next bar at a peak or to
 * the last bar (their longest duration and the mean of their deepest drawdowns).
 */
function scanBars(ts: ArrayLike<number>, equity: ArrayLike<number>) {
  const n = equity.length;
  const dayCloses: number[] = [];
  let weekendBars = 0;
  let dayStart = Infinity;
  let dayEnd = -Infinity;
  let weekendDay = false;
  let peak = -Infinity;
  let maxDd = 0;
  let lastZero = -1; // last bar at a peak
  let periodMax = 0; // deepest drawdown since lastZero
  let periods = 0;
  let periodPeakSum = 0;
  let longestMs = -Infinity;
  for (let i = 0; i < n; i++) {
    const t = ts[i];
    const e = equity[i];
    if (t >= dayEnd || t < dayStart || t !== t) {
      const day = Math.floor(t / DAY_MS);
      dayStart = day * DAY_MS;
      dayEnd = dayStart + DAY_MS;
      const dow = (day + 4) % 7; // 1970-01-01 was a Thursday (4); 0 = Sunday
      weekendDay = dow === 0 || dow === 6;
      dayCloses.push(e);
    } else dayCloses[dayCloses.length - 1] = e;
    if (weekendDay) weekendBars++;

    if (e > peak) peak = e;
    const d = 1 - e / peak;
    if (d > maxDd) maxDd = d;
    if (d === 0) {
      if (lastZero >= 0 && i > lastZero + 1) {
        periods++;
        periodPeakSum += periodMax;
        if (ts[i] - ts[lastZero] > longestMs) longestMs = ts[i] - ts[lastZero];
      }
      lastZero = i;
      periodMax = 0;
    } else if (d > periodMax) periodMax = d;
  }
  if (lastZero >= 0 && n - 1 > lastZero + 1) {
    periods++;
    periodPeakSum += periodMax;
    if (ts[n - 1] - ts[lastZero] > longestMs) longestMs = ts[n - 1] - ts[lastZero];
  }
  return {
    annual: n > 0 && weekendBars / n > (2 / 7) * 0.6 ? 365 : 252,
    dayCloses,
    maxDd,
    longestDrawdownMs: periods ? longestMs : NaN,
    avgDrawdown: periods ? periodPeakSum / periods : NaN,
  };
}

/** Bars (of n, offset firstBar) inside at least one trade's [entryBar, exitBar]. */
function heldBars(n: number, firstBar: number, count: number, entryBar: (k: number) => number, exitBar: (k: number) => number): number {
  // Trades come in order and do not overlap (a reversal's exit bar is the next entry's bar): a sweep counts
  // the union of their intervals. Out-of-order input is marked bar by bar instead.
  let held = 0;
  let coveredTo = -1;
  for (let k = 0; k < count; k++) {
    const a = Math.max(0, entryBar(k) - firstBar);
    const b = Math.min(n - 1, exitBar(k) - firstBar);
    if (k > 0 && a < Math.max(0, entryBar(k - 1) - firstBar)) {
      const mark = new Uint8Array(n);
      for (let j = 0; j < count; j++) mark.fill(1, Math.max(0, entryBar(j) - firstBar), Math.min(n - 1, exitBar(j) - firstBar) + 1);
      return mark.reduce((s, x) => s + x, 0);
    }
    const from = Math.max(a, coveredTo + 1);
    if (b >= from) held += b - from + 1;
    if (b > coveredTo) coveredTo = b;
  }
  return held;
}

export function computeMetrics(input: MetricsInput): Metrics {
  const { ts, close, equity, initialCash, feesPaid } = input;
  const firstBar = input.firstBar ?? 0;
  const n = equity.length;
  const finalEquity = n ? equity[n - 1] : initialCash;
  const base = initialCash;

  // Daily returns (the first is NaN, as pandas' pct_change) and annualisation.
  const bars = scanBars(ts, equity);
  const A = bars.annual;
  const closes = bars.dayCloses;
  const dayRets = closes.map((e, i) => (i === 0 ? NaN : e / closes[i - 1] - 1));
  const validDayRets = dayRets.filter((r) => r === r);
  const enoughDays = validDayRets.length >= 2;
  const g = geometricMean(dayRets);
  const annualReturn = Math.pow(1 + g, A) - 1;
  const v = variance(validDayRets);
  const annualVol = Math.sqrt(Math.pow(v + (1 + g) ** 2, A) - Math.pow(1 + g, 2 * A));
  let downside = 0;
  for (const r of validDayRets) downside += Math.min(r, 0) ** 2;
  const downsideDev = Math.sqrt(downside / validDayRets.length) * Math.sqrt(A);
  const durationDays = n > 1 ? (ts[n - 1] - ts[0]) / DAY_MS : 0;
  const years = durationDays / A; // upstream divides calendar days by the annual periods
  const cagr = years > 0 ? Math.pow(finalEquity / base, 1 / years) - 1 : NaN;
  const maxDd = bars.maxDd;

  // Trades.
  const packed = input.trades instanceof Float64Array ? input.trades : packTrades(input.trades as readonly TradeLike[]);
  const m = tradeCount(packed);
  const rets = new Float64Array(m);
  const pls = new Float64Array(m);
  let wins = 0;
  let winSum = 0;
  let losses = 0;
  let lossSum = 0;
  let posRetSum = 0;
  let negRetSum = 0;
  let best = -Infinity;
  let worst = Infinity;
  for (let k = 0, o = 0; k < m; k++, o += TRADE_FIELDS) {
    const r = packed[o + PNL_PCT] / 100;
    const p = packed[o + PNL];
    rets[k] = r;
    pls[k] = p;
    if (p > 0) (wins++, (winSum += p));
    else if (p < 0) (losses++, (lossSum += p));
    if (r > 0) posRetSum += r;
    else if (r < 0) negRetSum += r;
    if (r > best) best = r;
    if (r < worst) worst = r;
  }
  const winRate = m ? wins / m : NaN;
  const plStd = Math.sqrt(variance(pls));
  const held = heldBars(n, firstBar, m, (k) => packed[k * TRADE_FIELDS + ENTRY_BAR], (k) => packed[k * TRADE_FIELDS + EXIT_BAR]);

  const pct = (x: number) => fin(x * 100);
  return {
    finalEquity,
    totalReturnPct: ((finalEquity - base) / base) * 100,
    buyHoldReturnPct: n ? fin(((close[n - 1] - close[0]) / close[0]) * 100) : null,
    cagrPct: enoughDays ? pct(cagr) : null,
    annualReturnPct: enoughDays ? pct(annualReturn) : null,
    annualVolatilityPct: enoughDays ? pct(annualVol) : null,
    sharpe: enoughDays && annualVol > 0 ? fin(annualReturn / annualVol) : null,
    sortino: enoughDays && downsideDev > 0 ? fin(annualReturn / downsideDev) : null,
    calmar: enoughDays && maxDd > 0 ? fin(annualReturn / maxDd) : null,
    maxDrawdownPct: maxDd > 0 ? -maxDd * 100 : 0,
    maxDrawdownDurationDays: bars.longestDrawdownMs === bars.longestDrawdownMs ? bars.longestDrawdownMs / DAY_MS : null,
    avgDrawdownPct: bars.avgDrawdown === bars.avgDrawdown ? -bars.avgDrawdown * 100 : null,
    exposurePct: n ? (held / n) * 100 : 0,
    trades: m,
    winRatePct: m ? winRate * 100 : null,
    bestTradePct: m ? best * 100 : null,
    worstTradePct: m ? worst * 100 : null,
    avgTradePct: m ? pct(geometricMean(rets)) : null,
    profitFactor: negRetSum < 0 ? fin(posRetSum / -negRetSum) : null,
    expectancyPct: m ? pct(mean(rets)) : null,
    sqn: m >= 2 && plStd > 0 ? fin((Math.sqrt(m) * mean(pls)) / plStd) : null,
    kelly: wins && losses ? fin(winRate - (1 - winRate) / (winSum / wins / -(lossSum / losses))) : null,
    feesPaid,
  };
}
