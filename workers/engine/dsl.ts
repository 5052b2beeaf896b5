/**
 * Strategy DSL, version 1: a declarative JSON document, defined once here in zod and exported as JSON Schema.
 *
 * Nothing in a strategy is ever executed as code. A document names indicators, parameters and conditions; the
 * evaluator (./evaluator.ts) compiles it into closures over typed state.
 *
 * Shape (see examples/strategies/*.json and docs/backtesting.md):
 *
 * ```json
 * {
 *   "version": 1,
 *   "name": "SMA cross",
 *   "params": { "fast": { "default": 10, "min": 2, "max": 50, "step": 1 } },
 *   "indicators": { "fastMa": { "type": "sma", "period": { "param": "fast" }, "source": "close" } },
 *   "rules": {
 *     "long":  { "entry": { "op": "crossesAbove", "left": { "indicator": "fastMa" }, "right": { "price": "close" } } },
 *     "short": { "entry": { "op": "crossesBelow", "left": { "indicator": "fastMa" }, "right": { "price": "close" } } }
 *   },
 *   "sizing": { "type": "fraction", "fraction": 1 },
 *   "risk": { "stopLoss": { "type": "percent", "percent": 2 } }
 * }
 * ```
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------------------------

const Name = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'names are 1-64 characters: letters, digits, _ (not starting with a digit)');

export const PRICE_FIELDS = ['open', 'high', 'low', 'close', 'volume'] as const;
export type PriceField = (typeof PRICE_FIELDS)[number];
const PriceFieldSchema = z.enum(PRICE_FIELDS);

/** A reference to a named parameter: `{ "param": "fast" }`. */
const ParamRef = z.strictObject({ param: Name }).describe('Use the value of a named parameter from "params".');

/** A number, or a named parameter. Accepted wherever the DSL wants a number (periods, thresholds, multiples...). */
export const NumberOrParam = z
  .union([z.number().refine(Number.isFinite, 'must be a finite number'), ParamRef], {
    error: 'expected a number or { "param": "<name>" }',
  })
  .meta({ id: 'StrategyNumberOrParam', description: 'A number, or { "param": "<name>" } to use a named parameter.' });
export type NumberOrParam = z.infer<typeof NumberOrParam>;

const BarsAgo = z
  .number()
  .int()
  .min(0)
  .max(1000)
  .optional()
  .describe('Use the value from this many closed bars ago (0 = the current bar, the default).');

/** Output of a multi-output indicator. */
export const INDICATOR_OUTPUTS = {
  sma: ['value'],
  ema: ['value'],
  rsi: ['value'],
  roc: ['value'],
  atr: ['value'],
  highest: ['value'],
  lowest: ['value'],
  macd: ['line', 'signal', 'hist'],
  bbands: ['upper', 'middle', 'lower'],
} as const;
export type IndicatorType = keyof typeof INDICATOR_OUTPUTS;
/** Output used when a reference names no output. */
export const DEFAULT_OUTPUT: Record<IndicatorType, string> = {
  sma: 'value',
  ema: 'value',
  rsi: 'value',
  roc: 'value',
  atr: 'value',
  highest: 'value',
  lowest: 'value',
  macd: 'line',
  bbands: 'middle',
};

const IndicatorRef = z
  .strictObject({
    indicator: Name.describe('Name of an indicator declared in "indicators".'),
    output: z
      .enum(['value', 'line', 'signal', 'hist', 'upper', 'middle', 'lower'])
      .optional()
      .describe('macd: line (default) | signal | hist; bbands: upper | middle (default) | lower; others: value.'),
    barsAgo: BarsAgo,
  })
  .describe('The value of a declared indicator.');

const PriceRef = z
  .strictObject({ price: PriceFieldSchema, barsAgo: BarsAgo })
  .describe('A field of the candle: open, high, low, close or volume.');

/** Anything that has a value on every bar. */
export const Operand = z
  .union([z.number().refine(Number.isFinite, 'must be a finite number'), ParamRef, IndicatorRef, PriceRef], {
    error: 'expected a number, { "param" }, { "indicator" } or { "price" }',
  })
  .meta({ id: 'StrategyOperand', description: 'A number, { "param": name }, { "indicator": name, "output"?, "barsAgo"? } or { "price": field, "barsAgo"? }.' });
export type Operand = z.infer<typeof Operand>;

