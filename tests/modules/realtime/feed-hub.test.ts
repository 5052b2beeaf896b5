/**
 * The ref-counted hub against an in-memory FeedSource (our own interface; the ccxt path is covered end to end in
 * realtime.test.ts): sharing, closing on last release, failed opens, restart after an upstream failure.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createFeedHub, type FeedHandle, type FeedKey, type FeedSource } from '../../../src/modules/realtime/feed-hub.js';
import { renderFeedMessage } from '../../../src/modules/realtime/realtime.service.js';
import { unprocessable } from '../../../src/errors.js';
import { eventually } from './ws-client.js';

/** A stream whose items and failure the test pushes. */
function controllableStream() {
  const items: unknown[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let ended = false;
  const stream = {
    async *[Symbol.asyncIterator]() {
      while (!ended) {
        if (failure) throw failure;
        if (items.length) {
          yield items.shift();
          continue;
        }
        await new Promise<void>((r) => (wake = r));
      }
    },
    async close() {
      ended = true;
      wake?.();
    },
  };
  return {
    stream,
    push(item: unknown) {
      items.push(item);
      wake?.();
    },
    fail(err: Error) {
      failure = err;
      wake?.();
    },
  };
}

function memorySource() {
  const opened: Array<{ key: FeedKey; control: ReturnType<typeof controllableStream>; closed: boolean }> = [];
  let gate: Promise<void> = Promise.resolve();
  let refuse: Error | undefined;
  const source: FeedSource = {
    async open(key): Promise<FeedHandle> {
      await gate;
      if (refuse) throw refuse;
      const control = controllableStream();
      const entry = { key, control, closed: false };
      opened.push(entry);
      return {
        stream: control.stream,
        async close() {
          entry.closed = true;
          await control.stream.close();
        },
      };
    },
  };
  return {
    source,
    opened,
    hold() {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return release;
    },
    refuseWith(err: Error | undefined) {
      refuse = err;
    },
  };
}

const KEY: FeedKey = { exchange: 'binance', channel: 'ticker', symbol: 'BTC/USDT' };

describe('feed hub', () => {
  test('subscribers of one key share one upstream; the last release closes it', async () => {
    const mem = memorySource();
    const hub = createFeedHub({ source: mem.source, render: renderFeedMessage });
    const a: string[] = [];
    const b: string[] = [];
    const subA = hub.subscribe(KEY, (text) => a.push(text));
    const subB = hub.subscribe(KEY, (text) => b.push(text));
    await Promise.all([subA.ready, subB.ready]);
    assert.equal(mem.opened.length, 1);
    mem.opened[0]!.control.push({ last: '1' });
    await eventually(() => a.length === 1 && b.length === 1, 'both receive');
    assert.deepEqual(JSON.parse(a[0]!), { type: 'ticker', exchange: 'binance', symbol: 'BTC/USDT', data: { last: '1' } });
    assert.equal(a[0], b[0], 'serialized once, same text');

    subA.release();
    subA.release(); // idempotent
    assert.equal(mem.opened[0]!.closed, false);
    assert.equal(hub.feeds()[0]!.listeners, 1);
    subB.release();
    await eventually(() => mem.opened[0]!.closed, 'upstream closed');
    assert.equal(hub.feeds().length, 0);
    await hub.close();
  });

  test('a failed open rejects every waiting subscriber and leaves no feed behind; the next subscribe retries', async () => {
    const mem = memorySource();
    const hub = createFeedHub({ source: mem.source, render: renderFeedMessage });
    mem.refuseWith(unprocessable('binance has no spot market XRP/USDT', 'EXCHANGE_BAD_SYMBOL'));
    const s1 = hub.subscribe(KEY, () => undefined);
    const s2 = hub.subscribe(KEY, () => undefined);
    await assert.rejects(s1.ready, { code: 'EXCHANGE_BAD_SYMBOL' });
    await assert.rejects(s2.ready, { code: 'EXCHANGE_BAD_SYMBOL' });
    assert.equal(hub.feeds().length, 0);
    mem.refuseWith(undefined);
    const s3 = hub.subscribe(KEY, () => undefined);
    await s3.ready;
    assert.equal(hub.feeds().length, 1);
    s3.release();
    await hub.close();
  });

  test('released while still opening: the upstream is closed as soon as it opens', async () => {
    const mem = memorySource();
    const hub = createFeedHub({ source: mem.source, render: renderFeedMessage });
    const release = mem.hold();
    const sub = hub.subscribe(KEY, () => undefined);
    sub.release();
    assert.equal(hub.feeds().length, 0);
    release();
    await sub.ready;
    await eventually(() => mem.opened.length === 1 && mem.opened[0]!.closed, 'closed after opening');
    await hub.close();
  });

  test('an upstream failure reopens the feed; subscribers keep receiving', async () => {
    const mem = memorySource();
    const warnings: string[] = [];
    const hub = createFeedHub({
      source: mem.source,
      render: renderFeedMessage,
      restartBaseMs: 5,
      log: { warn: (_o, msg) => warnings.push(msg) },
    });
    const got: string[] = [];
    const sub = hub.subscribe(KEY, (text) => got.push(text));
    await sub.ready;
    mem.opened[0]!.control.fail(new Error('connection reset'));
    await eventually(() => mem.opened.length === 2, 'reopened');
    assert.equal(mem.opened[0]!.closed, true, 'the failed stream was closed');
    assert.ok(warnings.includes('upstream feed failed; reopening'));
    assert.equal(hub.feeds()[0]!.restarts, 1);
    mem.opened[1]!.control.push({ last: '2' });
    await eventually(() => got.length === 1, 'delivered after the restart');
    sub.release();
    await eventually(() => mem.opened[1]!.closed, 'closed');
    await hub.close();
  });

  test('close() ends every feed and refuses new subscriptions', async () => {
    const mem = memorySource();
    const hub = createFeedHub({ source: mem.source, render: renderFeedMessage });
    await hub.subscribe(KEY, () => undefined).ready;
    await hub.subscribe({ ...KEY, channel: 'candles', timeframe: '1m' }, () => undefined).ready;
    await hub.close();
    assert.deepEqual(mem.opened.map((o) => o.closed), [true, true]);
    await assert.rejects(hub.subscribe(KEY, () => undefined).ready);
  });
});
