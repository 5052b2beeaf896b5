/**
 * Performance metrics of a backtest. Definitions follow kernc/backtesting.py `backtesting/_stats.py`
 * (`compute_stats`), written out one by one in docs/metrics.md. Differences: the base of returns is the initial
 * cash (upstream: equity[0], the same unless the first bar trades), durations are exact days, and any metric that
 * is undefined (too few trades or days, zero variance, division by zero, overflow) is `null` instead of NaN/Inf.
 */

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
  /** Bar open times (epoch ms, UTC) of the simulated range. */
  ts: ArrayLike<number>;
  /** Closes of the simulated range (buy & hold). */
  close: ArrayLike<number>;
  /** Equity at each bar's close, same length as ts. */
  equity: ArrayLike<number>;
  initialCash: number;
  trades: readonly TradeLike[];
  /** Index into the full columns of ts[0] (trade bars are absolute indexes). Default 0. */
  firstBar?: number;
  feesPaid: number;
}

const DAY_MS = 86_400_000;

/** NaN/Infinity -> null. */
const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** 365 if more than 60% of the weekend share of a week (2/7) of the bars fall on Saturday/Sunday UTC, else 252. */
export function annualPeriods(ts: ArrayLike<number>): number {
  if (ts.length === 0) return 252;
  let weekend = 0;
  for (let i = 0; i < ts.length; i++) {
    const dow = (Math.floor(ts[i] / DAY_MS) + 4) % 7; // 1970-01-01 was a Thursday (4); 0 = Sunday
    if (dow === 0 || dow === 6) weekend++;
  }
  return weekend / ts.length > (2 / 7) * 0.6 ? 365 : 252;
}

/**
 * Daily simple returns: last equity of each UTC calendar day that has bars, then the change from the previous
 * such day. The first element is NaN (pandas `pct_change`).
 */
export function dailyReturns(ts: ArrayLike<number>, equity: ArrayLike<number>): number[] {
  const closes: number[] = [];
  let day = NaN;
  for (let i = 0; i < ts.length; i++) {
    const d = Math.floor(ts[i] / DAY_MS);
    if (d !== day) {
      closes.push(equity[i]);
      day = d;
    } else closes[closes.length - 1] = equity[i];
  }
  return closes.map((e, i) => (i === 0 ? NaN : e / closes[i - 1] - 1));
}

/** Geometric mean of returns (NaN counted as 0), 0 if any return is <= -100% (upstream `geometric_mean`). */
export function geometricMean(returns: readonly number[]): number {
  if (returns.length === 0) return NaN;
  let logSum = 0;
  for (const r0 of returns) {
    const r = (r0 === r0 ? r0 : 0) + 1;
    if (r <= 0) return 0;
    logSum += Math.log(r);
  }
  return Math.exp(logSum / returns.length) - 1;
}

function mean(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}
function maxOf(xs: readonly number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  return m;
}
/** Sample variance (ddof 1), NaN below 2 values. */
function variance(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return s / (xs.length - 1);
}

/** Drawdown periods: from a bar at peak (dd = 0) to the next bar at peak, or to the last bar. */
export function drawdownPeriods(ts: ArrayLike<number>, equity: ArrayLike<number>): { dd: Float64Array; periods: { durationMs: number; peak: number }[] } {
  const n = equity.length;
  const dd = new Float64Array(n);
  let peak = -Infinity;
  const zeros: number[] = [];
  for (let i = 0; i < n; i++) {
    if (equity[i] > peak) peak = equity[i];
    dd[i] = 1 - equity[i] / peak;
    if (dd[i] === 0) zeros.push(i);
  }
  if (n > 0 && zeros[zeros.length - 1] !== n - 1) zeros.push(n - 1);
  const periods: { durationMs: number; peak: number }[] = [];
  for (let z = 1; z < zeros.length; z++) {
    const prev = zeros[z - 1];
    const cur = zeros[z];
    if (cur > prev + 1) {
      let m = 0;
      for (let i = prev; i <= cur; i++) if (dd[i] > m) m = dd[i];
      periods.push({ durationMs: ts[cur] - ts[prev], peak: m });
    }
  }
  return { dd, periods };
}

export function computeMetrics(input: MetricsInput): Metrics {
  const { ts, close, equity, initialCash, trades, feesPaid } = input;
  const firstBar = input.firstBar ?? 0;
  const n = equity.length;
  const finalEquity = n ? equity[n - 1] : initialCash;
  const base = initialCash;

  // Daily returns and annualisation.
  const A = annualPeriods(ts);
  const dayRets = dailyReturns(ts, equity);
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

  const { periods } = drawdownPeriods(ts, equity);
  let maxDd = 0;
  for (let i = 0, peak = -Infinity; i < n; i++) {
    if (equity[i] > peak) peak = equity[i];
    const d = 1 - equity[i] / peak;
    if (d > maxDd) maxDd = d;
  }

  // Trades.
  const m = trades.length;
  const rets = trades.map((t) => t.pnlPct / 100);
  const pls = trades.map((t) => t.pnl);
  const wins = pls.filter((p) => p > 0);
  const losses = pls.filter((p) => p < 0);
  const winRate = m ? wins.length / m : NaN;
  const posRetSum = rets.filter((r) => r > 0).reduce((a, b) => a + b, 0);
  const negRetSum = rets.filter((r) => r < 0).reduce((a, b) => a + b, 0);
  const plStd = Math.sqrt(variance(pls));
  const held = new Uint8Array(n);
  for (const t of trades) {
    const a = Math.max(0, t.entryBar - firstBar);
    const b = Math.min(n - 1, t.exitBar - firstBar);
    for (let i = a; i <= b; i++) held[i] = 1;
  }
  let heldBars = 0;
  for (let i = 0; i < n; i++) heldBars += held[i];

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
    maxDrawdownDurationDays: periods.length ? maxOf(periods.map((p) => p.durationMs)) / DAY_MS : null,
    avgDrawdownPct: periods.length ? -mean(periods.map((p) => p.peak)) * 100 : null,
    exposurePct: n ? (heldBars / n) * 100 : 0,
    trades: m,
    winRatePct: m ? winRate * 100 : null,
    bestTradePct: m ? maxOf(rets) * 100 : null,
    worstTradePct: m ? -maxOf(rets.map((r) => -r)) * 100 : null,
    avgTradePct: m ? pct(geometricMean(rets)) : null,
    profitFactor: negRetSum < 0 ? fin(posRetSum / -negRetSum) : null,
    expectancyPct: m ? pct(mean(rets)) : null,
    sqn: m >= 2 && plStd > 0 ? fin((Math.sqrt(m) * mean(pls)) / plStd) : null,
    kelly: wins.length && losses.length ? fin(winRate - (1 - winRate) / (mean(wins) / -mean(losses))) : null,
    feesPaid,
  };
}