/** Input series of an indicator: a price field name, or another indicator (chaining, e.g. an SMA of an RSI). */
const Source = z
  .union([PriceFieldSchema, PriceRef, IndicatorRef], {
    error: 'expected a price field name ("close"), { "price" } or { "indicator" }',
  })
  .meta({ id: 'StrategySource', description: 'Input series: "open" | "high" | "low" | "close" | "volume", or { "indicator": name, "output"? }.' });
export type Source = z.infer<typeof Source>;

// ---------------------------------------------------------------------------------------------------------------
// Indicators
// ---------------------------------------------------------------------------------------------------------------

const Period = NumberOrParam.describe('Look-back length in bars: an integer >= 1 (or a param resolving to one).');

const withSource = { source: Source.optional() };
const IndicatorSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sma'), period: Period, ...withSource }).describe('Simple moving average (default source close).'),
  z.strictObject({ type: z.literal('ema'), period: Period, ...withSource }).describe('Exponential moving average, alpha 2/(period+1), seeded with the SMA of the first period values.'),
  z.strictObject({ type: z.literal('rsi'), period: Period, ...withSource }).describe("Wilder's RSI, 0..100."),
  z.strictObject({ type: z.literal('roc'), period: Period, ...withSource }).describe('Rate of change in percent: 100 * (x - x[period]) / x[period].'),
  z.strictObject({ type: z.literal('atr'), period: Period }).describe("Wilder's average true range."),
  z.strictObject({ type: z.literal('highest'), period: Period, ...withSource }).describe('Highest source value over the last period bars including the current one (default source high).'),
  z.strictObject({ type: z.literal('lowest'), period: Period, ...withSource }).describe('Lowest source value over the last period bars including the current one (default source low).'),
  z
    .strictObject({ type: z.literal('macd'), fast: Period.optional(), slow: Period.optional(), signal: Period.optional(), ...withSource })
    .describe('MACD (defaults 12/26/9). Outputs: line (default), signal, hist.'),
  z
    .strictObject({ type: z.literal('bbands'), period: Period.optional(), stdDev: NumberOrParam.optional(), ...withSource })
    .describe('Bollinger bands (defaults period 20, stdDev 2, population standard deviation). Outputs: upper, middle (default), lower.'),
]);
export type IndicatorDef = z.infer<typeof IndicatorSchema>;

// ---------------------------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------------------------

export const COMPARE_OPS = ['gt', 'gte', 'lt', 'lte', 'eq', 'crossesAbove', 'crossesBelow'] as const;
export type CompareOp = (typeof COMPARE_OPS)[number];

export type Condition =
  | { op: CompareOp; left: Operand; right: Operand }
  | { op: 'and'; conditions: Condition[] }
  | { op: 'or'; conditions: Condition[] }
  | { op: 'not'; condition: Condition };

const CompareCondition = z
  .strictObject({ op: z.enum(COMPARE_OPS), left: Operand, right: Operand })
  .meta({
    id: 'StrategyCompareCondition',
    description:
      'gt/gte/lt/lte/eq compare left and right on the current bar. crossesAbove: left <= right on the previous bar and left > right now; crossesBelow mirrors it. Any undefined (warming-up) value makes the comparison false.',
  });
const AndCondition = z
  .strictObject({
    op: z.literal('and'),
    get conditions() {
      return z.array(ConditionSchema).min(1);
    },
  })
  .meta({ id: 'StrategyAndCondition', description: 'True when every condition is true.' });
const OrCondition = z
  .strictObject({
    op: z.literal('or'),
    get conditions() {
      return z.array(ConditionSchema).min(1);
    },
  })
  .meta({ id: 'StrategyOrCondition', description: 'True when at least one condition is true.' });
const NotCondition = z
  .strictObject({
    op: z.literal('not'),
    get condition() {
      return ConditionSchema;
    },
  })
  .meta({ id: 'StrategyNotCondition', description: 'True when the condition is false.' });

export const ConditionSchema: z.ZodType<Condition> = z
  .discriminatedUnion('op', [CompareCondition, AndCondition, OrCondition, NotCondition])
  .meta({ id: 'StrategyCondition', description: 'A comparison (gt, gte, lt, lte, eq, crossesAbove, crossesBelow) or and / or / not of conditions.' });

// ---------------------------------------------------------------------------------------------------------------
// Rules, sizing, risk, params
// ---------------------------------------------------------------------------------------------------------------

const SideRules = z
  .strictObject({
    entry: ConditionSchema.describe('Open a position on this side when true at the close of a bar.'),
    exit: ConditionSchema.optional().describe('Close the position on this side when true at the close of a bar.'),
  })
  .describe('Entry and optional exit rule of one side.');

