import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LONG_ENTRY, LONG_EXIT, SHORT_ENTRY, SHORT_EXIT } from '../../workers/engine/evaluator.js';
import { roundLot, simulate, type ResolvedRisk, type ResolvedSizing, type SimSettings } from '../../workers/engine/simulate.js';

const near = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-9 * Math.max(1, Math.abs(b)), msg ?? `${a} != ${b}`);

interface Bar {
  o: number;
  h?: number;
  l?: number;
  c?: number;
}
/** Columns from bars; missing high/low/close default to a flat bar at the open. ts = bar index * 1 day. */
function columns(bars: Bar[]) {
  const f = (g: (b: Bar) => number) => Float64Array.from(bars, g);
  return {
    ts: Float64Array.from(bars, (_, i) => i * 86_400_000),
    open: f((b) => b.o),
    high: f((b) => b.h ?? Math.max(b.o, b.c ?? b.o)),
    low: f((b) => b.l ?? Math.min(b.o, b.c ?? b.o)),
    close: f((b) => b.c ?? b.o),
    volume: f(() => 1),
  };
}
const base: SimSettings = { initialCash: 1000, feeBps: 0, slippageBps: 0, fill: 'next_open', lotStep: 0, closeAtEnd: true };

function run(bars: Bar[], sig: Record<number, number>, opts: { settings?: Partial<SimSettings>; risk?: ResolvedRisk; sizing?: ResolvedSizing; trailAtr?: number[]; stopAtr?: number[] } = {}) {
  const cols = columns(bars);
  const signals = new Uint8Array(bars.length);
  for (const [i, s] of Object.entries(sig)) signals[Number(i)] = s;
  return simulate({
    cols,
    from: 0,
    to: bars.length,
    decisions: {
      signals,
      trailAtr: opts.trailAtr ? Float64Array.from(opts.trailAtr) : undefined,
      stopAtr: opts.stopAtr ? Float64Array.from(opts.stopAtr) : undefined,
    },
    sizing: opts.sizing ?? { kind: 'fraction', fraction: 1 },
    risk: opts.risk ?? {},
    settings: { ...base, ...opts.settings },
  });
}

const trend: Bar[] = [
  { o: 10, c: 10.5 },
  { o: 11, c: 11.5 },
  { o: 12, c: 12.5 },
  { o: 13, c: 13.5 },
  { o: 14, c: 14.5 },
];

describe('fills', () => {
  test('next_open: a decision on the close of bar i fills at the open of bar i+1', () => {
    const r = run(trend, { 1: LONG_ENTRY, 3: LONG_EXIT });
    assert.equal(r.trades.length, 1);
    const t = r.trades[0];
    assert.equal(t.entryBar, 2);
    assert.equal(t.entryPrice, 12);
    assert.equal(t.exitBar, 4);
    assert.equal(t.exitPrice, 14);
    assert.equal(t.exitReason, 'signal');
    near(t.size, 1000 / 12);
    near(t.pnl, (1000 / 12) * 2);
    near(t.pnlPct, (100 * 2) / 12);
    // equity marked at each close: flat, flat, 83.33 * 12.5, 83.33 * 13.5, cash after the exit
    const eq = Array.from(r.equity);
    [1000, 1000, (1000 / 12) * 12.5, (1000 / 12) * 13.5, (1000 / 12) * 14].forEach((e, i) => near(eq[i], e));
    assert.equal(t.entryTime, 2 * 86_400_000);
  });

  test('close: a decision on the close of bar i fills at that close', () => {
    const r = run(trend, { 1: LONG_ENTRY, 3: LONG_EXIT }, { settings: { fill: 'close' } });
    const t = r.trades[0];
    assert.deepEqual([t.entryBar, t.entryPrice, t.exitBar, t.exitPrice], [1, 11.5, 3, 13.5]);
    near(t.pnl, (1000 / 11.5) * 2);
    near(r.equity[4], 1000 + (1000 / 11.5) * 2);
  });

  test('fees on every fill notional and slippage against the trader', () => {
    const fee = 0.001; // 10 bps
    const r = run(trend, { 1: LONG_ENTRY, 3: LONG_EXIT }, { settings: { feeBps: 10, slippageBps: 20 } });
    const t = r.trades[0];
    const entry = 12 * 1.002; // buy 20 bps higher
    const exit = 14 * 0.998; // sell 20 bps lower
    const size = 1000 / (1 + fee) / entry; // all cash, fee included
    const entryFee = size * entry * fee;
    const exitFee = size * exit * fee;
    near(t.entryPrice, entry);
    near(t.exitPrice, exit);
    near(t.size, size);
    near(t.fees, entryFee + exitFee);
    near(r.feesPaid, entryFee + exitFee);
    near(t.pnl, size * (exit - entry) - entryFee - exitFee);
    near(r.equity[4], 1000 + t.pnl);
    near(r.equity[2], 1000 - size * entry - entryFee + size * 12.5); // ~0 cash left + position
  });

  test('short: sells at the bid side with slippage and profits when price falls', () => {
    const bars: Bar[] = [{ o: 20 }, { o: 20 }, { o: 20 }, { o: 15 }, { o: 16 }];
    const r = run(bars, { 1: SHORT_ENTRY, 2: SHORT_EXIT }, { settings: { slippageBps: 100 } });
    const t = r.trades[0];
    assert.equal(t.side, 'short');
    near(t.entryPrice, 20 * 0.99);
    near(t.exitPrice, 15 * 1.01);
    near(t.pnl, t.size * (20 * 0.99 - 15 * 1.01));
    near(t.size, 1000 / 19.8);
  });
});

