/**
 * Exact decimal helpers over strings. Amounts and prices never travel as JS numbers across the adapter boundary;
 * arithmetic goes through ccxt's `Precise` (arbitrary-precision string math).
 */
import { Precise, functions } from 'ccxt';

export type Decimal = string;

const DIV_SCALE = 18;

export const dec = {
  add: (a: Decimal, b: Decimal): Decimal => Precise.stringAdd(a, b) ?? '0',
  sub: (a: Decimal, b: Decimal): Decimal => Precise.stringSub(a, b) ?? '0',
  mul: (a: Decimal, b: Decimal): Decimal => Precise.stringMul(a, b) ?? '0',
  div: (a: Decimal, b: Decimal, scale = DIV_SCALE): Decimal => Precise.stringDiv(a, b, scale) ?? '0',
  neg: (a: Decimal): Decimal => Precise.stringNeg(a) ?? '0',
  abs: (a: Decimal): Decimal => Precise.stringAbs(a) ?? '0',
  mod: (a: Decimal, b: Decimal): Decimal => Precise.stringMod(a, b) ?? '0',
  gt: (a: Decimal, b: Decimal): boolean => Precise.stringGt(a, b),
  ge: (a: Decimal, b: Decimal): boolean => Precise.stringGe(a, b),
  lt: (a: Decimal, b: Decimal): boolean => Precise.stringLt(a, b),
  le: (a: Decimal, b: Decimal): boolean => Precise.stringLe(a, b),
  eq: (a: Decimal, b: Decimal): boolean => Precise.stringEq(a, b),
  isZero: (a: Decimal): boolean => Precise.stringEq(a, '0'),
  min: (a: Decimal, b: Decimal): Decimal => (Precise.stringLt(a, b) ? a : b),
  max: (a: Decimal, b: Decimal): Decimal => (Precise.stringGt(a, b) ? a : b),
  /** Canonical form: no exponent, no trailing zeros ("1.500" -> "1.5", "-0" -> "0"). */
  normalize: (a: Decimal): Decimal => {
    const s = Precise.stringAdd(a, '0') ?? '0';
    return s === '-0' ? '0' : s;
  },
  /** Rounds `a` to `places` decimals (half away from zero). */
  round: (a: Decimal, places: number): Decimal => {
    const s = functions.decimalToPrecision(a, functions.ROUND, places, functions.DECIMAL_PLACES, functions.NO_PADDING);
    return dec.normalize(s);
  },
};

const DECIMAL_RE = /^-?\d+(\.\d+)?$/;

export function isDecimal(value: string): boolean {
  return DECIMAL_RE.test(value);
}

/** Converts a number that ccxt parsed into an exact decimal string (no exponent); undefined/null/NaN stay undefined. */
export function toDecimal(value: unknown): Decimal | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value === '' ? undefined : dec.normalize(value);
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  return dec.normalize(functions.numberToString(value) as string);
}

/** Converts a decimal string into the number ccxt's method signatures expect. */
export function toNumber(value: Decimal): number {
  return Number(value);
}

/** True when `value` is an integer multiple of `step` (a tick size such as "0.001"). */
export function isMultipleOf(value: Decimal, step: Decimal): boolean {
  if (dec.isZero(step)) return true;
  return dec.isZero(dec.mod(value, step));
}