const Sizing = z
  .discriminatedUnion('type', [
    z
      .strictObject({ type: z.literal('fraction'), fraction: NumberOrParam.describe('In (0, 1]: share of equity spent on an entry.') })
      .describe('Spend a fraction of equity (cash when flat) on each entry, fees included.'),
    z
      .strictObject({ type: z.literal('quote'), amount: NumberOrParam.describe('Quote-currency notional per entry (> 0).') })
      .describe('Buy or sell a fixed quote amount per entry, capped by the available cash.'),
  ])
  .describe('Position sizing. Default: { "type": "fraction", "fraction": 1 }.');
export type Sizing = z.infer<typeof Sizing>;

const PercentLevel = z.strictObject({ type: z.literal('percent'), percent: NumberOrParam.describe('Distance from the entry price in percent (> 0).') });
const AtrLevel = z.strictObject({
  type: z.literal('atr'),
  indicator: Name.describe('Name of an "atr" indicator declared in "indicators".'),
  multiple: NumberOrParam.describe('Distance = multiple x ATR at the decision bar of the entry (> 0).'),
});
const Level = z.discriminatedUnion('type', [PercentLevel, AtrLevel]).meta({ id: 'StrategyLevel', description: 'A distance from the entry price: { "type": "percent", "percent" } or { "type": "atr", "indicator", "multiple" }.' });
export type Level = z.infer<typeof Level>;

const Risk = z
  .strictObject({
    stopLoss: Level.optional().describe('Fixed stop below a long entry (above a short one).'),
    takeProfit: Level.optional().describe('Fixed target above a long entry (below a short one).'),
    trailingStop: Level.optional().describe('Stop that follows the best price reached since entry at this distance.'),
  })
  .describe('Protective exits, checked against the high/low of every bar after the entry fill.');
export type Risk = z.infer<typeof Risk>;

const ParamDef = z
  .strictObject({
    default: z.number().refine(Number.isFinite, 'must be a finite number'),
    min: z.number().refine(Number.isFinite, 'must be a finite number'),
    max: z.number().refine(Number.isFinite, 'must be a finite number'),
    step: z.number().positive().optional().describe('Grid step for optimisers; values must be min + k * step.'),
    description: z.string().max(500).optional(),
  })
  .describe('A tunable number with its allowed range.');
export type ParamDef = z.infer<typeof ParamDef>;

export const StrategySchema = z
  .strictObject({
    version: z.literal(1),
    name: z.string().min(1).max(200),
    description: z.string().max(4000).optional(),
    params: z.record(Name, ParamDef).optional().describe('Named tunable numbers, referenced as { "param": name }.'),
    indicators: z.record(Name, IndicatorSchema).optional().describe('Named indicators, referenced as { "indicator": name }.'),
    rules: z
      .strictObject({ long: SideRules.optional(), short: SideRules.optional() })
      .refine((r) => r.long !== undefined || r.short !== undefined, 'at least one of "long" or "short" is required'),
    sizing: Sizing.optional(),
    risk: Risk.optional(),
  })
  .meta({ title: 'Strategy', description: 'Declarative trading strategy, DSL version 1. Decisions are taken on the close of each bar.' });

export type StrategyDoc = z.infer<typeof StrategySchema>;

// ---------------------------------------------------------------------------------------------------------------
// Results and issues
// ---------------------------------------------------------------------------------------------------------------

export interface Issue {
  /** JSON pointer (RFC 6901) into the document, e.g. `/rules/long/entry/left`. */
  path: string;
  message: string;
}
export type Result<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

/** Resolved parameter values, one per declared param. */
export type ParamValues = Record<string, number>;

