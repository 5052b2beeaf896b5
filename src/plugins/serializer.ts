import { $ZodType } from 'zod/v4/core';
import { serializerCompiler as zodSerializerCompiler } from '@fastify/type-provider-zod';

/**
 * Response serialisation without a zod pass on the hot path.
 *
 * @fastify/type-provider-zod's serializer runs `schema.safeEncode(data)` (a full validation, formats included, and a
 * stripped copy of every object) and then `JSON.stringify` on every response. For response schemas made only of
 * plain, transformation-free parts (objects that strip unknown keys, arrays, records with string keys,
 * strings, finite numbers, booleans, null, enums, literals, optional, nullable, readonly, unknown/any) this compiles
 * the schema once into a tree of small serialiser functions that write the JSON directly, in the schema's key order,
 * with `JSON.stringify` for every leaf. For every value zod accepts, the output is byte for byte what the zod
 * serializer sends (same keys, same order, unknown keys stripped, undefined members omitted).
 *
 * What is still checked on the fast path: the JSON type of every member (object, array, string, finite number,
 * integer where the schema says int, boolean, null), enum/literal membership and required members. Any mismatch hands
 * the value to the zod serializer, which answers with its usual ResponseSerializationError (a 500) — or, if zod does
 * accept it, with zod's own output. Not re-checked on output: string formats and lengths (uuid, email, date-time, ...)
 * and numeric ranges; the data behind them comes from our own database rows and services.
 *
 * Every other schema (transforms, pipes/codecs, defaults, unions, intersections, strict or loose objects, dates, ...) keeps the
 * zod serializer unchanged.
 */

/** Serialises `value`, or returns undefined when it does not have the schema's shape (the caller then asks zod). */
type Ser = (value: unknown) => string | undefined;

interface Node {
  ser: Ser;
  /** The schema accepts `undefined` (optional, unknown, any): an undefined object member is omitted. */
  optional: boolean;
}

/** Thrown while compiling: this schema is not in the supported subset. */
class Unsupported extends Error {}

const unsupported = (what: string): never => {
  throw new Unsupported(what);
};

interface Def {
  type: string;
  checks?: Array<{ _zod: { def: { check: string; format?: string } } }>;
  coerce?: boolean;
  format?: string;
  check?: string;
  shape?: Record<string, $ZodType>;
  catchall?: $ZodType;
  element?: $ZodType;
  innerType?: $ZodType;
  keyType?: $ZodType;
  valueType?: $ZodType;
}

const defOf = (schema: $ZodType) => schema._zod.def as unknown as Def;

/** Checks that only validate (never rewrite the value); `overwrite` (trim, toLowerCase, ...) is a transformation. */
const VALIDATING_CHECKS = new Set([
  'string_format',
  'min_length',
  'max_length',
  'length_equals',
  'greater_than',
  'less_than',
  'multiple_of',
  'number_format',
  'min_size',
  'max_size',
  'size_equals',
]);

function assertValidatingChecks(def: Def) {
  for (const c of def.checks ?? []) {
    if (!VALIDATING_CHECKS.has(c._zod.def.check)) unsupported(`check ${c._zod.def.check}`);
  }
}

const stringify = (v: unknown) => JSON.stringify(v);

