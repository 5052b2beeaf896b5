import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpProblem } from '../../../src/errors.js';
import { validateOrder, type CreateOrderRequest, type Market } from '../../../src/modules/exchanges/types.js';

const market: Market = {
  symbol: 'BTC/USDT',
  id: 'BTCUSDT',
  base: 'BTC',
  quote: 'USDT',
  type: 'spot',
  active: true,
  precision: { amount: '0.001', price: '0.1' },
  limits: { amount: { min: '0.001', max: '10' }, price: { min: '1', max: '1000000' }, cost: { min: '5', max: '100000' } },
};

const order = (o: Partial<CreateOrderRequest>): CreateOrderRequest => ({
  symbol: 'BTC/USDT',
  side: 'buy',
  type: 'limit',
  amount: '0.01',
  price: '50000',
  clientOrderId: 'c',
  ...o,
});

function limitOf(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HttpProblem);
    assert.equal(err.statusCode, 422);
    assert.equal(err.code, 'ORDER_LIMIT_VIOLATION');
    assert.match(err.message, /BTC\/USDT/);
    return String(err.extensions?.limit);
  }
  assert.fail('expected a limit violation');
}

describe('validateOrder', () => {
  test('accepts an order inside every limit', () => {
    validateOrder(market, order({}));
    validateOrder(market, order({ type: 'market', price: undefined }), '50000');
  });

  const cases: Array<[string, Partial<CreateOrderRequest>, string, string?]> = [
    ['amount below min', { amount: '0.0005' }, 'amount.precision'],
    ['amount not a step multiple', { amount: '0.0105' }, 'amount.precision'],
    ['amount above max', { amount: '11' }, 'amount.max'],
    ['price not a tick multiple', { price: '50000.05' }, 'price.precision'],
    ['price below min', { price: '0.5', amount: '10' }, 'price.min'],
    ['cost below min', { amount: '0.001', price: '1000' }, 'cost.min'],
    ['cost above max', { amount: '5', price: '50000' }, 'cost.max'],
    ['limit without price', { price: undefined }, 'price'],
    ['negative amount', { amount: '-1' }, 'amount'],
  ];
  for (const [name, o, limit] of cases) {
    test(`${name} -> ${limit}`, () => assert.equal(limitOf(() => validateOrder(market, order(o))), limit));
  }

  test('amount.min is named when the amount is a step multiple below the minimum', () => {
    const coarse = { ...market, limits: { ...market.limits, amount: { min: '0.01' } } };
    assert.equal(limitOf(() => validateOrder(coarse, order({ amount: '0.005' }))), 'amount.min');
  });

  test('market orders use the reference price for the cost check; swap cost uses contract size', () => {
    assert.equal(limitOf(() => validateOrder(market, order({ type: 'market', price: undefined, amount: '0.001' }), '1000')), 'cost.min');
    const swap: Market = { ...market, type: 'swap', contractSize: '0.01', precision: { amount: '1', price: '0.1' }, limits: { amount: { min: '1' }, price: {}, cost: { min: '5' } } };
    validateOrder(swap, order({ amount: '1', price: '50000' }));
    assert.equal(limitOf(() => validateOrder(swap, order({ amount: '1', price: '400' }))), 'cost.min');
  });
});
