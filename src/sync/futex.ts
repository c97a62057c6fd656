/**
 * Waiting on a 32-bit word in shared memory, and waking the waiters: the building block of
 * every lock between processes (Linux futexes, shared between processes, not private).
 *
 * Unlike Atomics.wait and Atomics.notify, which only reach threads of one process, these
 * work across processes that map the same memory (a file, a SharedMemory object) and between
 * worker threads alike.
 *
 * @module
 */
import { invalidArgType, MemmapError, systemError } from '../errors.js';
import { validateInteger, validateOptions } from '../internal/validate.js';
import { addon } from '../native.js';
import { abortError } from './placement.js';

/** Options of {@link futex.waitAsync}. */
export interface WaitAsyncOptions {
  /** Milliseconds before the promise rejects with ERR_MEMMAP_TIMEOUT. Default: no limit. */
  timeout?: number;
  /** Rejects the promise with an AbortError when aborted. */
  signal?: AbortSignal;
}

interface Pending {
  resolve(value: 'ok'): void;
  reject(error: Error): void;
  /** Kept until the result arrives: the word must not be collected while a thread waits on it. */
  array: Int32Array;
  index: number;
  /** Aborted after the waiter thread had taken the wait off its list: the result is in flight. */
  abandoned: boolean;
  cleanup(): void;
}

/** The longest single sleep of a sync wait in the kernel, in nanoseconds (see futex.wait). */
export const SLICE_NS = 100e6;

/** The status of a wait whose memory was closed under it (native kWaitClosed, -ESHUTDOWN). */
const WAIT_CLOSED = -108;

const pending = new Map<number, Pending>();
let nextId = 1;
let initialised = false;

function dispatch(id: number, status: number): void {
  const wait = pending.get(id);
  if (wait === undefined) return;
  pending.delete(id);
  wait.cleanup();
  if (wait.abandoned) {
    // The promise was rejected already; a wake spent on it goes on to the next waiter.
    if (status === 0) addon.futexWake(wait.array, wait.index, 1);
    return;
  }
  if (status === 0) wait.resolve('ok');
  else if (status === -110 /* ETIMEDOUT */) wait.reject(timeoutError());
  else if (status === WAIT_CLOSED) {
    wait.reject(new MemmapError('ERR_MEMMAP_CLOSED', 'waitAsync: the memory of the word was closed while waiting'));
  } else wait.reject(systemError(status, 'futex_waitv'));
}

function timeoutError(): MemmapError {
  return new MemmapError('ERR_MEMMAP_TIMEOUT', 'waitAsync: the wait timed out');
}

function checkWord(array: unknown, index: unknown): number {
  if (!(array instanceof Int32Array)) throw invalidArgType('array', 'an instance of Int32Array', array);
  return validateInteger(index, 'index', 0, Math.max(array.length - 1, 0));
}

function checkTimeout(timeout: unknown, name: string): number {
  if (timeout === undefined || timeout === Number.POSITIVE_INFINITY) return -1;
  if (typeof timeout !== 'number') throw invalidArgType(name, 'of type number', timeout);
  if (!(timeout >= 0)) validateInteger(timeout, name);
  return Math.round(timeout * 1e6);
}

/** The hint of EAGAIN when no waiter thread could be started for an async wait. */
const THREAD_REFUSED =
  'the system refused a new waiter thread for this wait (threads-max, RLIMIT_NPROC, vm.max_map_count, or memory for its 1 MiB stack); each waiter thread serves up to 127 waits (one where the kernel lacks futex_waitv): end waits that are no longer needed, or retry later';

