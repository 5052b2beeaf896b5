import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parseStrategy, resolveParams, strategyJsonSchema, type StrategyDoc } from '../../workers/engine/dsl.js';

const example = (name: string) => JSON.parse(readFileSync(new URL(`../../examples/strategies/${name}.json`, import.meta.url), 'utf8'));
const EXAMPLES = ['sma-cross', 'rsi-mean-reversion', 'breakout-atr'];

/** A valid base document; each test breaks one thing. */
const base = (): Record<string, any> => ({
  version: 1,
  name: 'test',
  params: { fast: { default: 10, min: 2, max: 50, step: 1 }, level: { default: 30, min: 0, max: 100 } },
  indicators: { fastMa: { type: 'sma', period: { param: 'fast' } }, rsi: { type: 'rsi', period: 14 }, atr: { type: 'atr', period: 14 } },
  rules: { long: { entry: { op: 'crossesAbove', left: { indicator: 'fastMa' }, right: { price: 'close' } } } },
});

function issuesOf(doc: unknown) {
  const r = parseStrategy(doc);
  assert.equal(r.ok, false, 'expected the document to be rejected');
  return (r as { ok: false; issues: { path: string; message: string }[] }).issues;
}
const paths = (doc: unknown) => issuesOf(doc).map((i) => i.path);

describe('strategy DSL validation', () => {
  test('the examples validate', () => {
    for (const name of EXAMPLES) {
      const r = parseStrategy(example(name));
      assert.ok(r.ok, `${name}: ${JSON.stringify(!r.ok && r.issues)}`);
    }
    assert.ok(parseStrategy(base()).ok);
  });

  test('unknown indicator reference: path of the operand', () => {
    const d = base();
    d.rules.long.entry.left = { indicator: 'nope' };
    const issues = issuesOf(d);
    assert.deepEqual(issues.map((i) => i.path), ['/rules/long/entry/left']);
    assert.match(issues[0].message, /unknown indicator "nope"/);
  });

  test('unknown param in an indicator period and in a nested condition', () => {
    const d = base();
    d.indicators.fastMa.period = { param: 'slow' };
    d.rules.long.exit = { op: 'not', condition: { op: 'and', conditions: [{ op: 'gt', left: { indicator: 'rsi' }, right: { param: 'missing' } }] } };
    assert.deepEqual(paths(d), ['/indicators/fastMa/period', '/rules/long/exit/condition/conditions/0/right']);
  });

  test('cycles between indicators are rejected at the closing reference', () => {
    const d = base();
    d.indicators.a = { type: 'sma', period: 3, source: { indicator: 'b' } };
    d.indicators.b = { type: 'ema', period: 3, source: { indicator: 'a' } };
    const issues = issuesOf(d);
    assert.deepEqual(issues.map((i) => i.path), ['/indicators/b/source']);
    assert.match(issues[0].message, /cycle/);
    const self = base();
    self.indicators.s = { type: 'sma', period: 3, source: { indicator: 's' } };
    assert.deepEqual(paths(self), ['/indicators/s/source']);
  });

  test('schema errors carry JSON pointers', () => {
    const d = base();
    d.rules.long.entry = { op: 'and', conditions: [{ op: 'gt', left: { foo: 1 }, right: 5 }, { op: 'between', left: 1, right: 2 }] };
    d.indicators.bad = { type: 'sma' };
    d.extra = true;
    const p = paths(d);
    assert.ok(p.includes('/rules/long/entry/conditions/0/left'), p.join());
    assert.ok(p.includes('/rules/long/entry/conditions/1/op'), p.join());
    assert.ok(p.includes('/indicators/bad/period'), p.join());
    assert.ok(p.some((x) => x === '' || x === '/'), p.join()); // unknown top-level key
  });

  test('wrong version, missing rules, wrong output, non-ATR risk indicator', () => {
    assert.deepEqual(paths({ ...base(), version: 2 }), ['/version']);
    assert.deepEqual(paths({ ...base(), rules: {} }), ['/rules']);
    const out = base();
    out.rules.long.entry.left = { indicator: 'rsi', output: 'signal' };
    assert.deepEqual(paths(out), ['/rules/long/entry/left/output']);
    const risk = base();
    risk.risk = { stopLoss: { type: 'atr', indicator: 'rsi', multiple: 2 }, takeProfit: { type: 'atr', indicator: 'zzz', multiple: 2 } };
    assert.deepEqual(paths(risk), ['/risk/stopLoss/indicator', '/risk/takeProfit/indicator']);
  });

  test('parameter ranges and number constraints', () => {
    const d = base();
    d.params.fast.default = 100;
    assert.deepEqual(paths(d), ['/params/fast/default']);
    const per = base();
    per.indicators.rsi.period = 2.5;
    assert.deepEqual(paths(per), ['/indicators/rsi/period']);
    const frac = base();
    frac.sizing = { type: 'fraction', fraction: 1.5 };
    assert.deepEqual(paths(frac), ['/sizing/fraction']);
  });

  test('resolveParams: defaults, overrides, unknown names, out of range, off grid, invalid where used', () => {
    const r = parseStrategy(base());
    assert.ok(r.ok);
    const doc = r.value as StrategyDoc;
    assert.deepEqual(resolveParams(doc, {}), { ok: true, value: { fast: 10, level: 30 } });
    assert.deepEqual(resolveParams(doc, { fast: 20 }), { ok: true, value: { fast: 20, level: 30 } });
    const bad = resolveParams(doc, { nope: 1, level: 101, fast: 2.5 });
    assert.equal(bad.ok, false);
    assert.deepEqual(
      !bad.ok && bad.issues.map((i) => i.path),
      ['/params/nope', '/params/level', '/params/fast'],
    );
    // a value in range without a step, but invalid as a period where it is used
    const noStep = parseStrategy({ ...base(), params: { ...base().params, fast: { default: 10, min: 1, max: 50 } } });
    assert.ok(noStep.ok);
    const used = resolveParams(noStep.value, { fast: 7.5 });
    assert.deepEqual(!used.ok && used.issues.map((i) => i.path), ['/indicators/fastMa/period']);
  });

  test('JSON Schema export', () => {
    const schema = strategyJsonSchema() as any;
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(schema.type, 'object');
    assert.deepEqual(schema.required.sort(), ['name', 'rules', 'version']);
    assert.equal(schema.properties.version.const, 1);
    const text = JSON.stringify(schema);
    for (const word of ['crossesAbove', 'crossesBelow', 'bbands', 'macd', 'trailingStop', 'takeProfit', 'highest', 'roc']) assert.ok(text.includes(word), word);
    // recursion (and/or/not) is expressed with references, so the export is finite and serialisable
    assert.ok(text.length < 200_000);
  });

  test('the exported JSON Schema accepts the examples and rejects broken documents (Ajv, draft 2020-12)', () => {
    // ajv comes with Fastify; the schema must be usable by any standard validator, not only by zod.
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const validate = ajv.compile(strategyJsonSchema());
    for (const name of EXAMPLES) assert.ok(validate(example(name)), `${name}: ${JSON.stringify(validate.errors)}`);
    const bad = base();
    bad.rules.long.entry = { op: 'or', conditions: [{ op: 'gt', left: { price: 'close' }, right: { oops: 1 } }] };
    assert.equal(validate(bad), false);
    assert.equal(validate({ ...base(), version: 2 }), false);
  });
});
