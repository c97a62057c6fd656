/**
 * Where the synchronisation primitives live, and what they share: placing a few 32-bit words
 * at an offset of shared memory, deadlines, and the errors of waiting.
 */
import { invalidArgType, invalidArgValue, MemmapError } from '../errors.js';
import { validateInteger, validateOptions } from '../internal/validate.js';
import { Mapping } from '../mapping.js';

/** Where a primitive lives: a shared mapping, or a SharedArrayBuffer (between worker threads). */
export type SyncTarget = Mapping | SharedArrayBuffer;

/** Bytes every primitive takes: four 32-bit words. */
export const SIZE = 16;

/**
 * Four 32-bit words at `byteOffset` (a multiple of 4) of a shared writable mapping or a
 * SharedArrayBuffer, and the mapping, if any, to check for closing.
 */
export function placeWords(target: unknown, byteOffset: unknown, what: string): [Int32Array, Mapping | null] {
  const offset = byteOffset === undefined ? 0 : validateInteger(byteOffset, 'byteOffset');
  if (offset % 4 !== 0) throw invalidArgValue('byteOffset', offset, 'must be a multiple of 4');
  if (target instanceof Mapping) {
    if (target.mode !== 'write') {
      throw invalidArgValue(
        'mapping',
        target.mode,
        "must be a shared writable mapping (mode 'write', a SharedMemory, or mapAnonymous with shared: true): other processes never see a private or read-only one",
      );
    }
    if (offset + SIZE > target.length) {
      throw new MemmapError(
        'ERR_MEMMAP_OUT_OF_RANGE',
        `${what}: ${SIZE} bytes at ${offset} do not fit in a mapping of ${target.length} bytes`,
      );
    }
    const b = target.buffer;
    return [new Int32Array(b.buffer, b.byteOffset + offset, 4), target];
  }
  if (target instanceof SharedArrayBuffer) {
    if (offset + SIZE > target.byteLength) {
      throw new MemmapError(
        'ERR_MEMMAP_OUT_OF_RANGE',
        `${what}: ${SIZE} bytes at ${offset} do not fit in ${target.byteLength} bytes`,
      );
    }
    return [new Int32Array(target, offset, 4), null];
  }
  throw invalidArgType('target', 'a Mapping or a SharedArrayBuffer', target);
}

/** Checks the marker word that create() wrote, for attach(). */
export function checkMarker(words: Int32Array, marker: number, byteOffset: unknown, what: string): void {
  if (Atomics.load(words, 2) !== marker) {
    throw invalidArgValue('byteOffset', byteOffset, `holds no ${what}: create one there first`);
  }
}

export function checkOpen(mapping: Mapping | null, what: string): void {
  if (mapping?.closed) throw new MemmapError('ERR_MEMMAP_CLOSED', `${what}: its mapping is closed`);
}

/** The performance.now() by which a wait with these options must end (Infinity: never). */
export function deadlineOf(options: unknown, async: boolean): number {
  const opts = validateOptions(options, 'options', async ? (['timeout', 'signal'] as const) : (['timeout'] as const));
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', opts.signal);
  }
  if (opts.timeout === undefined) return Number.POSITIVE_INFINITY;
  if (typeof opts.timeout !== 'number' || !(opts.timeout >= 0)) validateInteger(opts.timeout, 'options.timeout');
  return performance.now() + (opts.timeout as number);
}

/** How long to sleep next: at most `most` ms, and never past the deadline. */
export function slice(deadline: number, most: number, what: string): number {
  const left = deadline - performance.now();
  if (left <= 0) throw new MemmapError('ERR_MEMMAP_TIMEOUT', `${what}: not done within the timeout`);
  return Math.min(left, most);
}

export function abortError(signal: AbortSignal): Error {
  const error = new Error('The operation was aborted', { cause: signal.reason });
  error.name = 'AbortError';
  return Object.assign(error, { code: 'ABORT_ERR' });
}