function compileNode(schema: $ZodType): Node {
  if (!(schema instanceof $ZodType)) unsupported('not a zod schema');
  const def = defOf(schema);
  switch (def.type) {
    case 'string': {
      if (def.coerce) unsupported('coerced string');
      assertValidatingChecks(def);
      return { optional: false, ser: (v) => (typeof v === 'string' ? JSON.stringify(v) : undefined) };
    }
    case 'number': {
      if (def.coerce) unsupported('coerced number');
      assertValidatingChecks(def);
      const formats = [def.format, ...(def.checks ?? []).map((c) => c._zod.def.format)].filter((f): f is string => typeof f === 'string');
      const integer = formats.some((f) => f.includes('int'));
      return integer
        ? { optional: false, ser: (v) => (typeof v === 'number' && Number.isInteger(v) ? String(v) : undefined) }
        : { optional: false, ser: (v) => (typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined) };
    }
    case 'boolean': {
      if (def.coerce) unsupported('coerced boolean');
      return { optional: false, ser: (v) => (v === true ? 'true' : v === false ? 'false' : undefined) };
    }
    case 'null':
      return { optional: false, ser: (v) => (v === null ? 'null' : undefined) };
    case 'enum':
    case 'literal': {
      const values = schema._zod.values;
      if (!values || values.size === 0) unsupported(`${def.type} without values`);
      for (const v of values!) {
        if (!(typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean' || v === null)) {
          unsupported(`${def.type} value ${String(v)}`);
        }
      }
      const json = new Map<unknown, string>([...values!].map((v) => [v, JSON.stringify(v)]));
      return { optional: false, ser: (v) => json.get(v) };
    }
    case 'unknown':
    case 'any':
      // zod passes these through untouched and JSON.stringify renders them: the same call here.
      return { optional: true, ser: stringify };
    case 'optional': {
      const inner = compileNode(def.innerType!);
      return { optional: true, ser: inner.ser };
    }
    case 'nullable': {
      const inner = compileNode(def.innerType!);
      const ser = inner.ser;
      return { optional: inner.optional, ser: (v) => (v === null ? 'null' : ser(v)) };
    }
    case 'readonly':
      return compileNode(def.innerType!);
    case 'array': {
      assertValidatingChecks(def);
      const item = compileNode(def.element!);
      const ser = item.ser;
      const undefinedItem = item.optional;
      return {
        optional: false,
        ser: (v) => {
          if (!Array.isArray(v)) return undefined;
          const n = v.length;
          if (n === 0) return '[]';
          let out = '[';
          for (let i = 0; i < n; i++) {
            const x = v[i];
            let s: string | undefined;
            if (x === undefined) {
              if (!undefinedItem) return undefined;
              s = 'null'; // JSON.stringify renders an undefined array item as null
            } else {
              s = ser(x);
              if (s === undefined) return undefined;
            }
            out += i === 0 ? s : `,${s}`;
          }
          return `${out}]`;
        },
      };
    }
    case 'object': {
      // Stripped objects only: a strict one (catchall never) refuses extra keys, a loose one passes them on.
      if (def.catchall !== undefined) unsupported('object with a catchall');
      const shape = def.shape!;
      const keys = Object.keys(shape);
      const prefixes = keys.map((k) => `${JSON.stringify(k)}:`);
      const nodes = keys.map((k) => compileNode(shape[k]));
      const sers = nodes.map((n) => n.ser);
      const optional = nodes.map((n) => n.optional);
      const count = keys.length;
      return {
        optional: false,
        ser: (v) => {
          if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
          const obj = v as Record<string, unknown>;
          let out = '';
          for (let i = 0; i < count; i++) {
            const x = obj[keys[i]];
            if (x === undefined) {
              if (!optional[i]) return undefined;
              continue;
            }
            const s = sers[i](x);
            if (s === undefined) return undefined;
            out += out === '' ? `{${prefixes[i]}${s}` : `,${prefixes[i]}${s}`;
          }
          return out === '' ? '{}' : `${out}}`;
        },
      };
    }
    case 'record': {
      const keyDef = defOf(def.keyType!);
      if (keyDef.type !== 'string' || keyDef.coerce || (keyDef.checks?.length ?? 0) > 0) unsupported('record key other than a plain string');
      const value = compileNode(def.valueType!);
      const ser = value.ser;
      const undefinedValue = value.optional;
      return {
        optional: false,
        ser: (v) => {
          if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
          const obj = v as Record<string, unknown>;
          let out = '';
          for (const k of Object.keys(obj)) {
            const x = obj[k];
            if (x === undefined) {
              if (!undefinedValue) return undefined;
              continue;
            }
            const s = ser(x);
            if (s === undefined) return undefined;
            out += `${out === '' ? '{' : ','}${JSON.stringify(k)}:${s}`;
          }
          return out === '' ? '{}' : `${out}}`;
        },
      };
    }
    default:
      return unsupported(def.type);
  }
}

/**
 * The fast serialiser for `schema`, or null when the schema is outside the supported subset. The returned function
 * gives undefined for a value that does not fit the schema (callers fall back to zod for the exact error).
 */
export function compileFastSerializer(schema: unknown): Ser | null {
  if (!(schema instanceof $ZodType)) return null;
  try {
    const node = compileNode(schema);
    // A top-level undefined is zod's business (it JSON.stringifies to undefined).
    return node.ser;
  } catch (err) {
    if (err instanceof Unsupported) return null;
    throw err;
  }
}

/** Fastify serializer compiler: the fast path where the schema allows it, the zod serializer otherwise (and on a mismatch). */
export function serializerCompiler(routeSchema: Parameters<typeof zodSerializerCompiler>[0]): (data: unknown) => string {
  const slow = zodSerializerCompiler(routeSchema) as (data: unknown) => string;
  const fast = compileFastSerializer(routeSchema.schema);
  if (!fast) return slow;
  return function serialize(data: unknown) {
    if (data !== undefined) {
      const out = fast(data);
      if (out !== undefined) return out;
    }
    return slow(data);
  };
}