describe('sizing', () => {
  test('lotStep rounds the size down', () => {
    assert.equal(run(trend, { 1: LONG_ENTRY }, { settings: { lotStep: 1 } }).trades[0].size, 83);
    near(run(trend, { 1: LONG_ENTRY }, { settings: { lotStep: 0.1 } }).trades[0].size, 83.3);
    near(run(trend, { 1: LONG_ENTRY }, { settings: { lotStep: 0 } }).trades[0].size, 1000 / 12);
    assert.equal(roundLot(0.3, 0.1), 0.30000000000000004); // 3 * 0.1: tolerant of binary fractions
    assert.equal(roundLot(0.99, 1), 0);
  });

  test('whole units: leftover cash stays in the account', () => {
    const r = run(trend, { 1: LONG_ENTRY, 3: LONG_EXIT }, { settings: { lotStep: 1 } });
    near(r.equity[2], 1000 - 83 * 12 + 83 * 12.5);
    near(r.equity[4], 1000 + 83 * 2);
  });

  test('an entry too small for one lot is skipped', () => {
    const r = run([{ o: 2000 }, { o: 2000 }, { o: 2000 }, { o: 2000 }], { 0: LONG_ENTRY }, { settings: { lotStep: 1 } });
    assert.equal(r.trades.length, 0);
    assert.deepEqual(Array.from(r.equity), [1000, 1000, 1000, 1000]);
  });

  test('fraction of equity and fixed quote amount', () => {
    near(run(trend, { 1: LONG_ENTRY }, { sizing: { kind: 'fraction', fraction: 0.25 } }).trades[0].size, 250 / 12);
    near(run(trend, { 1: LONG_ENTRY }, { sizing: { kind: 'quote', amount: 120 } }).trades[0].size, 10);
    // a quote amount above the cash is capped by the cash
    near(run(trend, { 1: LONG_ENTRY }, { sizing: { kind: 'quote', amount: 5000 } }).trades[0].size, 1000 / 12);
  });
});

