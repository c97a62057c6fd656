/**
 * An event that lives inside shared memory: set() lets every waiter through until reset().
 *
 * Layout: four 32-bit words at a 4-aligned byte offset (16 bytes): [0] 1 when set, 0 when
 * not, [1] how many threads sleep in wait (so that set can skip the system call when none do),
 * [2] a marker, [3] reserved.
 *
 * @module
 */
import { validateBoolean } from '../internal/validate.js';
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

const MARKER = 0x6d65766e;

/**
 * A manual-reset event in shared memory, for processes and worker threads: "the data is
 * loaded", "shut down now". Waiters sleep while it is not set; set() wakes them all and lets
 * every later wait through until reset(). For a wake-one signal, use a {@link Semaphore}.
 * @example
 * const ready = Event.create(shm, 32);
 * // in other processes: Event.attach(shm, 32).wait();
 * ready.set();
 */
export class Event {
  readonly #words: Int32Array;
  readonly #mapping: Mapping | null;

  private constructor(words: Int32Array, mapping: Mapping | null) {
    this.#words = words;
    this.#mapping = mapping;
  }

  /** Sets up an event at `byteOffset` (a multiple of 4; 16 bytes), set or not. */
  static create(target: SyncTarget, byteOffset = 0, initiallySet = false): Event {
    return new Event(
      ...createWords(target, byteOffset, 'Event', MARKER, validateBoolean(initiallySet, 'initiallySet') ? 1 : 0),
    );
  }

  /** Joins an event created at `byteOffset` by another process or thread. */
  static attach(target: SyncTarget, byteOffset = 0): Event {
    return new Event(...attachWords(target, byteOffset, 'Event', MARKER));
  }

  /**
   * Joins the event at `byteOffset`, or sets it up (set or not) if the words there hold zeros;
   * exactly one caller sets it up, the others wait up to 5 s for it. As Semaphore.createOrAttach.
   */
  static createOrAttach(target: SyncTarget, byteOffset = 0, initiallySet = false): Event {
    const first = validateBoolean(initiallySet, 'initiallySet') ? 1 : 0;
    const [words, mapping] = createOrAttachWords(target, byteOffset, 'Event', MARKER, first);
    return new Event(words, mapping);
  }

  /** Whether it is set now (a snapshot). */
  get isSet(): boolean {
    checkOpen(this.#mapping, 'Event');
    return Atomics.load(this.#words, 0) === 1;
  }

  #isSet(): boolean {
    return Atomics.load(this.#words, 0) === 1;
  }

  /** Sets it and wakes every waiter. Setting a set event does nothing. */
  set(): void {
    checkOpen(this.#mapping, 'Event');
    if (Atomics.exchange(this.#words, 0, 1) === 0 && Atomics.load(this.#words, 1) > 0) futex.wake(this.#words, 0);
  }

  /** Clears it: later waits sleep until the next set(). */
  reset(): void {
    checkOpen(this.#mapping, 'Event');
    Atomics.store(this.#words, 0, 0);
  }

  /**
   * Returns once it is set, sleeping until then. Blocks the calling thread: use waitAsync on
   * a server's main thread.
   * @throws ERR_MEMMAP_TIMEOUT after `timeout` ms.
   */
  wait(options?: Omit<LockOptions, 'signal'>): void {
    const { deadline, spin } = waitingOf(options, false);
    checkOpen(this.#mapping, 'Event');
    if (this.#isSet() || spinUntil(spin, () => this.#isSet())) return;
    Atomics.add(this.#words, 1, 1);
    try {
      while (Atomics.load(this.#words, 0) === 0) {
        futex.wait(this.#words, 0, 0, slice(deadline, Number.POSITIVE_INFINITY, 'wait'));
      }
    } finally {
      if (!this.#mapping?.closed) Atomics.sub(this.#words, 1, 1);
    }
  }

  /**
   * Same as {@link Event.wait} without blocking the event loop.
   * @throws (rejects) ERR_MEMMAP_TIMEOUT; an AbortError when `signal` aborts.
   */
  async waitAsync(options?: LockOptions): Promise<void> {
    const { deadline, spin, signal } = waitingOf(options, true);
    checkOpen(this.#mapping, 'Event');
    if (this.#isSet() || spinUntil(spin, () => this.#isSet())) return;
    if (signal?.aborted) throw abortError(signal);
    Atomics.add(this.#words, 1, 1);
    try {
      while (Atomics.load(this.#words, 0) === 0) {
        const timeout = slice(deadline, Number.POSITIVE_INFINITY, 'waitAsync');
        await futex.waitAsync(this.#words, 0, 0, {
          ...(timeout === Number.POSITIVE_INFINITY ? {} : { timeout }),
          ...(signal ? { signal } : {}),
        });
      }
    } finally {
      if (!this.#mapping?.closed) Atomics.sub(this.#words, 1, 1);
    }
  }
}
