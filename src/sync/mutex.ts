/**
 * A mutex that lives inside shared memory: usable between processes and worker threads, sync
 * and async, and robust: when the holder dies, the next locker gets the lock and is told.
 *
 * Layout: four 32-bit words at a 4-aligned byte offset (16 bytes):
 *   [0] state: 0 when free, else the owner's thread id, with bit 30 set while others wait;
 *   [1] the owner's process id (to tell whether the owner is still alive);
 *   [2] a marker, so that attach() can tell a Mutex from other bytes;
 *   [3] reserved, 0.
 *
 * @module
 */
import { MemmapError } from '../errors.js';
import type { Mapping } from '../mapping.js';
import { addon } from '../native.js';
import { futex } from './futex.js';
import {
  abortError,
  attachWords,
  checkOpen,
  createWords,
  type SyncTarget,
  slice,
  spinUntil,
  waitingOf,
} from './placement.js';

/** What lock() reports: the lock was free, or its holder died holding it. */
export type LockResult = 'acquired' | 'owner-died';

/** Where a Mutex lives: a shared mapping, or a SharedArrayBuffer (between worker threads). */
export type MutexTarget = SyncTarget;

/** Options of {@link Mutex.lock} and {@link Mutex.lockAsync}. */
export interface LockOptions {
  /** Milliseconds before giving up with ERR_MEMMAP_TIMEOUT. Default: no limit. */
  timeout?: number;
  /** lockAsync only: rejects with an AbortError when aborted. */
  signal?: AbortSignal;
  /**
   * Microseconds to spin, checking, before going to sleep (at most 100,000). Default 0. A few
   * tens of microseconds cut the latency of a quick hand-over between processes on their own
   * cores; on a busy machine spinning only burns CPU.
   */
  spin?: number;
}

const MARKER = 0x6d6d7478;
const WAITERS = 0x40000000;
const OWNER = 0x3fffffff;
/** How often a waiter looks whether the holder is still alive, in milliseconds. */
const LIVENESS_CHECK_MS = 50;

let ids: [number, number] | undefined;
/** This thread's [process id, thread id]; module state is per thread, like the ids. */
function self(): [number, number] {
  ids ??= addon.threadIds();
  return ids;
}

/**
 * A robust mutex in shared memory. Ownership is per thread: the process and thread (main or
 * worker) that locked it must unlock it. If the holder dies (killed, crashed, a worker that
 * exited), the next locker gets the lock and `lock()` answers 'owner-died' instead of
 * 'acquired': the data the lock protects may be half-updated, repair it before going on.
 * A waiter notices a dead holder within about 50 ms.
 *
 * Safety: process ids can be reused; the check is the kernel's answer to "is thread T of
 * process P alive", which a new process would have to match in both ids.
 */
export class Mutex {
  readonly #words: Int32Array;
  readonly #mapping: Mapping | null;

  private constructor(words: Int32Array, mapping: Mapping | null) {
    this.#words = words;
    this.#mapping = mapping;
  }

  /**
   * Sets up a new, unlocked Mutex at `byteOffset` (a multiple of 4; it takes 16 bytes).
   * Do it once, before other processes attach.
   * @example
   * using shm = SharedMemory.create('/counter', 4096);
   * const mutex = Mutex.create(shm, 0);
   */
  static create(target: MutexTarget, byteOffset = 0): Mutex {
    return new Mutex(...createWords(target, byteOffset, 'Mutex', MARKER));
  }

  /**
   * Joins a Mutex another process or thread created at `byteOffset`.
   * @throws ERR_INVALID_ARG_VALUE if there is no Mutex there.
   */
  static attach(target: MutexTarget, byteOffset = 0): Mutex {
    return new Mutex(...attachWords(target, byteOffset, 'Mutex', MARKER));
  }

