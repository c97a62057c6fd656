/**
 * A counting semaphore that lives inside shared memory, for processes and worker threads.
 *
 * Layout: four 32-bit words at a 4-aligned byte offset (16 bytes): [0] the count, [1] reserved,
 * [2] a marker, [3] reserved.
 *
 * @module
 */
import { invalidArgValue } from '../errors.js';
import { validateInteger } from '../internal/validate.js';
import type { Mapping } from '../mapping.js';
import { futex } from './futex.js';
import type { LockOptions } from './mutex.js';
import { abortError, checkMarker, checkOpen, deadlineOf, placeWords, type SyncTarget, slice } from './placement.js';

const MARKER = 0x6d73656d;
/** Waits sleep in slices, so that a lost wake-up costs at most this many milliseconds. */
const SLICE_MS = 1000;

/**
 * A counting semaphore in shared memory: `post()` adds one, `wait()` takes one, sleeping while
 * the count is zero. The classic way for a producer to tell a consumer in another process that
 * data is ready.
 */
export class Semaphore {
  readonly #words: Int32Array;
  readonly #mapping: Mapping | null;

  private constructor(words: Int32Array, mapping: Mapping | null) {
    this.#words = words;
    this.#mapping = mapping;
  }

  /**
   * Sets up a semaphore with count `initial` at `byteOffset` (a multiple of 4; 16 bytes).
   * @example
   * const ready = Semaphore.create(shm, 16, 0);
   */
  static create(target: SyncTarget, byteOffset = 0, initial = 0): Semaphore {
    const [words, mapping] = placeWords(target, byteOffset, 'Semaphore');
    validateInteger(initial, 'initial', 0, 2 ** 31 - 1);
    Atomics.store(words, 0, initial);
    Atomics.store(words, 1, 0);
    Atomics.store(words, 3, 0);
    Atomics.store(words, 2, MARKER);
    return new Semaphore(words, mapping);
  }

  /** Joins a semaphore created at `byteOffset` by another process or thread. */
  static attach(target: SyncTarget, byteOffset = 0): Semaphore {
    const [words, mapping] = placeWords(target, byteOffset, 'Semaphore');
    checkMarker(words, MARKER, byteOffset, 'Semaphore');
    return new Semaphore(words, mapping);
  }

  /** The count now (a snapshot). */
  get value(): number {
    checkOpen(this.#mapping, 'Semaphore');
    return Atomics.load(this.#words, 0);
  }

  /** Adds one to the count and wakes one waiter. */
  post(): void {
    checkOpen(this.#mapping, 'Semaphore');
    if (Atomics.add(this.#words, 0, 1) === 2 ** 31 - 1) {
      Atomics.sub(this.#words, 0, 1);
      throw invalidArgValue('semaphore', 2 ** 31 - 1, 'is at its largest count');
    }
    futex.wake(this.#words, 0, 1);
  }

  /** Takes one if the count is above zero; returns whether it did. */
  tryWait(): boolean {
    checkOpen(this.#mapping, 'Semaphore');
    for (;;) {
      const count = Atomics.load(this.#words, 0);
      if (count <= 0) return false;
      if (Atomics.compareExchange(this.#words, 0, count, count - 1) === count) return true;
    }
  }

  /**
   * Takes one, sleeping while the count is zero. Blocks the calling thread: use waitAsync on a
   * server's main thread.
   * @throws ERR_MEMMAP_TIMEOUT after `timeout` ms.
   */
  wait(options?: Omit<LockOptions, 'signal'>): void {
    const deadline = deadlineOf(options, false);
    while (!this.tryWait()) futex.wait(this.#words, 0, 0, slice(deadline, SLICE_MS, 'wait'));
  }

  /**
   * Takes one without blocking the event loop (memmap's waiter threads do the waiting).
   * @throws (rejects) ERR_MEMMAP_TIMEOUT; an AbortError when `signal` aborts.
   */
  async waitAsync(options?: LockOptions): Promise<void> {
    const deadline = deadlineOf(options, true);
    const signal = options?.signal;
    while (!this.tryWait()) {
      if (signal?.aborted) throw abortError(signal);
      // Outside the try: running out of time must end the loop, not be taken for a slice's end.
      const timeout = slice(deadline, SLICE_MS, 'waitAsync');
      try {
        await futex.waitAsync(this.#words, 0, 0, { timeout, ...(signal ? { signal } : {}) });
      } catch (error) {
        if ((error as { code?: string }).code !== 'ERR_MEMMAP_TIMEOUT') throw error;
      }
    }
  }
}
