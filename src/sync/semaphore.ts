/**
 * A counting semaphore that lives inside shared memory, for processes and worker threads.
 *
 * Layout: four 32-bit words at a 4-aligned byte offset (16 bytes): [0] the count, [1] how many
 * threads sleep in wait (so that post can skip the system call when none do), [2] a marker,
 * [3] reserved.
 *
 * @module
 */
import { invalidArgValue } from '../errors.js';
import { validateInteger } from '../internal/validate.js';
import type { Mapping } from '../mapping.js';
import { futex } from './futex.js';
import type { LockOptions } from './mutex.js';
import {
  abortError,
  attachWords,
  checkOpen,
  createOrAttachWords,
  createWords,
  type SyncTarget,
  slice,
  spinUntil,
  waitingOf,
} from './placement.js';

const MARKER = 0x6d73656d;

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
    validateInteger(initial, 'initial', 0, 2 ** 31 - 1);
    return new Semaphore(...createWords(target, byteOffset, 'Semaphore', MARKER, initial));
  }

  /** Joins a semaphore created at `byteOffset` by another process or thread. */
  static attach(target: SyncTarget, byteOffset = 0): Semaphore {
    return new Semaphore(...attachWords(target, byteOffset, 'Semaphore', MARKER));
  }

  /**
   * Joins the semaphore at `byteOffset`, or sets it up with count `initial` if the words there
   * hold zeros (new memory): processes started in any order meet without a retry loop, and
   * exactly one of them sets it up. Waits up to 5 s for one that is setting it up now.
   * @throws ERR_MEMMAP_TIMEOUT if a setup began and never finished; ERR_INVALID_ARG_VALUE if the
   * words hold something else.
   */
  static createOrAttach(target: SyncTarget, byteOffset = 0, initial = 0): Semaphore {
    validateInteger(initial, 'initial', 0, 2 ** 31 - 1);
    const [words, mapping] = createOrAttachWords(target, byteOffset, 'Semaphore', MARKER, initial);
    return new Semaphore(words, mapping);
  }

  /** The count now (a snapshot). */
  get value(): number {
    checkOpen(this.#mapping, 'Semaphore');
    return Atomics.load(this.#words, 0);
  }

  /** Adds one to the count and wakes one waiter, if any sleeps. */
  post(): void {
    checkOpen(this.#mapping, 'Semaphore');
    if (Atomics.add(this.#words, 0, 1) === 2 ** 31 - 1) {
      Atomics.sub(this.#words, 0, 1);
      throw invalidArgValue('semaphore', 2 ** 31 - 1, 'is at its largest count');
    }
    if (Atomics.load(this.#words, 1) > 0) futex.wake(this.#words, 0, 1);
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
    const { deadline, spin } = waitingOf(options, false);
    if (this.tryWait() || spinUntil(spin, () => this.tryWait())) return;
    // Registered as a sleeper before the last look at the count: a post after that look sees
    // the registration and wakes us.
    Atomics.add(this.#words, 1, 1);
    try {
      while (!this.tryWait()) futex.wait(this.#words, 0, 0, slice(deadline, Number.POSITIVE_INFINITY, 'wait'));
    } finally {
      if (!this.#mapping?.closed) Atomics.sub(this.#words, 1, 1);
    }
  }

  /**
   * Takes one without blocking the event loop (memmap's waiter threads do the waiting).
   * @throws (rejects) ERR_MEMMAP_TIMEOUT; an AbortError when `signal` aborts.
   */
  async waitAsync(options?: LockOptions): Promise<void> {
    const { deadline, spin, signal } = waitingOf(options, true);
    if (this.tryWait() || spinUntil(spin, () => this.tryWait())) return;
    Atomics.add(this.#words, 1, 1);
    try {
      while (!this.tryWait()) {
        if (signal?.aborted) throw abortError(signal);
        // Outside the try: running out of time ends the loop with the semaphore's own error.
        const timeout = slice(deadline, Number.POSITIVE_INFINITY, 'waitAsync');
        try {
          await futex.waitAsync(this.#words, 0, 0, {
            ...(timeout === Number.POSITIVE_INFINITY ? {} : { timeout }),
            ...(signal ? { signal } : {}),
          });
        } catch (error) {
          if ((error as { code?: string }).code !== 'ERR_MEMMAP_TIMEOUT') throw error;
        }
      }
    } finally {
      if (!this.#mapping?.closed) Atomics.sub(this.#words, 1, 1);
    }
  }
}
