import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { serializerCompiler as zodSerializerCompiler } from '@fastify/type-provider-zod';
import { compileFastSerializer, serializerCompiler } from '../../src/plugins/serializer.js';
import { UserResponse, LoginResponse } from '../../src/modules/auth/auth.schemas.js';
import { Problem } from '../../src/shared/problem.js';

const route = (schema: unknown) => ({ schema, method: 'GET', url: '/x', httpStatus: '200' }) as Parameters<typeof zodSerializerCompiler>[0];
const zodOut = (schema: unknown, data: unknown) => (zodSerializerCompiler(route(schema)) as (d: unknown) => string)(data);
const ourOut = (schema: unknown, data: unknown) => serializerCompiler(route(schema))(data);

/** Same output, or the same error, as the zod serializer. */
function assertSame(schema: z.ZodType, data: unknown, label: string) {
  let expected: { ok: true; value: string } | { ok: false; error: string };
  try {
    expected = { ok: true, value: zodOut(schema, data) };
  } catch (err) {
    expected = { ok: false, error: (err as Error).name };
  }
  let actual: typeof expected;
  try {
    actual = { ok: true, value: ourOut(schema, data) };
  } catch (err) {
    actual = { ok: false, error: (err as Error).name };
  }
  assert.deepEqual(actual, expected, label);
}

const user = {
  id: '0b9e6c3a-7d43-4f1e-9a57-2d0f5b1c8e11',
  email: 'a"b\\c\u2028é😀@example.com',
  role: 'admin',
  disabled: false,
  createdAt: '2024-01-02T03:04:05.678Z',
  lastLoginAt: null,
};

test('the hot response schemas compile to the fast path; loose objects stay with zod', () => {
  assert.ok(compileFastSerializer(UserResponse));
  assert.ok(compileFastSerializer(LoginResponse));
  assert.equal(compileFastSerializer(Problem), null, 'a looseObject passes unknown keys through: zod keeps it');
});

test('fast serialisation is byte-identical to the zod serializer for valid data', () => {
  assertSame(UserResponse, user, 'user');
  assertSame(UserResponse, { ...user, lastLoginAt: '2024-05-06T07:08:09.000Z', passwordHash: 'secret', extra: { a: 1 } }, 'extra keys stripped');
  assertSame(UserResponse, Object.assign(Object.create({ inherited: 1 }), user), 'prototype object');
  assertSame(LoginResponse, { accessToken: 'a.b.c', refreshToken: 'r', expiresIn: 900, tokenType: 'Bearer', user }, 'login');

  const Everything = z.object({
    s: z.string().min(1),
    n: z.number(),
    i: z.number().int(),
    neg: z.number(),
    b: z.boolean(),
    nul: z.null(),
    lit: z.literal('x'),
    litNum: z.literal(3),
    e: z.enum(['a', 'b']),
    opt: z.string().optional(),
    optNull: z.string().nullable().optional(),
    arr: z.array(z.object({ k: z.string(), v: z.number().nullable() })),
    empty: z.array(z.string()),
    rec: z.record(z.string(), z.number()),
    recObj: z.record(z.string(), z.object({ a: z.boolean() })),
    unk: z.unknown(),
    any: z.any(),
    ro: z.object({ q: z.string() }).readonly(),
    nested: z.object({ deep: z.object({ deeper: z.array(z.array(z.number())) }) }),
    emptyObj: z.object({}),
    'weird "key"\n': z.string(),
  });
  const base = {
    s: 'x',
    n: 1.5e-7,
    i: -42,
    neg: -0,
    b: true,
    nul: null,
    lit: 'x',
    litNum: 3,
    e: 'b',
    arr: [{ k: 'a', v: null, drop: 1 }, { k: '\u0000', v: 2 }],
    empty: [],
    rec: { '2': 2, b: 1, '1': 1, a: 0 },
    recObj: { x: { a: false, drop: true } },
    unk: { d: new Date(0), list: [1, undefined, 'x'], u: undefined },
    any: [null],
    ro: { q: 'q', z: 1 },
    nested: { deep: { deeper: [[1, 2], [], [3]] } },
    emptyObj: { drop: 1 },
    'weird "key"\n': 'w',
  };
  assertSame(Everything, base, 'everything');
  assertSame(Everything, { ...base, opt: 'o', optNull: null }, 'optional members present');
  assertSame(Everything, { ...base, opt: undefined, optNull: undefined, unk: undefined, any: undefined }, 'undefined members');
  assertSame(z.array(z.unknown()), [undefined, 1], 'undefined array item');
  assertSame(z.array(UserResponse), [user, user], 'top-level array');
  assertSame(z.record(z.string(), z.string().optional()), { a: undefined, b: 'b' }, 'record with an undefined value');
  assertSame(z.string(), 'top', 'top-level string');
  assertSame(z.number(), 12, 'top-level number');
  assertSame(z.string().nullable(), null, 'top-level null');
});

test('data that does not fit the schema gets exactly the zod serializer answer (error or output)', () => {
  for (const [label, data] of [
    ['missing member', { ...user, email: undefined }],
    ['wrong type', { ...user, disabled: 'no' }],
    ['not in enum', { ...user, role: 'root' }],
    ['date object', { ...user, createdAt: new Date(0) }],
    ['null object', null],
    ['array for object', [user]],
    ['undefined', undefined],
  ] as const) {
    assertSame(UserResponse, data, label);
  }
  assertSame(z.object({ n: z.number() }), { n: Number.NaN }, 'NaN');
  assertSame(z.object({ n: z.number() }), { n: Infinity }, 'Infinity');
  assertSame(z.object({ n: z.number().int() }), { n: 1.5 }, 'non-integer');
  assertSame(z.array(z.string()), ['a', undefined], 'undefined array item not allowed');
  assertSame(z.array(z.string()), 'abc', 'string for array');
  assertSame(z.record(z.string(), z.number()), { a: 'x' }, 'record value');
});

test('schemas that transform or cannot be compiled keep the zod serializer', () => {
  const cases: Array<[string, z.ZodType, unknown]> = [
    ['transform', z.object({ a: z.string().transform((s) => s.toUpperCase()) }), { a: 'x' }],
    ['trim (overwrite check)', z.object({ a: z.string().trim() }), { a: '  x ' }],
    ['default', z.object({ a: z.string().default('d') }), {}],
    ['union', z.union([z.object({ a: z.string() }), z.object({ a: z.string(), b: z.number() })]), { a: 'x', b: 1 }],
    ['discriminated union', z.discriminatedUnion('t', [z.object({ t: z.literal('a') }), z.object({ t: z.literal('b'), n: z.number() })]), { t: 'b', n: 1, x: 2 }],
    ['loose object', z.looseObject({ a: z.string() }), { a: 'x', b: 1 }],
    ['strict object', z.strictObject({ a: z.string() }), { a: 'x', b: 1 }],
    ['catchall', z.object({ a: z.string() }).catchall(z.number()), { a: 'x', b: 1 }],
    ['date', z.object({ d: z.date() }), { d: new Date(0) }],
    ['coerce', z.object({ n: z.coerce.number() }), { n: '5' }],
    ['record with enum keys', z.record(z.enum(['a', 'b']), z.number()), { a: 1, b: 2 }],
    ['undefined (204)', z.undefined(), undefined],
  ];
  for (const [label, schema, data] of cases) {
    assert.equal(compileFastSerializer(schema), null, label);
    assertSame(schema, data, label);
  }
});
