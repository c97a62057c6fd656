/**
 * Argument checks shared by every public call. Numbers are never coerced: a bigint, a string
 * or an object with `valueOf` is refused with ERR_INVALID_ARG_TYPE, so no caller code runs
 * in the middle of a memmap call.
 */
import { invalidArgType, invalidArgValue, outOfRange } from '../errors.js';

/** Checks that `value` is an integer in [min, max] (max at most 2^53 - 1). */
export function validateInteger(value: unknown, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = Number.isInteger(value) ? `>= ${min} && <= ${max}` : 'an integer';
    throw outOfRange(name, range, value);
  }
  return value;
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

/** Checks that `value` is one of `choices`, naming the closest one when it is not. */
export function validateOneOf<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  if (!(choices as readonly string[]).includes(value)) {
    throw invalidArgValue(
      name,
      value,
      `must be one of ${choices.map((c) => `'${c}'`).join(', ')}${suggest(value, choices)}`,
    );
  }
  return value as T;
}

/**
 * Checks an options argument: undefined or a plain object whose keys are all known. An unknown
 * key names the closest known one, or what `meant` says it means, so `{ readOnly: true }`
 * points at `mode: 'read'`.
 */
export function validateOptions<K extends string>(
  options: unknown,
  name: string,
  known: readonly K[],
  meant: Readonly<Record<string, string>> = {},
): Partial<Record<K, unknown>> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalidArgType(name, 'of type object', options);
  }
  for (const key of Object.keys(options)) {
    if (!(known as readonly string[]).includes(key)) {
      throw invalidArgValue(
        `${name}.${key}`,
        (options as Record<string, unknown>)[key],
        `is not an option${key in meant ? ` (did you mean ${meant[key]}?)` : suggest(key, known)}; the options are ${known.join(', ')}`,
      );
    }
  }
  return options as Partial<Record<K, unknown>>;
}

/** " (did you mean 'x'?)" for the choice closest to `value`, or '' when none is close. */
function suggest(value: string, choices: readonly string[]): string {
  let best = '';
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const choice of choices) {
    const d = distance(value.toLowerCase(), choice.toLowerCase());
    if (d < bestDistance) {
      best = choice;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? ` (did you mean '${best}'?)` : '';
}

/** Levenshtein distance, small strings only. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * Checks the name of a POSIX shared memory object or named semaphore: '/', then at least one
 * byte with no '/' and no NUL, at most `maxBytes` in all, and not '/.' or '/..'.
 */
export function validatePosixName(name: unknown, maxBytes: number): string {
  if (typeof name !== 'string') throw invalidArgType('name', 'of type string', name);
  if (!/^\/[^/\0]+$/.test(name) || Buffer.byteLength(name) > maxBytes || name === '/.' || name === '/..') {
    throw invalidArgValue(
      'name',
      name,
      `must start with '/' and have no other '/', no NUL byte, and at most ${maxBytes} bytes, such as '/jobs'`,
    );
  }
  return name;
}
