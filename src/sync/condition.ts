/**
 * A condition variable that lives inside shared memory, used with a {@link Mutex}: wait
 * releases the mutex and sleeps until notified, then takes the mutex again.
 *
 * Layout: four 32-bit words at a 4-aligned byte offset (16 bytes): [0] a sequence number that
 * every notify advances, [1] how many threads sleep in wait (so that notify can skip the
 * system call when none do), [2] a marker, [3] reserved.
 *
 * @module
 */
import { MemmapError } from '../errors.js';
import { validateInteger } from '../internal/validate.js';
import type { Mapping } from '../mapping.js';
import { futex } from './futex.js';
import type { LockResult, Mutex } from './mutex.js';
import {
  abortError,
  attachWords,
  checkOpen,
  createOrAttachWords,
  createWords,
  type SyncTarget,
  waitingOf,
} from './placement.js';

const MARKER = 0x6d636e64;

function timeoutError(): MemmapError {
  return new MemmapError('ERR_MEMMAP_TIMEOUT', 'wait: not notified within the timeout (the mutex is held again)');
}

/**
 * A condition variable in shared memory, for processes and worker threads. The classic
 * pattern: hold the mutex, check the shared state, and wait while it is not what you need;
 * whoever changes the state notifies.
 *
 * Like every condition variable, a wait may return without a notify (when another waiter got
 * there first, or the mutex's holder died): always wait in a loop that checks the state.
 * @example
 * mutex.lock();
 * while (queue.length === 0) condition.wait(mutex);
 * const job = queue.shift();
 * mutex.unlock();
 */
export class Condition {
  readonly #words: Int32Array;
  readonly #mapping: Mapping | null;

  private constructor(words: Int32Array, mapping: Mapping | null) {
    this.#words = words;
    this.#mapping = mapping;
  }

  /** Sets up a condition at `byteOffset` (a multiple of 4; 16 bytes). */
  static create(target: SyncTarget, byteOffset = 0): Condition {
    return new Condition(...createWords(target, byteOffset, 'Condition', MARKER));
  }

  /** Joins a condition created at `byteOffset` by another process or thread. */
  static attach(target: SyncTarget, byteOffset = 0): Condition {
    return new Condition(...attachWords(target, byteOffset, 'Condition', MARKER));
  }

  /**
   * Joins the condition at `byteOffset`, or sets it up if the words there hold zeros; exactly
   * one caller sets it up, the others wait up to 5 s for it. As Semaphore.createOrAttach.
   */
  static createOrAttach(target: SyncTarget, byteOffset = 0): Condition {
    const [words, mapping] = createOrAttachWords(target, byteOffset, 'Condition', MARKER);
    return new Condition(words, mapping);
  }

  /**
   * Releases `mutex` (which this thread must hold), sleeps until notified, and takes `mutex`
   * again. Blocks the calling thread: use waitAsync on a server's main thread.
   * @returns what taking the mutex again reported: 'acquired', or 'owner-died'.
   * @throws ERR_MEMMAP_NOT_OWNER if this thread does not hold `mutex`; ERR_MEMMAP_TIMEOUT after
   * `timeout` ms, with the mutex held again.
   */
  wait(mutex: Mutex, options?: { timeout?: number }): LockResult {
    const { deadline } = waitingOf(options, false, false);
    const sequence = this.#release(mutex);
    let timedOut = false;
    try {
      const left = deadline - performance.now();
      timedOut = left <= 0 || futex.wait(this.#words, 0, sequence, left) === 'timed-out';
    } finally {
      if (!this.#mapping?.closed) Atomics.sub(this.#words, 1, 1);
    }
    const result = mutex.lock();
    if (timedOut && result === 'acquired') throw timeoutError();
    return result;
  }

  /**
   * Same as {@link Condition.wait} without blocking the event loop: sleeps on memmap's waiter
   * threads and takes the mutex again with lockAsync.
   * @throws (rejects) ERR_MEMMAP_NOT_OWNER; ERR_MEMMAP_TIMEOUT; an AbortError when `signal`
   * aborts. In each case the mutex is held again when the promise settles.
   */
  async waitAsync(mutex: Mutex, options?: { timeout?: number; signal?: AbortSignal }): Promise<LockResult> {
    const { deadline, signal } = waitingOf(options, true, false);
    if (signal?.aborted) throw abortError(signal);
    const sequence = this.#release(mutex);
    let failure: Error | null = null;
    try {
      const timeout = deadline - performance.now();
      if (timeout <= 0) failure = timeoutError();
      else await futex.waitAsync(this.#words, 0, sequence, { timeout, ...(signal ? { signal } : {}) });
    } catch (error) {
      failure = (error as { code?: string }).code === 'ERR_MEMMAP_TIMEOUT' ? timeoutError() : (error as Error);
    } finally {
      if (!this.#mapping?.closed) Atomics.sub(this.#words, 1, 1);
    }
    const result = await mutex.lockAsync();
    if (failure !== null && result === 'acquired') throw failure;
    return result;
  }

  /** Wakes up to `count` (default 1) threads or processes waiting on this condition. */
  notify(count = 1): void {
    validateInteger(count, 'count', 0, 2 ** 31 - 1);
    checkOpen(this.#mapping, 'Condition');
    Atomics.add(this.#words, 0, 1);
    if (Atomics.load(this.#words, 1) > 0) futex.wake(this.#words, 0, count);
  }

  /** Wakes every thread and process waiting on this condition. */
  notifyAll(): void {
    this.notify(2 ** 31 - 1);
  }

  /** Registers as a waiter and releases the mutex; returns the sequence number to sleep on. */
  #release(mutex: Mutex): number {
    checkOpen(this.#mapping, 'Condition');
    const sequence = Atomics.load(this.#words, 0);
    Atomics.add(this.#words, 1, 1);
    try {
      mutex.unlock();
    } catch (error) {
      if (!this.#mapping?.closed) Atomics.sub(this.#words, 1, 1);
      throw error;
    }
    return sequence;
  }
}
