/**
 * Where the synchronisation primitives live, and what they share: placing a few 32-bit words
 * at an offset of shared memory, deadlines, and the errors of waiting.
 */
import { invalidArgType, invalidArgValue, MemmapError } from '../errors.js';
import { validateInteger, validateOptions } from '../internal/validate.js';
import { Mapping } from '../mapping.js';
import { futex } from './futex.js';

/** Where a primitive lives: a shared mapping, or a SharedArrayBuffer (between worker threads). */
export type SyncTarget = Mapping | SharedArrayBuffer;

/** Bytes most primitives take: four 32-bit words. */
export const SIZE = 16;

/** How a primitive is placed: its size in bytes and the alignment of its offset. */
export interface Shape {
  size: number;
  align: number;
}

const WORDS: Shape = { size: SIZE, align: 4 };

/**
 * The 32-bit words of a primitive at `byteOffset` (a multiple of `shape.align`) of a shared
 * writable mapping or a SharedArrayBuffer, and the mapping, if any, to check for closing.
 */
export function placeWords(
  target: unknown,
  byteOffset: unknown,
  what: string,
  { size, align }: Shape,
): [Int32Array, Mapping | null] {
  const offset = byteOffset === undefined ? 0 : validateInteger(byteOffset, 'byteOffset');
  if (offset % align !== 0) throw invalidArgValue('byteOffset', offset, `must be a multiple of ${align}`);
  if (target instanceof Mapping) {
    if (target.mode !== 'write') {
      throw invalidArgValue(
        'mapping',
        target.mode,
        "must be a shared writable mapping (mode 'write', a SharedMemory, or mapAnonymous with shared: true): other processes never see a private or read-only one",
      );
    }
    if (offset + size > target.length) {
      throw new MemmapError(
        'ERR_MEMMAP_OUT_OF_RANGE',
        `${what}: ${size} bytes at ${offset} do not fit in a mapping of ${target.length} bytes`,
      );
    }
    const b = target.buffer;
    return [new Int32Array(b.buffer, b.byteOffset + offset, size / 4), target];
  }
  if (target instanceof SharedArrayBuffer) {
    if (offset + size > target.byteLength) {
      throw new MemmapError(
        'ERR_MEMMAP_OUT_OF_RANGE',
        `${what}: ${size} bytes at ${offset} do not fit in ${target.byteLength} bytes`,
      );
    }
    return [new Int32Array(target, offset, size / 4), null];
  }
  throw invalidArgType('target', 'a Mapping or a SharedArrayBuffer', target);
}

/**
 * Sets up a new primitive: word 0 holds `first`, the words but 2 zero, and the marker goes into
 * word 2 last, so that attach() never accepts a half-made one.
 */
export function createWords(
  target: unknown,
  byteOffset: unknown,
  what: string,
  marker: number,
  first = 0,
  shape = WORDS,
): [Int32Array, Mapping | null] {
  const placed = placeWords(target, byteOffset, what, shape);
  writeWords(placed[0], marker, first);
  return placed;
}

/** Word 0 `first`, the others but 2 zero, then the marker into word 2. */
function writeWords(words: Int32Array, marker: number, first: number): void {
  Atomics.store(words, 0, first);
  for (let i = 1; i < words.length; i++) if (i !== 2) Atomics.store(words, i, 0);
  Atomics.store(words, 2, marker);
}

/** Whether every word holds zero: memory nobody has set anything up in (a new file, new shm). */
function allZero(words: Int32Array): boolean {
  for (let i = 0; i < words.length; i++) if (Atomics.load(words, i) !== 0) return false;
  return true;
}

/** The error of attach() where word 2 does not hold `marker`. */
function notThere(words: Int32Array, byteOffset: unknown, what: string): Error {
  if (allZero(words)) {
    return new MemmapError(
      'ERR_MEMMAP_NOT_INITIALIZED',
      `${what}.attach: the ${what} at byte ${byteOffset ?? 0} is not set up yet (its words hold zeros): create it first, or use ${what}.createOrAttach, which sets it up or waits for whoever does`,
    );
  }
  return invalidArgValue('byteOffset', byteOffset, `holds no ${what}: create one there first`);
}

