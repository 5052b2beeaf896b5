import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import Fastify from 'fastify';
import { DeferredChildLogger, deferredChildLoggerFactory } from '../../src/plugins/request-logger.js';
import { REDACT_PATHS } from '../../src/logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) {
        const { time: _time, pid: _pid, hostname: _hostname, ...rest } = JSON.parse(l);
        lines.push(rest);
      }
      cb();
    },
  });
  return { lines, stream };
}

/** Runs the same calls on pino's own child and on the deferred one; both must write the same lines. */
function both(level: string, run: (log: pino.Logger) => void) {
  const out = [];
  for (const deferred of [false, true]) {
    const { lines, stream } = capture();
    const parent = pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, stream);
    const log = deferred ? (new DeferredChildLogger(parent, { reqId: 'r-1' }, {}) as unknown as pino.Logger) : parent.child({ reqId: 'r-1' });
    run(log);
    out.push(lines);
  }
  return out;
}

test('a deferred request logger writes exactly what pino\'s child writes', () => {
  for (const level of ['trace', 'info', 'warn', 'silent']) {
    const [real, deferred] = both(level, (log) => {
      log.info({ req: { url: '/x' } }, 'incoming request');
      log.debug('debug line');
      log.warn({ token: 'secret', nested: { password: 'p' } }, 'warned');
      log.error(new Error('boom'));
      log.child({ module: 'm' }).warn('from a child');
      assert.equal(log.isLevelEnabled('info'), level === 'trace' || level === 'info');
      assert.equal(log.level, level);
      log.level = 'debug';
      log.debug('after a level change');
      assert.equal(log.level, 'debug');
    });
    assert.deepEqual(deferred, real, level);
    assert.ok(real.length >= 1, `${level}: lines were written (${real.length})`);
    for (const line of real) assert.equal(line.reqId, 'r-1');
  }
});

test('Fastify with the deferred factory: request lines carry the request id; route log levels get pino\'s child', async (t) => {
  const { lines, stream } = capture();
  const app = Fastify({ logger: { level: 'warn', stream }, childLoggerFactory: deferredChildLoggerFactory });
  t.after(() => app.close());
  app.get('/warn', async (request) => {
    request.log.info('not written');
    request.log.warn('written');
    return { ok: true };
  });
  app.get('/debug', { logLevel: 'debug' }, async (request) => {
    assert.ok(!(request.log instanceof DeferredChildLogger), 'a route log level needs the real child');
    request.log.debug('route debug');
    return { ok: true };
  });
  assert.equal((await app.inject({ url: '/warn' })).statusCode, 200);
  assert.equal((await app.inject({ url: '/debug' })).statusCode, 200);
  assert.deepEqual(lines.map((l) => l.msg), ['written', 'incoming request', 'route debug', 'request completed']);
  assert.ok(lines.every((l) => typeof l.reqId === 'string'));
});
