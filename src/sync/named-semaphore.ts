/**
 * POSIX named semaphores: the ones C programs open with sem_open. A memmap process and a C
 * process that open the same name post to and wait on the same semaphore.
 *
 * @module
 */
import { MemmapError, systemError } from '../errors.js';
import { validateBoolean, validateInteger, validateOptions, validatePosixName } from '../internal/validate.js';
import { addon, type SemHandle } from '../native.js';
import { futex } from './futex.js';
import type { LockOptions } from './mutex.js';
import { abortError, slice, spinUntil, waitingOf } from './placement.js';

/** Options of {@link NamedSemaphore.create}. */
export interface NamedSemaphoreCreateOptions {
  /** Permission bits of a new semaphore (the umask applies, as in C). Default 0o600. */
  mode?: number;
  /** Fail with EEXIST if the name exists, instead of opening it. Default false. */
  exclusive?: boolean;
}

/** The largest value a POSIX semaphore holds on Linux (SEM_VALUE_MAX). */
const VALUE_MAX = 2 ** 31 - 1;
/** glibc keeps sem.NAME in /dev/shm, so a name may take at most 251 bytes. */
const NAME_MAX = 251;
/** An asynchronous wait re-checks in slices, so that a missed wake-up costs at most this. */
const SLICE_MS = 1000;
const WAITER = 1n << 32n;
const EAGAIN = -11;
const ETIMEDOUT = -110;

function openHandle(name: string, create: boolean, exclusive: boolean, mode: number, value: number): NamedSemaphore {
  const handle = addon.semOpen(name, create, exclusive, mode, value);
  if (typeof handle === 'number') throw systemError(handle, 'sem_open', name);
  return new NamedSemaphore(kToken, handle, name);
}

const kToken = Symbol('NamedSemaphore');

/**
 * A POSIX named semaphore (sem_open(3)). It lives in the kernel's shared memory under its
 * name until {@link NamedSemaphore.unlink} removes it; every process that opens the name,
 * memmap or C, shares the one count.
 *
 * Asynchronous waits sleep on memmap's waiter threads, as futex.waitAsync does, on the
 * semaphore's own word: a sem_post from C wakes them directly.
 */
export class NamedSemaphore {
  /** The name it was opened with, such as '/jobs-ready'. */
  readonly name: string;
  #handle: SemHandle | null;
  /** The semaphore's bytes, for asynchronous waits; null until needed, or when unusable. */
  #state: { word: BigInt64Array; value: Int32Array } | null | undefined;
  /** Aborted by close(), so that pending asynchronous waits end. */
  readonly #closing = new AbortController();
  /** How many asynchronous waits of this object are registered as sleepers in the semaphore. */
  #sleepers = 0;

  /** @internal Use {@link NamedSemaphore.create} or {@link NamedSemaphore.open}. */
  constructor(token: symbol, handle: SemHandle, name: string) {
    if (token !== kToken) throw new TypeError('Use NamedSemaphore.create() or NamedSemaphore.open()');
    this.#handle = handle;
    this.name = name;
  }