/** Joins a primitive that create() set up: its marker must be in word 2. */
export function attachWords(
  target: unknown,
  byteOffset: unknown,
  what: string,
  marker: number,
  shape = WORDS,
): [Int32Array, Mapping | null] {
  const placed = placeWords(target, byteOffset, what, shape);
  if (Atomics.load(placed[0], 2) !== marker) throw notThere(placed[0], byteOffset, what);
  return placed;
}

/** How long createOrAttach waits for another process that is setting the primitive up. */
export const SETUP_WAIT_MS = 5000;

/**
 * Joins the primitive at `byteOffset`, or sets it up there if the words hold zeros, whichever
 * process or thread comes first. Setting up claims word 2 first (0 -> a negative value holding
 * the pid, which no marker is), so exactly one caller writes the words, and the marker goes in
 * last, then wakes word 2: the others sleep on it (at most SETUP_WAIT_MS) until it is there.
 */
export function createOrAttachWords(
  target: unknown,
  byteOffset: unknown,
  what: string,
  marker: number,
  first = 0,
  shape = WORDS,
): [Int32Array, Mapping | null] {
  const placed = placeWords(target, byteOffset, what, shape);
  const [words] = placed;
  const claim = 0x80000000 | process.pid | 0;
  const deadline = performance.now() + SETUP_WAIT_MS;
  for (;;) {
    const seen = Atomics.load(words, 2);
    if (seen === marker) return placed;
    if (seen === 0) {
      // Not zeros: data, unless another caller claimed and began to write meanwhile.
      if (!allZero(words)) {
        if (Atomics.load(words, 2) !== 0) continue;
        break;
      }
      if (Atomics.compareExchange(words, 2, 0, claim) !== 0) continue;
      writeWords(words, marker, first);
      futex.wake(words, 2);
      return placed;
    }
    if (seen >= 0) break; // another primitive's marker, or other data
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new MemmapError(
        'ERR_MEMMAP_TIMEOUT',
        `${what}.createOrAttach: process ${seen & 0x7fffffff} began to set up the ${what} at byte ${byteOffset ?? 0} and has not finished within ${SETUP_WAIT_MS} ms (killed while doing it?): ${what}.create sets it up again`,
      );
    }
    futex.wait(words, 2, seen, left);
  }
  throw invalidArgValue('byteOffset', byteOffset, `holds something other than a ${what} (not zeros to set one up in)`);
}

export function checkOpen(mapping: Mapping | null, what: string): void {
  if (mapping?.closed) throw new MemmapError('ERR_MEMMAP_CLOSED', `${what}: its mapping is closed`);
}

/** What the options of a wait ask for: when it must end, how long to spin first, what aborts it. */
export interface Waiting {
  /** The performance.now() by which the wait must end (Infinity: never). */
  deadline: number;
  /** Microseconds to spin, checking, before going to sleep (0: sleep at once). */
  spin: number;
  signal: AbortSignal | undefined;
}

/** The longest spin an option may ask for, in microseconds. */
const SPIN_MAX = 100_000;

/** Reads the options of a wait: `timeout`, `signal` (async only) and `spin` (where `spins`). */
export function waitingOf(options: unknown, async: boolean, spins = true): Waiting {
  const keys = ['timeout', ...(async ? ['signal'] : []), ...(spins ? ['spin'] : [])] as (
    | 'timeout'
    | 'signal'
    | 'spin'
  )[];
  const opts = validateOptions(options, 'options', keys);
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', opts.signal);
  }
  let deadline = Number.POSITIVE_INFINITY;
  if (opts.timeout !== undefined) {
    if (typeof opts.timeout !== 'number' || !(opts.timeout >= 0)) validateInteger(opts.timeout, 'options.timeout');
    deadline = performance.now() + (opts.timeout as number);
  }
  const spin = opts.spin === undefined ? 0 : validateInteger(opts.spin, 'options.spin', 0, SPIN_MAX);
  return { deadline, spin, signal: opts.signal as AbortSignal | undefined };
}

/**
 * Calls `ready` in a tight loop for up to `micros` microseconds, until it returns true; returns
 * whether it did. A short spin saves the sleep and wake-up (several microseconds each) when the
 * other side answers quickly and both run on their own cores; it only burns time otherwise.
 */
export function spinUntil(micros: number, ready: () => boolean): boolean {
  if (micros <= 0) return false;
  const end = performance.now() + micros / 1000;
  do {
    for (let i = 0; i < 64; i++) if (ready()) return true;
  } while (performance.now() < end);
  return false;
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