  /** Whether some thread holds the lock now (a snapshot). */
  get locked(): boolean {
    this.#check();
    return Atomics.load(this.#words, 0) !== 0;
  }

  /**
   * Takes the lock if it is free (or its holder died).
   * @returns 'acquired', 'owner-died', or false when another live thread holds it.
   */
  tryLock(): LockResult | false {
    this.#check();
    return this.#attempt(false);
  }

  /**
   * Takes the lock, sleeping while another thread holds it. Blocks the calling thread: use
   * lockAsync on a server's main thread.
   * @throws ERR_MEMMAP_TIMEOUT; ERR_MEMMAP_DEADLOCK if this thread holds it already.
   */
  lock(options?: Omit<LockOptions, 'signal'>): LockResult {
    this.#check();
    if (options === undefined) {
      // The uncontended case first, before any option parsing.
      const result = this.#attempt(false);
      if (result !== false) return result;
    }
    const { deadline, spin } = waitingOf(options, false);
    let waited = false;
    const spun = this.#spin(spin);
    if (spun !== false) return spun;
    for (;;) {
      this.#check();
      const result = this.#attempt(waited);
      if (result !== false) return result;
      const slice = this.#slice(deadline);
      const seen = this.#announce();
      if (seen !== 0) futex.wait(this.#words, 0, seen, slice);
      waited = true;
    }
  }

  /**
   * Takes the lock without blocking the event loop: the waiting happens on memmap's waiter
   * threads, never libuv's pool.
   * @throws (rejects) ERR_MEMMAP_TIMEOUT; an AbortError when `signal` aborts.
   */
  async lockAsync(options?: LockOptions): Promise<LockResult> {
    const { deadline, spin, signal } = waitingOf(options, true);
    let waited = false;
    this.#check();
    const spun = this.#spin(spin);
    if (spun !== false) return spun;
    for (;;) {
      this.#check();
      if (signal?.aborted) throw abortError(signal);
      const result = this.#attempt(waited);
      if (result !== false) return result;
      const slice = this.#slice(deadline);
      const seen = this.#announce();
      if (seen !== 0) {
        try {
          await futex.waitAsync(this.#words, 0, seen, { timeout: slice, ...(signal ? { signal } : {}) });
        } catch (error) {
          if ((error as MemmapError).code !== 'ERR_MEMMAP_TIMEOUT') throw error;
        }
      }
      waited = true;
    }
  }

  /**
   * Releases the lock and wakes a waiter.
   * @throws ERR_MEMMAP_NOT_OWNER if this thread does not hold it.
   */
  unlock(): void {
    this.#check();
    const [, tid] = self();
    const state = Atomics.load(this.#words, 0);
    if ((state & OWNER) !== tid) {
      throw new MemmapError(
        'ERR_MEMMAP_NOT_OWNER',
        state === 0 ? 'unlock: the mutex is not locked' : 'unlock: another thread or process holds the mutex',
      );
    }
    Atomics.store(this.#words, 1, 0);
    const previous = Atomics.exchange(this.#words, 0, 0);
    if (previous & WAITERS) futex.wake(this.#words, 0, 1);
  }

  /**
   * Runs `fn` holding the lock (taken with lockAsync), and releases it however `fn` ends.
   * `fn` receives what lock reported, so it can repair the data after 'owner-died'.
   * @example
   * await mutex.withLock(() => { counter[0]++; });
   */
  async withLock<T>(fn: (result: LockResult) => T | Promise<T>, options?: LockOptions): Promise<T> {
    const result = await this.lockAsync(options);
    try {
      return await fn(result);
    } finally {
      this.unlock();
    }
  }

  #check(): void {
    checkOpen(this.#mapping, 'Mutex');
  }

  /** One attempt to take the lock; a waiter that got it keeps the waiters bit set. */
  #attempt(waited: boolean): LockResult | false {
    const [pid, tid] = self();
    const mine = tid | (waited ? WAITERS : 0);
    const state = Atomics.compareExchange(this.#words, 0, 0, mine);
    if (state === 0) {
      Atomics.store(this.#words, 1, pid);
      return 'acquired';
    }
    const owner = state & OWNER;
    if (owner === tid) throw new MemmapError('ERR_MEMMAP_DEADLOCK', 'lock: this thread holds the mutex already');
    const ownerPid = Atomics.load(this.#words, 1);
    if (ownerPid !== 0 && addon.threadAlive(ownerPid, owner) === 0) {
      // The holder is gone: take the lock over, keeping the waiters bit for the others.
      if (Atomics.compareExchange(this.#words, 0, state, tid | (state & WAITERS)) === state) {
        Atomics.store(this.#words, 1, pid);
        return 'owner-died';
      }
    }
    return false;
  }

  /**
   * Tries to take the lock in a tight loop for up to `micros` microseconds. It only reads the
   * word until the lock is free (whether a holder died is the sleeping loop's business).
   */
  #spin(micros: number): LockResult | false {
    let result: LockResult | false = false;
    spinUntil(micros, () => {
      if (Atomics.load(this.#words, 0) !== 0) return false;
      result = this.#attempt(false);
      return result !== false;
    });
    return result;
  }

  /** Sets the waiters bit so that unlock wakes us; returns the state to sleep on (0: free now). */
  #announce(): number {
    const state = Atomics.load(this.#words, 0);
    if (state === 0) return 0;
    if (state & WAITERS) return state;
    return Atomics.compareExchange(this.#words, 0, state, state | WAITERS) === state ? state | WAITERS : 0;
  }

  /** How long to sleep before looking again whether the holder lives. */
  #slice(deadline: number): number {
    return slice(deadline, LIVENESS_CHECK_MS, 'lock');
  }
}
