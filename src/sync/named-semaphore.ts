/**
 * POSIX named semaphores: the ones C programs open with sem_open. A memmap process and a C
 * process that open the same name post to and wait on the same semaphore.
 *
 * @module
 */
import { MemmapError, systemError } from '../errors.js';
import {
  type AdoptRequest,
  checkAdoptable,
  infoOf,
  type SharedObjectInfo,
  statFd,
  validateTrustOwner,
} from '../internal/ownership.js';
import { validateBoolean, validateInteger, validateOptions, validatePosixName } from '../internal/validate.js';
import { addon, type SemHandle } from '../native.js';
import { futex } from './futex.js';
import type { LockOptions } from './mutex.js';
import { abortError, slice, spinUntil, waitingOf } from './placement.js';

/** Options of {@link NamedSemaphore.create}. */
export interface NamedSemaphoreCreateOptions {
  /** Permission bits of a new semaphore, exactly (whatever the umask). Default 0o600. */
  mode?: number;
  /** Fail with EEXIST if the name exists, instead of opening it. Default false. */
  exclusive?: boolean;
  /**
   * Without `exclusive`, also adopt an existing semaphore owned by this uid (one of this
   * process's own user is always adopted, if it is no more open than `mode`).
   */
  trustOwner?: number;
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
const ENOENT = -2;
const EEXIST = -17;
/** How often create() and open() try again when the name changes under them. */
const ATTEMPTS = 8;

/** glibc and musl keep the semaphore '/NAME' as the file /dev/shm/sem.NAME. */
function fileOf(name: string): string {
  return `/dev/shm/sem.${name.slice(1)}`;
}

/**
 * Opens the semaphore `name`: with `create`, makes it exclusively (and sets its mode exactly)
 * or, unless `exclusive`, adopts an existing one that checkAdoptable allows.
 *
 * sem_open gives no descriptor to check, and it has no O_NOFOLLOW to ask for (glibc adds it
 * itself). So an existing semaphore is checked through its file: opened with O_PATH |
 * O_NOFOLLOW (no permission needed, a FIFO cannot block) and fstat'ed, then sem_open'ed,
 * then the name is looked up again and must still be the inode checked first. That inode
 * stays allocated while the first descriptor is open, so its number cannot be reused; for
 * sem_open to have mapped anything else the name would have had to move away from it and
 * back. An unlinked inode can never be linked again, and in /dev/shm (sticky, mode 1777) only
 * its owner or root can rename it: the owner is this user or the one trusted. A semaphore
 * this call creates exclusively cannot be swapped for the same reason, so its mode is set
 * through its file the same way.
 */
function openHandle(
  name: string,
  create: { exclusive: boolean; value: number; request: AdoptRequest } | null,
): NamedSemaphore {
  const path = fileOf(name);
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (create !== null) {
      const made = addon.semOpen(name, true, true, create.request.mode, create.value);
      if (typeof made !== 'number') return created(made, name, path, create.request);
      if (made !== EEXIST || create.exclusive) throw systemError(made, 'sem_open', name);
    }
    const adopted = adopt(name, path, create?.request ?? openRequest(name));
    if (adopted !== null) return adopted;
  }
  throw new MemmapError(
    'ERR_MEMMAP_UNSAFE_OBJECT',
    `sem_open '${name}': the name kept changing while it was opened (${ATTEMPTS} times); another process is creating and removing it`,
  );
}

/** What open() checks of an existing semaphore: only that it is one. */
function openRequest(name: string): AdoptRequest {
  return {
    syscall: 'sem_open',
    what: 'semaphore',
    name,
    mode: 0o777,
    trustOwner: undefined,
    anyOwner: true,
    minSize: addon.semSize(),
  };
}

/** Sets the mode of the semaphore sem_open has just created; closes it on failure. */
function created(handle: SemHandle, name: string, path: string, request: AdoptRequest): NamedSemaphore {
  const fd = addon.openPath(path);
  try {
    if (fd < 0) throw systemError(fd, 'open', path);
    const found = statFd(fd, path);
    // Only this user or root can have replaced what sem_open made (see above); if it is not
    // this user's regular file any more, say so rather than change another's mode.
    checkAdoptable(found, { ...request, mode: 0o777, trustOwner: undefined });
    // sem_open applied the umask. Changing the mode of an O_PATH descriptor goes through
    // /proc, so skip it when the umask took nothing away.
    const rc = (found.mode & 0o777) === request.mode ? 0 : addon.changeMode(fd, request.mode);
    if (rc < 0) throw systemError(rc, 'fchmod', path);
    return new NamedSemaphore(kToken, handle, name, infoOf({ ...found, mode: request.mode }, true));
  } catch (error) {
    addon.semClose(handle);
    throw error;
  } finally {
    if (fd >= 0) addon.closeFd(fd);
  }
}

