import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { errors } from 'ccxt';
import { HttpProblem } from '../../../src/errors.js';
import {
  OrderOutcomeUnknownError,
  isOrderOutcomeUnknown,
  limitFromMessage,
  mapExchangeError,
  outcomeOf,
  scrubMessage,
} from '../../../src/modules/exchanges/errors.js';

const SECRET = 'sEcReT-1234567890';
const KEY = 'aPiKeY-0987654321';
const SIGNED_URL = `https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=3f9a0c7d1e2b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f`;

const ctx = { exchange: 'binance', operation: 'fetchBalance', secrets: [KEY, SECRET] };

describe('mapExchangeError', () => {
  const cases: Array<[string, Error, number, string]> = [
    ['AuthenticationError', new errors.AuthenticationError('binance {"code":-2015,"msg":"Invalid API-key"}'), 422, 'EXCHANGE_AUTH_FAILED'],
    ['PermissionDenied', new errors.PermissionDenied('binance no permission'), 422, 'EXCHANGE_AUTH_FAILED'],
    ['InsufficientFunds', new errors.InsufficientFunds('binance insufficient'), 422, 'EXCHANGE_INSUFFICIENT_FUNDS'],
    ['InvalidOrder', new errors.InvalidOrder('binance Filter failure: NOTIONAL'), 422, 'EXCHANGE_INVALID_ORDER'],
    ['OrderNotFound', new errors.OrderNotFound('binance Order does not exist.'), 404, 'EXCHANGE_ORDER_NOT_FOUND'],
    ['RateLimitExceeded', new errors.RateLimitExceeded('binance 429'), 503, 'EXCHANGE_RATE_LIMITED'],
    ['DDoSProtection', new errors.DDoSProtection('binance 418'), 503, 'EXCHANGE_RATE_LIMITED'],
    ['RequestTimeout', new errors.RequestTimeout(`binance GET ${SIGNED_URL} request timed out (10000 ms)`), 504, 'EXCHANGE_TIMEOUT'],
    ['OnMaintenance', new errors.OnMaintenance('binance maintenance'), 503, 'EXCHANGE_UNAVAILABLE'],
    ['ExchangeNotAvailable', new errors.ExchangeNotAvailable('binance 503'), 503, 'EXCHANGE_UNAVAILABLE'],
    ['NetworkError', new errors.NetworkError(`binance GET ${SIGNED_URL} fetch failed`), 502, 'EXCHANGE_NETWORK_ERROR'],
    ['ExchangeError', new errors.ExchangeError('binance something'), 502, 'EXCHANGE_ERROR'],
  ];
  for (const [name, err, status, code] of cases) {
    test(`${name} -> ${status} ${code}`, () => {
      const problem = mapExchangeError(err, ctx);
      assert.ok(problem instanceof HttpProblem);
      assert.equal(problem.statusCode, status);
      assert.equal(problem.code, code);
      assert.match(problem.message, /^binance fetchBalance: /);
      assert.ok(!problem.message.includes('3f9a0c7d1e2b'), 'signature scrubbed');
    });
  }

  test('rate limits carry Retry-After from the exchange, or a default', () => {
    const fromHeader = mapExchangeError(new errors.RateLimitExceeded('x'), { ...ctx, retryAfterHeader: '12' });
    assert.equal(fromHeader.headers?.['retry-after'], '12');
    const fallback = mapExchangeError(new errors.RateLimitExceeded('x'), { ...ctx, defaultRetryAfterSeconds: 3 });
    assert.equal(fallback.headers?.['retry-after'], '3');
  });

  test('the limit an InvalidOrder is about is named', () => {
    const problem = mapExchangeError(new errors.InvalidOrder('binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}'), { ...ctx, operation: 'createOrder' });
    assert.equal(problem.extensions?.limit, 'cost.min');
    assert.equal(limitFromMessage('okx {"sCode":"51020","sMsg":"Your order should meet or exceed the minimum order amount."}'), 'amount.min');
    assert.equal(limitFromMessage('binance Filter failure: LOT_SIZE'), 'amount.precision');
    assert.equal(limitFromMessage('bitget {"code":"45110","msg":"less than the minimum amount 5 USDT"}'), 'cost.min');
    assert.equal(limitFromMessage('something else'), undefined);
  });

  test('createOrder outcome: unknown after timeouts, network errors and 5xx; rejected otherwise', () => {
    const order = { ...ctx, operation: 'createOrder', clientOrderId: 'cid-1' };
    for (const err of [new errors.RequestTimeout('t'), new errors.NetworkError('n'), new errors.ExchangeNotAvailable('5xx')]) {
      const problem = mapExchangeError(err, order);
      assert.ok(problem instanceof OrderOutcomeUnknownError);
      assert.ok(isOrderOutcomeUnknown(problem));
      assert.equal(problem.clientOrderId, 'cid-1');
      assert.equal(problem.extensions?.outcome, 'unknown');
    }
    for (const err of [new errors.InsufficientFunds('f'), new errors.RateLimitExceeded('r'), new errors.AuthenticationError('a'), new errors.OnMaintenance('m')]) {
      assert.equal(isOrderOutcomeUnknown(mapExchangeError(err, order)), false, err.constructor.name);
      assert.equal(outcomeOf(err), 'rejected');
    }
    assert.equal(isOrderOutcomeUnknown(mapExchangeError(new errors.RequestTimeout('t'), ctx)), false, 'only createOrder');
  });

  test('HttpProblems pass through unchanged', () => {
    const original = new HttpProblem(418, 'TEAPOT', 'I am a teapot', 'short and stout');
    assert.equal(mapExchangeError(original, ctx), original);
  });
});

describe('scrubMessage', () => {
  test('removes query strings of URLs, signatures and known secrets', () => {
    const text = scrubMessage(`binance GET ${SIGNED_URL} failed for key ${KEY} with secret ${SECRET} signature=abcdef0123`, [KEY, SECRET]);
    assert.ok(!text.includes(KEY));
    assert.ok(!text.includes(SECRET));
    assert.ok(!text.includes('3f9a0c7d'));
    assert.ok(!text.includes('abcdef0123'));
    assert.match(text, /https:\/\/api\.binance\.com\/api\/v3\/order\?\[redacted\]/);
  });

  test('redacts header-like credentials (OK-ACCESS-SIGN, X-MBX-APIKEY)', () => {
    const text = scrubMessage('headers {"OK-ACCESS-SIGN":"c2lnbmF0dXJl","X-MBX-APIKEY":"abc123xyz"}');
    assert.ok(!text.includes('c2lnbmF0dXJl'));
    assert.ok(!text.includes('abc123xyz'));
  });

  test('truncates very long messages', () => {
    assert.ok(scrubMessage('x'.repeat(5000)).length < 400);
  });
});