  /**
   * Opens the semaphore `name`, creating it with value `initial` if it does not exist
   * (`initial` and `mode` apply only to a new one).
   * @throws ERR_INVALID_ARG_VALUE for a bad name; EEXIST with `exclusive` when the name exists;
   * EACCES when its permission bits shut this user out.
   * @example
   * using ready = NamedSemaphore.create('/jobs-ready', 0);
   */
  static create(name: string, initial = 0, options?: NamedSemaphoreCreateOptions): NamedSemaphore {
    validatePosixName(name, NAME_MAX);
    validateInteger(initial, 'initial', 0, VALUE_MAX);
    const opts = validateOptions(options, 'options', ['mode', 'exclusive'] as const);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o777);
    const exclusive = opts.exclusive === undefined ? false : validateBoolean(opts.exclusive, 'options.exclusive');
    return openHandle(name, true, exclusive, mode, initial);
  }

  /**
   * Opens an existing semaphore.
   * @throws ENOENT when no semaphore has that name; EACCES.
   */
  static open(name: string): NamedSemaphore {
    validatePosixName(name, NAME_MAX);
    return openHandle(name, false, false, 0, 0);
  }

  /**
   * Removes a name. Processes that have the semaphore open keep using it; the name can be
   * created anew at once.
   * @throws ENOENT when no semaphore has that name.
   */
  static unlink(name: string): void {
    validatePosixName(name, NAME_MAX);
    const rc = addon.semUnlink(name);
    if (rc < 0) throw systemError(rc, 'sem_unlink', name);
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** The value now (a snapshot: other processes may change it at once). */
  get value(): number {
    const rc = addon.semValue(this.#open('value'));
    if (rc < 0) throw systemError(rc, 'sem_getvalue', this.name);
    return rc;
  }

  /**
   * Adds one and wakes a waiter, in this process or any other.
   * @throws EOVERFLOW at the largest value, 2^31 - 1.
   */
  post(): void {
    const rc = addon.semPost(this.#open('post'));
    if (rc < 0) throw systemError(rc, 'sem_post', this.name);
  }

  /** Takes one if the value is above zero; returns whether it did. */
  tryWait(): boolean {
    const rc = addon.semTryWait(this.#open('tryWait'));
    if (rc === 0) return true;
    if (rc === EAGAIN) return false;
    throw systemError(rc, 'sem_trywait', this.name);
  }

  /**
   * Takes one, sleeping while the value is zero. Blocks the calling thread (it is sem_wait):
   * use waitAsync on a server's main thread.
   * @throws ERR_MEMMAP_TIMEOUT after `timeout` ms.
   */
  wait(options?: Omit<LockOptions, 'signal'>): void {
    const { deadline, spin } = waitingOf(options, false);
    const handle = this.#open('wait');
    if (spinUntil(spin, () => this.tryWait())) return;
    const left = deadline - performance.now();
    const timeout = left === Number.POSITIVE_INFINITY ? -1 : Math.max(0, Math.round(left * 1e6));
    const rc = addon.semWait(handle, timeout);
    if (rc === ETIMEDOUT) throw new MemmapError('ERR_MEMMAP_TIMEOUT', `wait: ${this.name} was not posted in time`);
    if (rc < 0) throw systemError(rc, 'sem_wait', this.name);
  }

  /**
   * Takes one without blocking the event loop. Where the semaphore's layout is known (glibc,
   * 64-bit) the wait sleeps on memmap's waiter threads and sem_post wakes it directly;
   * elsewhere it polls, at most every 16 ms.
   * @throws (rejects) ERR_MEMMAP_TIMEOUT; an AbortError when `signal` aborts;
   * ERR_MEMMAP_CLOSED when the semaphore is closed meanwhile.
   */
  async waitAsync(options?: LockOptions): Promise<void> {
    const { deadline, spin, signal } = waitingOf(options, true);
    if (this.tryWait() || spinUntil(spin, () => this.tryWait())) return;
    const state = this.#stateView();
    if (state === null) return this.#poll(deadline, signal);
    const stop = signal ? AbortSignal.any([signal, this.#closing.signal]) : this.#closing.signal;
    // Register as a sleeper, as sem_wait does, so that sem_post wakes the value word.
    Atomics.add(state.word, 0, WAITER);
    this.#sleepers++;
    try {
      for (;;) {
        const word = Atomics.load(state.word, 0);
        if ((word & 0xffffffffn) > 0n) {
          if (Atomics.compareExchange(state.word, 0, word, word - 1n) === word) return;
          continue;
        }
        if (stop.aborted) throw this.#stopped(signal);
        const timeout = slice(deadline, SLICE_MS, 'waitAsync');
        try {
          await futex.waitAsync(state.value, 0, 0, { timeout, signal: stop });
        } catch (error) {
          if ((error as { name?: string }).name === 'AbortError') throw this.#stopped(signal);
          if ((error as { code?: string }).code !== 'ERR_MEMMAP_TIMEOUT') throw error;
        }
      }
    } finally {
      // close() already withdrew the registrations of waits it ended.
      if (this.#handle !== null) {
        Atomics.sub(state.word, 0, WAITER);
        this.#sleepers--;
      }
    }
  }

  /**
   * Closes this process's handle (sem_close); the semaphore stays until unlinked. Pending
   * waitAsync calls reject with ERR_MEMMAP_CLOSED. Calling it again does nothing.
   */
  close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    if (this.#state && this.#sleepers > 0) Atomics.sub(this.#state.word, 0, BigInt(this.#sleepers) * WAITER);
    this.#sleepers = 0;
    this.#handle = null;
    this.#closing.abort();
    const rc = addon.semClose(handle);
    if (rc < 0) throw systemError(rc, 'sem_close', this.name);
  }

  /** Same as {@link NamedSemaphore.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(what: string): SemHandle {
    if (this.#handle === null) throw new MemmapError('ERR_MEMMAP_CLOSED', `${what}: the semaphore is closed`);
    return this.#handle;
  }

  #stateView(): { word: BigInt64Array; value: Int32Array } | null {
    if (this.#state === undefined) {
      const state = addon.semState(this.#open('waitAsync'));
      this.#state =
        state instanceof ArrayBuffer
          ? { word: new BigInt64Array(state, 0, 1), value: new Int32Array(state, 0, 1) }
          : null;
    }
    return this.#state;
  }

  #stopped(signal: AbortSignal | undefined): Error {
    if (signal?.aborted) return abortError(signal);
    return new MemmapError('ERR_MEMMAP_CLOSED', 'waitAsync: the semaphore was closed while waiting');
  }

  /** Where the layout is unknown: tryWait with a growing pause, up to 16 ms. */
  async #poll(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    for (let pause = 1; ; pause = Math.min(pause * 2, 16)) {
      if (signal?.aborted || this.#handle === null) throw this.#stopped(signal);
      if (this.tryWait()) return;
      const ms = slice(deadline, pause, 'waitAsync');
      await new Promise((done) => setTimeout(done, ms));
    }
  }
}