/**
 * Opens the existing semaphore `name` after checking its file against `request` (for open():
 * only that it is a regular file large enough: one too short would fault at the first post,
 * and memmap's guard does not cover sem_open's mapping). Null when the name vanished or
 * changed meanwhile, to try again.
 */
function adopt(name: string, path: string, request: AdoptRequest): NamedSemaphore | null {
  const fd = addon.openPath(path);
  if (fd === ENOENT && !request.anyOwner) return null;
  if (fd < 0) throw systemError(fd, 'sem_open', name);
  let handle: SemHandle | null = null;
  try {
    const found = statFd(fd, path);
    checkAdoptable(found, request);
    const opened = addon.semOpen(name, false, false, 0, 0);
    if (opened === ENOENT) return null;
    if (typeof opened === 'number') throw systemError(opened, 'sem_open', name);
    handle = opened;
    const again = addon.openPath(path);
    if (again < 0) return null;
    try {
      const now = statFd(again, path);
      if (now.device !== found.device || now.inode !== found.inode) return null;
    } finally {
      addon.closeFd(again);
    }
    handle = null;
    return new NamedSemaphore(kToken, opened, name, infoOf(found, false));
  } finally {
    if (handle !== null) addon.semClose(handle);
    addon.closeFd(fd);
  }
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

  readonly #info: SharedObjectInfo;

  /** @internal Use {@link NamedSemaphore.create} or {@link NamedSemaphore.open}. */
  constructor(token: symbol, handle: SemHandle, name: string, info: SharedObjectInfo) {
    if (token !== kToken) throw new TypeError('Use NamedSemaphore.create() or NamedSemaphore.open()');
    this.#handle = handle;
    this.name = name;
    this.#info = info;
  }

  /**
   * The owner, group and permission bits the semaphore had when this handle opened it, and
   * whether create() made it. After {@link NamedSemaphore.open} of a name another user could
   * have planted, check `uid` before relying on the count.
   * @example
   * using ready = NamedSemaphore.open('/jobs-ready');
   * if (ready.info().uid !== process.geteuid()) throw new Error('not ours');
   */
  info(): SharedObjectInfo {
    return { ...this.#info };
  }

  /**
   * Opens the semaphore `name`, creating it with value `initial` if it does not exist
   * (`initial` and `mode` apply only to a new one, which has exactly `mode` whatever the umask).
   *
   * Safety: without `exclusive`, an existing semaphore is adopted only if it is a regular file
   * (not a symbolic link), owned by this process's user (or by `trustOwner`), and no more open
   * to group and others than `mode`: another user may have planted it with a count of their
   * choosing. New code should pass `exclusive: true` with a random or per-user name.
   * @throws ERR_INVALID_ARG_VALUE for a bad name; EEXIST with `exclusive` when the name exists;
   * ERR_MEMMAP_UNSAFE_OBJECT for an existing semaphore it may not adopt; EACCES when its
   * permission bits shut this user out.
   * @example
   * using ready = NamedSemaphore.create('/jobs-ready', 0);
   */
  static create(name: string, initial = 0, options?: NamedSemaphoreCreateOptions): NamedSemaphore {
    validatePosixName(name, NAME_MAX);
    validateInteger(initial, 'initial', 0, VALUE_MAX);
    const opts = validateOptions(options, 'options', ['mode', 'exclusive', 'trustOwner'] as const);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o777);
    const exclusive = opts.exclusive === undefined ? false : validateBoolean(opts.exclusive, 'options.exclusive');
    const trustOwner = validateTrustOwner(opts.trustOwner, exclusive);
    const request = { syscall: 'sem_open', what: 'semaphore', name, mode, trustOwner, minSize: addon.semSize() };
    return openHandle(name, { exclusive, value: initial, request });
  }

  /**
   * Opens an existing semaphore. {@link NamedSemaphore.info} tells who owns it.
   * @throws ENOENT when no semaphore has that name; EACCES; ERR_MEMMAP_UNSAFE_OBJECT for a
   * symbolic link or a file that holds no semaphore under the name.
   */
  static open(name: string): NamedSemaphore {
    validatePosixName(name, NAME_MAX);
    return openHandle(name, null);
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
