/** Small readers for the shape checks of speech-to-text JSON: each throws BadInputError naming the path. Pure. */
import { BadInputError } from '../../errors.ts';
import { describeValue, isRecord } from '../clean-text.ts';

export type Json = Record<string, unknown>;

export function objectAt(value: unknown, where: string): Json {
  if (!isRecord(value)) throw new BadInputError(`${where}: expected an object, got ${describeValue(value)}`);
  return value;
}

export function arrayAt(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new BadInputError(`${where}: expected an array, got ${describeValue(value)}`);
  return value;
}

/** An array, or [] when the field is absent / null (services omit empty lists). */
export function optionalArray(value: unknown, where: string): unknown[] {
  return value === undefined || value === null ? [] : arrayAt(value, where);
}

export function stringAt(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new BadInputError(`${where}: expected a string, got ${describeValue(value)}`);
  return value;
}

export function optionalString(value: unknown, where: string): string | null {
  return value === undefined || value === null ? null : stringAt(value, where);
}

export { isRecord };
