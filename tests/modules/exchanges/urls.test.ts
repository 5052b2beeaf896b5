import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ccxt from 'ccxt';
import { HttpProblem } from '../../../src/errors.js';
import { applyUrlOverrides, parseExchangeUrls, rebaseUrl } from '../../../src/modules/exchanges/urls.js';

function collect(node: unknown, out: string[] = []): string[] {
  if (typeof node === 'string') out.push(node);
  else if (node && typeof node === 'object') for (const v of Object.values(node)) collect(v, out);
  return out;
}

describe('parseExchangeUrls', () => {
  test('a string is the REST override; objects give rest and ws', () => {
    const parsed = parseExchangeUrls(
      JSON.stringify({ binance: 'http://127.0.0.1:9100', okx: { rest: 'http://127.0.0.1:9200', ws: 'ws://127.0.0.1:9200' }, bitget: { ws: 'wss://proxy.local/bitget' } }),
    );
    assert.deepEqual(parsed, {
      binance: { rest: 'http://127.0.0.1:9100' },
      okx: { rest: 'http://127.0.0.1:9200', ws: 'ws://127.0.0.1:9200' },
      bitget: { ws: 'wss://proxy.local/bitget' },
    });
  });

  test('empty or missing means no overrides', () => {
    assert.deepEqual(parseExchangeUrls(undefined), {});
    assert.deepEqual(parseExchangeUrls('  '), {});
  });

  for (const [name, input] of [
    ['invalid JSON', '{nope'],
    ['unknown exchange', '{"kraken":"http://x"}'],
    ['non-http REST URL', '{"binance":"ftp://x"}'],
    ['http URL as ws', '{"okx":{"ws":"http://x"}}'],
    ['extra keys', '{"okx":{"rest":"http://x","grpc":"http://y"}}'],
  ] as const) {
    test(`rejects ${name} with 400 INVALID_EXCHANGE_URLS`, () => {
      assert.throws(
        () => parseExchangeUrls(input),
        (err: unknown) => err instanceof HttpProblem && err.statusCode === 400 && err.code === 'INVALID_EXCHANGE_URLS',
      );
    });
  }
});

describe('applyUrlOverrides', () => {
  test('rebaseUrl swaps scheme+host+port and keeps the path', () => {
    assert.equal(rebaseUrl('https://fapi.binance.com/fapi/v1', 'http://127.0.0.1:9'), 'http://127.0.0.1:9/fapi/v1');
    assert.equal(rebaseUrl('wss://stream.binance.com:9443/ws', 'ws://127.0.0.1:9/'), 'ws://127.0.0.1:9/ws');
    assert.equal(rebaseUrl('https://api.{hostname}', 'http://h:1/prefix'), 'http://h:1/prefix');
  });

  test('rewrites every REST and nested ws URL of ccxt.pro binance, keeping paths', () => {
    const exchange = new ccxt.pro.binance();
    const before = collect(exchange.urls.api);
    applyUrlOverrides(exchange as never, { rest: 'http://127.0.0.1:9100', ws: 'ws://127.0.0.1:9101' });
    const api = exchange.urls.api as Record<string, any>;
    assert.equal(api.public, 'http://127.0.0.1:9100/api/v3');
    assert.equal(api.fapiPrivate, 'http://127.0.0.1:9100/fapi/v1');
    assert.equal(api.sapi, 'http://127.0.0.1:9100/sapi/v1');
    assert.equal(api.ws.spot, 'ws://127.0.0.1:9101/ws');
    assert.equal(api.ws['ws-api'].spot, 'ws://127.0.0.1:9101/ws-api/v3');
    const after = collect(exchange.urls.api);
    assert.equal(after.length, before.length);
    for (const url of after) assert.match(url, /^(http|ws):\/\/127\.0\.0\.1:910[01]\//, url);
  });

  test('OKX and Bitget {hostname} templates are replaced too', () => {
    const okx = new ccxt.pro.okx();
    applyUrlOverrides(okx as never, { rest: 'http://127.0.0.1:9200', ws: 'ws://127.0.0.1:9201' });
    assert.equal((okx.urls.api as any).rest, 'http://127.0.0.1:9200');
    assert.equal((okx.urls.api as any).ws, 'ws://127.0.0.1:9201/ws/v5');
    const bitget = new ccxt.pro.bitget();
    applyUrlOverrides(bitget as never, { rest: 'http://127.0.0.1:9300' });
    assert.equal((bitget.urls.api as any).spot, 'http://127.0.0.1:9300');
    assert.equal((bitget.urls.api as any).ws.public, 'wss://ws.bitget.com/v2/ws/public', 'no ws override: ws untouched');
  });
});