describe('stops and targets', () => {
  const flat = (o: number, h: number, l: number): Bar => ({ o, h, l, c: o });

  test('stop-loss hit inside a bar fills at the stop price', () => {
    const r = run([flat(100, 100, 100), flat(100, 101, 99), flat(98, 99, 94), flat(97, 97, 97)], { 0: LONG_ENTRY }, { risk: { stopLoss: { kind: 'percent', percent: 5 } } });
    const t = r.trades[0];
    assert.deepEqual([t.exitBar, t.exitPrice, t.exitReason], [2, 95, 'stopLoss']);
  });

  test('a gap through the stop fills at the open', () => {
    const r = run([flat(100, 100, 100), flat(100, 101, 99), flat(90, 92, 88), flat(97, 97, 97)], { 0: LONG_ENTRY }, { risk: { stopLoss: { kind: 'percent', percent: 5 } } });
    assert.deepEqual([r.trades[0].exitPrice, r.trades[0].exitReason], [90, 'stopLoss']);
  });

  test('stop and target both inside one bar: the stop is assumed first', () => {
    const risk: ResolvedRisk = { stopLoss: { kind: 'percent', percent: 5 }, takeProfit: { kind: 'percent', percent: 10 } };
    const r = run([flat(100, 100, 100), flat(100, 101, 99), flat(100, 111, 94), flat(97, 97, 97)], { 0: LONG_ENTRY }, { risk });
    assert.deepEqual([r.trades[0].exitPrice, r.trades[0].exitReason], [95, 'stopLoss']);
  });

  test('take-profit inside a bar fills at the target, a gap above it at the open', () => {
    const risk: ResolvedRisk = { stopLoss: { kind: 'percent', percent: 5 }, takeProfit: { kind: 'percent', percent: 10 } };
    const inside = run([flat(100, 100, 100), flat(100, 101, 99), flat(105, 111, 99), flat(97, 97, 97)], { 0: LONG_ENTRY }, { risk });
    assert.deepEqual([inside.trades[0].exitBar, inside.trades[0].exitPrice, inside.trades[0].exitReason], [2, 110, 'takeProfit']);
    const gap = run([flat(100, 100, 100), flat(100, 101, 99), flat(115, 116, 114), flat(97, 97, 97)], { 0: LONG_ENTRY }, { risk });
    assert.deepEqual([gap.trades[0].exitPrice, gap.trades[0].exitReason], [115, 'takeProfit']);
  });

  test('next_open entry: the entry bar itself is checked after the fill', () => {
    const r = run([flat(100, 100, 100), flat(100, 101, 94), flat(97, 97, 97)], { 0: LONG_ENTRY }, { risk: { stopLoss: { kind: 'percent', percent: 5 } } });
    assert.deepEqual([r.trades[0].entryBar, r.trades[0].exitBar, r.trades[0].exitPrice], [1, 1, 95]);
  });

  test('fill on close: levels are checked from the next bar on', () => {
    const r = run([flat(100, 100, 94), flat(100, 101, 99), flat(98, 98, 94), flat(97, 97, 97)], { 0: LONG_ENTRY }, { settings: { fill: 'close' }, risk: { stopLoss: { kind: 'percent', percent: 5 } } });
    assert.deepEqual([r.trades[0].entryBar, r.trades[0].exitBar, r.trades[0].exitPrice], [0, 2, 95]);
  });

  test('short stop-loss and take-profit mirror the long ones', () => {
    const risk: ResolvedRisk = { stopLoss: { kind: 'percent', percent: 5 }, takeProfit: { kind: 'percent', percent: 10 } };
    const stopped = run([flat(100, 100, 100), flat(100, 101, 99), flat(102, 106, 101), flat(97, 97, 97)], { 0: SHORT_ENTRY }, { risk });
    assert.deepEqual([stopped.trades[0].exitPrice, stopped.trades[0].exitReason], [105, 'stopLoss']);
    const target = run([flat(100, 100, 100), flat(100, 101, 99), flat(95, 96, 89), flat(97, 97, 97)], { 0: SHORT_ENTRY }, { risk });
    assert.deepEqual([target.trades[0].exitPrice, target.trades[0].exitReason], [90, 'takeProfit']);
    near(target.trades[0].pnl, (1000 / 100) * 10);
  });

  test('slippage applies to stop fills too', () => {
    const r = run([flat(100, 100, 100), flat(100, 101, 99), flat(98, 99, 94), flat(97, 97, 97)], { 0: LONG_ENTRY }, { settings: { slippageBps: 100 }, risk: { stopLoss: { kind: 'percent', percent: 5 } } });
    // entry 101, stop 5% below the fill = 95.95, sold 1% lower
    near(r.trades[0].entryPrice, 101);
    near(r.trades[0].exitPrice, 101 * 0.95 * 0.99);
  });

  test('ATR stop distance uses the ATR at the decision bar', () => {
    const r = run([flat(100, 100, 100), flat(100, 101, 99), flat(98, 99, 93), flat(97, 97, 97)], { 0: LONG_ENTRY }, { risk: { stopLoss: { kind: 'atr', multiple: 2 } }, stopAtr: [3, 9, 9, 9] });
    assert.deepEqual([r.trades[0].exitPrice, r.trades[0].exitReason], [94, 'stopLoss']);
  });

  test('trailing stop (percent) follows the best high since entry, up to the previous bar', () => {
    const bars = [flat(100, 100, 100), flat(100, 105, 99), flat(110, 120, 100), flat(115, 116, 107), flat(100, 100, 100)];
    const r = run(bars, { 0: LONG_ENTRY }, { risk: { trailingStop: { kind: 'percent', percent: 10 } } });
    // bar1: level 90 (best 100), best -> 105; bar2: level 94.5, best -> 120; bar3: level 108 hit (low 107)
    assert.deepEqual([r.trades[0].exitBar, r.trades[0].exitReason], [3, 'trailingStop']);
    near(r.trades[0].exitPrice, 108);
  });

  test('trailing stop (ATR) and the tighter of fixed and trailing stops wins', () => {
    const bars = [flat(100, 100, 100), flat(100, 110, 99), flat(108, 109, 103), flat(100, 100, 100)];
    // trail distance 3 * 1 = 3 -> level after bar1 = 107; fixed stop 5% = 95
    const r = run(bars, { 0: LONG_ENTRY }, { risk: { stopLoss: { kind: 'percent', percent: 5 }, trailingStop: { kind: 'atr', multiple: 3 } }, trailAtr: [1, 1, 1, 1] });
    assert.deepEqual([r.trades[0].exitBar, r.trades[0].exitPrice, r.trades[0].exitReason], [2, 107, 'trailingStop']);
  });

  test('short trailing stop follows the lowest low', () => {
    const bars = [flat(100, 100, 100), flat(100, 101, 90), flat(92, 95, 91), flat(100, 100, 100)];
    const r = run(bars, { 0: SHORT_ENTRY }, { risk: { trailingStop: { kind: 'percent', percent: 5 } } });
    // bar1: level 105, best -> 90; bar2: level 94.5, high 95 -> stopped at 94.5
    near(r.trades[0].exitPrice, 94.5);
    assert.equal(r.trades[0].exitReason, 'trailingStop');
  });
});