export function jsonPointer(path: readonly PropertyKey[]): string {
  return path.map((p) => '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** JSON Schema (draft 2020-12) of the strategy document, for the API docs and for the LLM prompt. */
export function strategyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(StrategySchema, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
}

/** Indicator output slots a reference may name. */
function outputsOf(type: IndicatorType): readonly string[] {
  return INDICATOR_OUTPUTS[type];
}

/**
 * Validate an unknown value as a strategy: schema first, then references (params, indicators, outputs), cycles
 * between indicators, parameter ranges, and finally the constraints on every number with the default params
 * (periods are integers >= 1, ...). Issues carry JSON-pointer paths.
 */
export function parseStrategy(doc: unknown): Result<StrategyDoc> {
  const parsed = StrategySchema.safeParse(doc);
  if (!parsed.success) {
    return { ok: false, issues: parsed.error.issues.map((i) => ({ path: jsonPointer(i.path), message: i.message })) };
  }
  const value = parsed.data;
  const issues = checkReferences(value);
  if (issues.length) return { ok: false, issues };
  const resolved = resolveParams(value, {});
  if (!resolved.ok) return resolved;
  return { ok: true, value };
}

/** Walk every operand / source / param reference of a parsed document. */
function checkReferences(doc: StrategyDoc): Issue[] {
  const issues: Issue[] = [];
  const params = doc.params ?? {};
  const indicators = doc.indicators ?? {};

  for (const [name, p] of Object.entries(params)) {
    const at = `/params/${name}`;
    if (p.min > p.max) issues.push({ path: `${at}/min`, message: `min (${p.min}) is greater than max (${p.max})` });
    else if (p.default < p.min || p.default > p.max)
      issues.push({ path: `${at}/default`, message: `default ${p.default} is outside [${p.min}, ${p.max}]` });
  }

  const checkNum = (n: NumberOrParam | undefined, at: string) => {
    if (n !== undefined && typeof n === 'object' && !(n.param in params))
      issues.push({ path: at, message: `unknown param "${n.param}"` });
  };
  const checkIndicatorRef = (ref: { indicator: string; output?: string }, at: string) => {
    const def = indicators[ref.indicator];
    if (!def) {
      issues.push({ path: at, message: `unknown indicator "${ref.indicator}"` });
      return;
    }
    if (ref.output !== undefined && !outputsOf(def.type).includes(ref.output))
      issues.push({
        path: `${at}/output`,
        message: `indicator "${ref.indicator}" (${def.type}) has no output "${ref.output}"; outputs: ${outputsOf(def.type).join(', ')}`,
      });
  };
  const checkOperand = (o: Operand, at: string) => {
    if (typeof o === 'number') return;
    if ('param' in o) checkNum(o, at);
    else if ('indicator' in o) checkIndicatorRef(o, at);
  };
  const checkCondition = (c: Condition, at: string) => {
    switch (c.op) {
      case 'and':
      case 'or':
        c.conditions.forEach((sub, i) => checkCondition(sub, `${at}/conditions/${i}`));
        break;
      case 'not':
        checkCondition(c.condition, `${at}/condition`);
        break;
      default:
        checkOperand(c.left, `${at}/left`);
        checkOperand(c.right, `${at}/right`);
    }
  };

  for (const [name, def] of Object.entries(indicators)) {
    const at = `/indicators/${name}`;
    for (const key of ['period', 'fast', 'slow', 'signal', 'stdDev'] as const) {
      checkNum(numericField(def, key), `${at}/${key}`);
    }
    if ('source' in def && def.source !== undefined && typeof def.source === 'object' && 'indicator' in def.source)
      checkIndicatorRef(def.source, `${at}/source`);
  }
  // Cycles between indicators (through "source"), reported at the source that closes the cycle.
  const state = new Map<string, 1 | 2>(); // 1 = on the stack, 2 = done
  const visit = (name: string): void => {
    state.set(name, 1);
    const src = sourceIndicator(indicators[name]);
    if (src !== undefined && src in indicators) {
      const s = state.get(src);
      if (s === 1) issues.push({ path: `/indicators/${name}/source`, message: `indicator cycle: "${name}" depends on "${src}", which depends on "${name}"` });
      else if (s === undefined) visit(src);
    }
    state.set(name, 2);
  };
  for (const name of Object.keys(indicators)) if (!state.has(name)) visit(name);

  for (const side of ['long', 'short'] as const) {
    const r = doc.rules[side];
    if (!r) continue;
    checkCondition(r.entry, `/rules/${side}/entry`);
    if (r.exit) checkCondition(r.exit, `/rules/${side}/exit`);
  }
  if (doc.sizing?.type === 'fraction') checkNum(doc.sizing.fraction, '/sizing/fraction');
  if (doc.sizing?.type === 'quote') checkNum(doc.sizing.amount, '/sizing/amount');
  for (const key of ['stopLoss', 'takeProfit', 'trailingStop'] as const) {
    const lvl = doc.risk?.[key];
    if (!lvl) continue;
    const at = `/risk/${key}`;
    if (lvl.type === 'percent') checkNum(lvl.percent, `${at}/percent`);
    else {
      checkNum(lvl.multiple, `${at}/multiple`);
      const def = indicators[lvl.indicator];
      if (!def) issues.push({ path: `${at}/indicator`, message: `unknown indicator "${lvl.indicator}"` });
      else if (def.type !== 'atr')
        issues.push({ path: `${at}/indicator`, message: `indicator "${lvl.indicator}" is a ${def.type}, an "atr" indicator is required` });
    }
  }
  return issues;
}

/** A numeric field (period, fast, slow, signal, stdDev) of an indicator, if it has one. */
function numericField(def: IndicatorDef, key: 'period' | 'fast' | 'slow' | 'signal' | 'stdDev'): NumberOrParam | undefined {
  return (def as unknown as Partial<Record<typeof key, NumberOrParam>>)[key];
}

export function sourceIndicator(def: IndicatorDef | undefined): string | undefined {
  if (!def || !('source' in def) || def.source === undefined || typeof def.source !== 'object') return undefined;
  return 'indicator' in def.source ? def.source.indicator : undefined;
}

/**
 * Resolve the parameter values of a (parsed) strategy: declared defaults, replaced by `overrides`.
 * Unknown names, values outside [min, max] or off the step grid, and numbers that become invalid where they are
 * used (a period that is not an integer >= 1, a fraction outside (0, 1], ...) are issues.
 */
export function resolveParams(doc: StrategyDoc, overrides: Record<string, number>): Result<ParamValues> {
  const issues: Issue[] = [];
  const declared = doc.params ?? {};
  const values: ParamValues = {};
  for (const [name, p] of Object.entries(declared)) values[name] = p.default;
  for (const [name, v] of Object.entries(overrides ?? {})) {
    const p = declared[name];
    const at = `/params/${name}`;
    if (!p) {
      issues.push({ path: at, message: `unknown param "${name}"` });
      continue;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      issues.push({ path: at, message: 'must be a finite number' });
      continue;
    }
    if (v < p.min || v > p.max) {
      issues.push({ path: at, message: `${v} is outside [${p.min}, ${p.max}]` });
      continue;
    }
    if (p.step !== undefined) {
      const k = (v - p.min) / p.step;
      if (Math.abs(k - Math.round(k)) > 1e-9) issues.push({ path: at, message: `${v} is not on the grid ${p.min} + k * ${p.step}` });
    }
    values[name] = v;
  }
  if (issues.length) return { ok: false, issues };

  const num = (n: NumberOrParam): number => (typeof n === 'number' ? n : values[n.param]);
  const need = (n: NumberOrParam | undefined, at: string, ok: (v: number) => boolean, what: string) => {
    if (n === undefined) return;
    const v = num(n);
    if (!ok(v)) {
      const via = typeof n === 'object' ? ` (param "${n.param}")` : '';
      issues.push({ path: at, message: `${v}${via}: ${what}` });
    }
  };
  const isPeriod = (v: number) => Number.isInteger(v) && v >= 1 && v <= 100_000;
  const positive = (v: number) => v > 0;
  for (const [name, def] of Object.entries(doc.indicators ?? {})) {
    const at = `/indicators/${name}`;
    for (const key of ['period', 'fast', 'slow', 'signal'] as const) {
      need(numericField(def, key), `${at}/${key}`, isPeriod, 'must be an integer period in [1, 100000]');
    }
    if (def.type === 'bbands') need(def.stdDev, `${at}/stdDev`, (v) => v >= 0, 'must be >= 0');
  }
  if (doc.sizing?.type === 'fraction') need(doc.sizing.fraction, '/sizing/fraction', (v) => v > 0 && v <= 1, 'must be in (0, 1]');
  if (doc.sizing?.type === 'quote') need(doc.sizing.amount, '/sizing/amount', positive, 'must be > 0');
  for (const key of ['stopLoss', 'takeProfit', 'trailingStop'] as const) {
    const lvl = doc.risk?.[key];
    if (!lvl) continue;
    if (lvl.type === 'percent')
      need(lvl.percent, `/risk/${key}/percent`, (v) => v > 0 && (key === 'takeProfit' || v < 100), key === 'takeProfit' ? 'must be > 0' : 'must be in (0, 100)');
    else need(lvl.multiple, `/risk/${key}/multiple`, positive, 'must be > 0');
  }
  return issues.length ? { ok: false, issues } : { ok: true, value: values };
}

/** Value of a number-or-param with resolved params. */
export function numberOf(n: NumberOrParam, params: ParamValues): number {
  return typeof n === 'number' ? n : params[n.param];
}
