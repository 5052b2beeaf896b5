import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level } from 'pino';

type Parent = FastifyBaseLogger & { isLevelEnabled(level: string): boolean; bindings(): Bindings; flush?: (cb?: (err?: Error) => void) => void };
type LogFn = (...args: unknown[]) => void;

/**
 * A request's logger that becomes pino's `child(bindings)` on first use. Fastify gives every request a child logger
 * (the request id binding); pino builds it eagerly, serialising the bindings and setting up redaction, about 1.5% of
 * a small authenticated request. Most requests never log at an enabled level (with LOG_LEVEL=info every request
 * does: Fastify's own request/response lines, and the child is built for the first of them), so the child is only
 * built when a line is actually written at an enabled level, or when anything else is asked of it (child, bindings,
 * level change). The output is the real child's: same bindings, serializers and redaction.
 */
export class DeferredChildLogger {
  #parent: Parent;
  #bindings: Bindings;
  #options: ChildLoggerOptions;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: Parent, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  #real(): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#options));
  }

  #write(level: Level, args: unknown[]) {
    if (this.#child === undefined && !this.#parent.isLevelEnabled(level)) return;
    (this.#real()[level] as LogFn)(...args);
  }

  fatal(...args: unknown[]) {
    this.#write('fatal', args);
  }
  error(...args: unknown[]) {
    this.#write('error', args);
  }
  warn(...args: unknown[]) {
    this.#write('warn', args);
  }
  info(...args: unknown[]) {
    this.#write('info', args);
  }
  debug(...args: unknown[]) {
    this.#write('debug', args);
  }
  trace(...args: unknown[]) {
    this.#write('trace', args);
  }
  silent() {}

  get level(): string {
    return this.#child !== undefined ? this.#child.level : this.#parent.level;
  }
  set level(level: string) {
    this.#real().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return this.#child !== undefined ? (this.#child as Parent).isLevelEnabled(level) : this.#parent.isLevelEnabled(level);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }

  bindings(): Bindings {
    return (this.#real() as Parent).bindings();
  }

  flush(cb?: (err?: Error) => void) {
    const real = this.#real() as Parent;
    if (real.flush) real.flush(cb);
    else cb?.();
  }
}

/**
 * Fastify `childLoggerFactory`: a deferred child, unless the route sets its own log level or serializers (then pino's
 * child at once, as Fastify would).
 */
export const deferredChildLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']> = function (logger, bindings, options) {
  for (const _ in options) return logger.child(bindings, options);
  return new DeferredChildLogger(logger as Parent, bindings, options) as unknown as FastifyBaseLogger;
};