describe('reversal and end of data', () => {
  const bars: Bar[] = [{ o: 10 }, { o: 10 }, { o: 10 }, { o: 10 }, { o: 20 }, { o: 15 }];

  test('a reversal closes the position first, then sizes the new one from the resulting cash', () => {
    const r = run(bars, { 1: LONG_ENTRY, 3: SHORT_ENTRY });
    assert.equal(r.trades.length, 2);
    const [long, short] = r.trades;
    assert.deepEqual([long.side, long.entryPrice, long.exitPrice, long.exitReason], ['long', 10, 20, 'reverse']);
    near(long.pnl, 1000);
    assert.deepEqual([short.side, short.entryBar, short.entryPrice], ['short', 4, 20]);
    near(short.size, 2000 / 20);
    // closeAtEnd: closed at the last bar's open
    assert.deepEqual([short.exitBar, short.exitPrice, short.exitReason], [5, 15, 'end']);
    near(short.pnl, 100 * 5);
    near(r.equity[5], 2500);
    assert.equal(r.openPosition, null);
  });

  test('closeAtEnd false leaves the position open, marked at the last close, out of the trades list', () => {
    const r = run(bars, { 1: LONG_ENTRY }, { settings: { closeAtEnd: false } });
    assert.equal(r.trades.length, 0);
    assert.deepEqual(r.openPosition, { side: 'long', size: 100, entryBar: 2, entryPrice: 10 });
    near(r.equity[5], 1500);
  });

  test('an entry decided on the next-to-last bar is dropped when closeAtEnd is on', () => {
    const r = run(bars, { 4: LONG_ENTRY });
    assert.equal(r.trades.length, 0);
    near(r.equity[5], 1000);
  });

  test('a decision on the last bar with next_open never fills', () => {
    const r = run(bars, { 5: LONG_ENTRY }, { settings: { closeAtEnd: false } });
    assert.equal(r.trades.length, 0);
    assert.equal(r.openPosition, null);
  });

  test('a reversal decided on the next-to-last bar only closes', () => {
    const r = run(bars, { 1: LONG_ENTRY, 4: SHORT_ENTRY });
    assert.equal(r.trades.length, 1);
    assert.deepEqual([r.trades[0].exitBar, r.trades[0].exitPrice, r.trades[0].exitReason], [5, 15, 'reverse']);
  });

  test('entries on the side already held are ignored; both entries at once do nothing', () => {
    const r = run(trend, { 0: LONG_ENTRY, 1: LONG_ENTRY, 2: LONG_ENTRY | SHORT_ENTRY });
    assert.equal(r.trades.length, 1);
    assert.equal(r.trades[0].entryBar, 1);
    assert.equal(r.trades[0].exitReason, 'end');
    assert.equal(run(trend, { 0: LONG_ENTRY | SHORT_ENTRY }).trades.length, 0);
  });
});