/** Futex operations on an element of an Int32Array over shared memory. */
export const futex = {
  /**
   * Sleeps while `array[index] === expected`, until woken or `timeout` milliseconds pass. Blocks
   * the calling thread, like Atomics.wait: use it in workers, or {@link futex.waitAsync}.
   * @returns 'ok' when woken, 'not-equal' if the word did not hold `expected`, 'timed-out'.
   * @example
   * futex.wait(words, 0, 0, 1000);
   */
  wait(array: Int32Array, index: number, expected: number, timeout?: number): 'ok' | 'not-equal' | 'timed-out' {
    const i = checkWord(array, index);
    validateInteger(expected, 'expected', -(2 ** 31), 2 ** 31 - 1);
    let remaining = checkTimeout(timeout, 'timeout');
    const deadline = remaining < 0 ? 0n : process.hrtime.bigint() + BigInt(remaining);
    for (;;) {
      // The kernel sleep lasts at most SLICE_NS; then JavaScript runs again (so that
      // worker.terminate() and process.exit() are not held up) and sleeps again on the same
      // expected value, which keeps the futex's meaning: a wake in between is not missed,
      // since a changed word answers 'not-equal' at once.
      const slice = remaining < 0 ? SLICE_NS : Math.min(remaining, SLICE_NS);
      const rc = addon.futexWait(array, i, expected, slice);
      if (rc === 0) return 'ok';
      if (rc === -11 /* EAGAIN */) return 'not-equal';
      if (rc !== -110 /* ETIMEDOUT */ && rc !== -4 /* EINTR */) throw systemError(rc, 'futex');
      if (remaining >= 0) {
        remaining = Math.max(0, Number(deadline - process.hrtime.bigint()));
        if (remaining === 0 && rc === -110) return 'timed-out';
      }
    }
  },

  /**
   * Wakes up to `count` (default: all) threads or processes waiting on `array[index]`.
   * @returns how many were woken.
   */
  wake(array: Int32Array, index: number, count = 2 ** 31 - 1): number {
    const i = checkWord(array, index);
    validateInteger(count, 'count', 0, 2 ** 31 - 1);
    const rc = addon.futexWake(array, i, count);
    if (rc < 0) throw systemError(rc, 'futex');
    return rc;
  },

  /**
   * Waits without blocking: resolves 'not-equal' at once if the word does not hold
   * `expected`, otherwise 'ok' when the word is woken or changes. The wait is served by
   * memmap's own waiter threads, not libuv's pool, so any number of them can be pending
   * while fs calls go on. A pending wait keeps the process alive. A wait aborted after it was
   * woken passes the wake on to another waiter of the word, so that none is lost.
   * @throws (rejects) MemmapError ERR_MEMMAP_TIMEOUT after `timeout` ms; ERR_MEMMAP_CLOSED
   * when the memmap mapping that holds the word is closed meanwhile; an AbortError when
   * `signal` aborts.
   * @example
   * await futex.waitAsync(words, 0, 0, { timeout: 5000 });
   */
  waitAsync(
    array: Int32Array,
    index: number,
    expected: number,
    options?: WaitAsyncOptions,
  ): Promise<'ok' | 'not-equal'> {
    const i = checkWord(array, index);
    validateInteger(expected, 'expected', -(2 ** 31), 2 ** 31 - 1);
    const opts = validateOptions(options, 'options', ['timeout', 'signal'] as const);
    const timeout = checkTimeout(opts.timeout, 'options.timeout');
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (Atomics.load(array, i) !== expected) return Promise.resolve('not-equal');
    if (!initialised) {
      addon.waiterInit(dispatch);
      initialised = true;
    }
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const entry = pending.get(id);
        if (entry === undefined) return;
        // Cancelled in time, the waiter thread passes on a wake it had already taken; too
        // late, the result is on its way and dispatch passes the wake on.
        if (addon.futexCancel(id) === 1) pending.delete(id);
        else entry.abandoned = true;
        reject(abortError(signal as AbortSignal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      pending.set(id, {
        resolve,
        reject,
        array,
        index: i,
        abandoned: false,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      });
      const rc = addon.futexWaitAsync(array, i, expected, timeout, id);
      if (rc < 0) {
        // The one failure that comes back at once: every waiter thread was full and the
        // system refused a new one.
        pending.delete(id);
        signal?.removeEventListener('abort', onAbort);
        reject(systemError(rc, 'pthread_create', null, THREAD_REFUSED));
      }
    });
  },
};
