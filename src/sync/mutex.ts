/**
 * A mutex that lives inside shared memory: usable between processes and worker threads, sync
 * and async, and robust: when the holder dies, the next locker gets the lock and is told.
 *
 * Layout: a 64-byte record at an 8-aligned byte offset, in the kernel's own vocabulary
 * (include/uapi/linux/futex.h), so that a reader who knows glibc's robust mutexes recognises it:
 *   [0, 4)   the owner word: 0 when free, else the owner's thread id in bits 0-29
 *            (FUTEX_TID_MASK), bit 30 FUTEX_OWNER_DIED (set by the kernel when the owner
 *            died holding it), bit 31 FUTEX_WAITERS (set by a waiter before it sleeps). One
 *            atomic operation writes the owner, so no kill between two stores can leave the
 *            lock stuck or let two threads in;
 *   [4, 8)   reserved, 0;
 *   [8, 12)  the marker and layout version (MARKER), so that attach() can tell a Mutex;
 *   [12, 16) reserved, 0;
 *   [16, 64) the holder's robust list node: while a thread holds the lock, the record is
 *            linked into that thread's robust futex list (the one its C library registered),
 *            and this is where the link pointers go (native/os/lock.h has the rules).
 * When the owning thread dies, the kernel finds the record on its list, sets FUTEX_OWNER_DIED
 * and wakes a waiter: in any pid namespace, within microseconds, without anybody polling.
 *
 * @module
 */
import { MemmapError, systemError } from '../errors.js';
import { validateBoolean, validateOptions } from '../internal/validate.js';
import type { Mapping } from '../mapping.js';
import { addon, type LockHandle } from '../native.js';
import { futex, SLICE_NS } from './futex.js';
import {
  abortError,
  attachWords,
  checkOpen,
  createOrAttachWords,
  createWords,
  placeWords,
  type Shape,
  type SyncTarget,
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

/** 'mmx2': a Mutex of this layout (64 bytes, robust-list owner word). */
const MARKER = 0x6d6d7832;
/** 'mmtx': the marker of the 16-byte layout of earlier versions (owner pid in a second word). */
const OLD_MARKER = 0x6d6d7478;
const SHAPE: Shape = { size: 64, align: 8 };
/** FUTEX_WAITERS, bit 31 (negative as an int32). */
const WAITERS = 1 << 31;
/** FUTEX_TID_MASK. */
const TID_MASK = 0x3fffffff;
const OWNER_DIED_BIT = 0x40000000;

const ACQUIRED = 0;
const OWNER_DIED = 1;
const EDEADLK = -35;
const ETIMEDOUT = -110;

/**
 * What the async lockers of this thread share for one Mutex (keyed by the target and offset,
 * so that two Mutex objects over the same bytes share it): whether this thread holds it, and
 * the async callers waiting for their turn, first come first served.
 */
interface Lane {
  /** This thread holds the lock (whether through lock, tryLock or lockAsync). */
  owned: boolean;
  /** An async caller of this thread is taking the lock now. */
  taking: boolean;
  /** Async callers waiting for their turn to take it. */
  queue: Array<() => void>;
}

const lanes = new WeakMap<object, Map<number, Lane>>();

/**
 * The Mutex objects through which this thread holds locks, by the lock word's address (two
 * Mutex objects over the same memory, one through a Mapping and one through its
 * sharedBuffer(), say, are one lock: either may unlock what the other locked). While a thread holds a
 * lock, its record stays linked into the thread's robust futex list, and the kernel walks that
 * list when the thread dies: were the Mutex and its memory garbage collected meanwhile (code
 * that locks and keeps no reference is common), the memory would be unmapped under the record,
 * and the walk would stop there, leaving the lock held by a dead thread for ever. Held here,
 * the memory stays mapped until unlock.
 */
const holding = {
  // A thread holds few locks at once: a short array searched from its end (the latest lock is
  // the one unlocked first) costs less per lock and unlock than a Map.
  addresses: [] as number[],
  holders: [] as Mutex[],
  set(address: number, holder: Mutex): void {
    const at = this.addresses.lastIndexOf(address);
    if (at >= 0) this.holders[at] = holder;
    else {
      this.addresses.push(address);
      this.holders.push(holder);
    }
  },
  has(address: number): boolean {
    return this.addresses.lastIndexOf(address) >= 0;
  },
  /** Forgets the lock at `address`; returns the Mutex it was held through, if any. */
  take(address: number): Mutex | undefined {
    const at = this.addresses.lastIndexOf(address);
    if (at < 0) return undefined;
    const holder = this.holders[at];
    const last = this.addresses.length - 1;
    this.addresses[at] = this.addresses[last] as number;
    this.holders[at] = this.holders[last] as Mutex;
    this.addresses.pop();
    this.holders.pop();
    return holder;
  },
};

function laneOf(target: object, byteOffset: number): Lane {
  let byOffset = lanes.get(target);
  if (byOffset === undefined) {
    byOffset = new Map();
    lanes.set(target, byOffset);
  }
  let lane = byOffset.get(byteOffset);
  if (lane === undefined) {
    lane = { owned: false, taking: false, queue: [] };
    byOffset.set(byteOffset, lane);
  }
  return lane;
}

function unsupported(rc: number): MemmapError {
  return new MemmapError(
    'ERR_MEMMAP_UNSUPPORTED',
    rc === -34
      ? 'Mutex: the C library of this thread keeps its robust futex list where a Mutex record has no room for it'
      : 'Mutex: this thread has no robust futex list (get_robust_list(2)), so a dead holder could not be noticed',
  );
}

function timeoutError(): MemmapError {
  return new MemmapError('ERR_MEMMAP_TIMEOUT', 'lock: not done within the timeout');
}

/**
 * A robust mutex in shared memory. Ownership is per thread: the process and thread (main or
 * worker) that locked it must unlock it. If the holder dies (killed, crashed, a worker that
 * exited), the kernel marks the lock, the next locker gets it and `lock()` answers
 * 'owner-died' instead of 'acquired': the data the lock protects may be half-updated, repair
 * it before going on. Async callers on one thread (lockAsync, withLock) queue in order.
 *
 * Safety: a live holder is never robbed, in any pid namespace: only the kernel, which sees
 * the thread die, marks its lock. While this thread holds the lock, the Mutex and its
 * memory stay reachable (the kernel walks the thread's robust list at its death, and memory
 * unmapped under a linked record would end the walk). Closing the mapping while holding hands
 * the lock on as 'owner-died'.
 */
export class Mutex {
  readonly #words: Int32Array;
  /** The lock word's native handle; #words keeps its memory mapped. */
  readonly #record: LockHandle;
  readonly #mapping: Mapping | null;
  readonly #lane: Lane;
  /** The lock word's address in this process: the key of `holding`. */
  readonly #address: number;

  private constructor([words, mapping]: [Int32Array, Mapping | null], target: object, byteOffset: number) {
    const rc = addon.lockCheck(words);
    if (rc === -22) {
      throw new MemmapError(
        'ERR_MEMMAP_UNSUPPORTED',
        'Mutex: the record is not 8-aligned in memory (map the file from an offset that is a multiple of 8)',
      );
    }
    if (rc < 0) throw unsupported(rc);
    this.#words = words;
    this.#record = addon.lockRecord(words);
    this.#mapping = mapping;
    this.#lane = laneOf(target, byteOffset);
    this.#address = addon.lockAddress(this.#record);
  }

  /**
   * Sets up a new, unlocked Mutex at `byteOffset` (a multiple of 8; it takes 64 bytes).
   * Do it once, before other processes attach.
   * @throws ERR_MEMMAP_UNSUPPORTED if this thread has no robust futex list.
   * @example
   * using shm = SharedMemory.create('/counter', 4096);
   * const mutex = Mutex.create(shm, 0);
   */
  static create(target: MutexTarget, byteOffset = 0, options?: { reset?: boolean }): Mutex {
    const opts = validateOptions(options, 'options', ['reset'] as const);
    const reset = opts.reset === undefined ? false : validateBoolean(opts.reset, 'options.reset');
    if (!reset) {
      const [words] = placeWords(target, byteOffset, 'Mutex', SHAPE);
      const state = Atomics.load(words, 0);
      if (Atomics.load(words, 2) === MARKER && (state & TID_MASK) !== 0 && (state & OWNER_DIED_BIT) === 0) {
        throw new MemmapError(
          'ERR_MEMMAP_BUSY',
          `Mutex.create: a thread (${state & TID_MASK}) holds the Mutex at byte ${byteOffset} now; setting it up again would free the lock under its holder: use Mutex.attach, or pass { reset: true } if no one can be holding it`,
        );
      }
    }
    return new Mutex(createWords(target, byteOffset, 'Mutex', MARKER, 0, SHAPE), target, byteOffset);
  }

  /**
   * Joins the Mutex at `byteOffset`, or sets it up if the 64 bytes there hold zeros (new
   * memory): processes started in any order meet without a retry loop, and exactly one of them
   * sets it up. Waits up to 5 s for one that is setting it up now.
   * @throws ERR_MEMMAP_TIMEOUT if a setup began and never finished; ERR_INVALID_ARG_VALUE if the
   * bytes hold something else; ERR_MEMMAP_UNSUPPORTED over a Mutex of an earlier layout.
   * @example
   * const mutex = Mutex.createOrAttach(shm, 0);
   */
  static createOrAttach(target: MutexTarget, byteOffset = 0): Mutex {
    let placed: [Int32Array, Mapping | null];
    try {
      placed = createOrAttachWords(target, byteOffset, 'Mutex', MARKER, 0, SHAPE);
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_INVALID_ARG_VALUE') Mutex.attach(target, byteOffset);
      throw error;
    }
    return new Mutex(placed, target, byteOffset);
  }

  /**
   * Joins a Mutex another process or thread created at `byteOffset`.
   * @throws ERR_INVALID_ARG_VALUE if there is no Mutex there; ERR_MEMMAP_UNSUPPORTED if it was
   * made by an earlier version of memmap (another layout).
   */
  static attach(target: MutexTarget, byteOffset = 0): Mutex {
    let placed: [Int32Array, Mapping | null];
    try {
      placed = attachWords(target, byteOffset, 'Mutex', MARKER, SHAPE);
    } catch (error) {
      const words = (() => {
        try {
          return attachWords(target, byteOffset, 'Mutex', OLD_MARKER)[0];
        } catch {
          return null;
        }
      })();
      if (words !== null) {
        throw new MemmapError(
          'ERR_MEMMAP_UNSUPPORTED',
          'Mutex.attach: this Mutex was created by an earlier version of memmap (16-byte layout); create it again',
        );
      }
      throw error;
    }
    return new Mutex(placed, target, byteOffset);
  }

  /** Whether some thread holds the lock now (a snapshot). */
  get locked(): boolean {
    this.#check();
    return (Atomics.load(this.#words, 0) & TID_MASK) !== 0;
  }

  /**
   * Takes the lock if it is free (or its holder died).
   * @returns 'acquired', 'owner-died', or false when another live thread holds it.
   * @throws ERR_MEMMAP_DEADLOCK if this thread holds it already.
   */
  tryLock(): LockResult | false {
    this.#check();
    const rc = addon.lockTry(this.#record, false);
    return rc === 2 ? false : this.#taken(rc);
  }

  /**
   * Takes the lock, sleeping while another thread holds it. Blocks the calling thread: use
   * lockAsync on a server's main thread.
   * @throws ERR_MEMMAP_TIMEOUT; ERR_MEMMAP_DEADLOCK if this thread holds it already.
   */
  lock(options?: Omit<LockOptions, 'signal'>): LockResult {
    this.#check();
    if (options === undefined) {
      // The uncontended case first, before any option parsing: one native call.
      const rc = addon.lockTry(this.#record, false);
      if (rc !== 2) return this.#taken(rc);
    }
    const { deadline, spin } = waitingOf(options, false);
    const spun = this.#spin(spin);
    if (spun !== false) return spun;
    try {
      for (;;) {
        this.#check();
        const left = (deadline - performance.now()) * 1e6;
        if (left <= 0) throw timeoutError();
        const rc = addon.lockWait(this.#record, Math.min(left, SLICE_NS));
        if (rc !== ETIMEDOUT) return this.#taken(rc);
      }
    } finally {
      addon.lockWaitEnd();
    }
  }

  /**
   * Takes the lock without blocking the event loop: the waiting happens on memmap's waiter
   * threads, never libuv's pool. Async callers of one thread take turns, first come first
   * served, including behind a lock this thread took with lock().
   * @throws (rejects) ERR_MEMMAP_TIMEOUT; an AbortError when `signal` aborts.
   */
  async lockAsync(options?: LockOptions): Promise<LockResult> {
    const { deadline, spin, signal } = waitingOf(options, true);
    this.#check();
    if (signal?.aborted) throw abortError(signal);
    const lane = this.#lane;
    if (lane.owned || lane.taking || lane.queue.length > 0) await this.#turn(deadline, signal);
    lane.taking = true;
    try {
      const result = (await this.#take(deadline, spin, signal)) as LockResult;
      lane.owned = true;
      return result;
    } finally {
      lane.taking = false;
      if (!lane.owned) this.#next();
    }
  }

  /**
   * Releases the lock and wakes a waiter.
   * @throws ERR_MEMMAP_NOT_OWNER if this thread does not hold it.
   */
  unlock(): void {
    // Closing the mapping handed the lock on already (as a death would): this thread holds
    // nothing here any more, and says so below.
    if (this.#mapping?.closed) this.#disown();
    this.#check();
    if (addon.lockRelease(this.#record) !== 0) {
      if (holding.has(this.#address) && !addon.lockHeld(this.#record)) this.#disown();
      const state = Atomics.load(this.#words, 0);
      throw new MemmapError(
        'ERR_MEMMAP_NOT_OWNER',
        (state & TID_MASK) === 0
          ? 'unlock: the mutex is not locked'
          : 'unlock: another thread or process holds the mutex',
      );
    }
    this.#disown();
  }

  /** This thread no longer holds the lock: the next async caller of the lane may take it. */
  #disown(): void {
    const holder = holding.take(this.#address);
    // Locked through another Mutex object over the same word: its lane is the one to free.
    if (holder !== undefined && holder !== this) holder.#freeLane();
    this.#freeLane();
  }

  #freeLane(): void {
    this.#lane.owned = false;
    this.#next();
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
      // fn may have closed the mapping, which handed the lock on already.
      if (this.#mapping?.closed) this.#disown();
      else this.unlock();
    }
  }

  #check(): void {
    checkOpen(this.#mapping, 'Mutex');
  }

  /** What a native lock call answered, as lock() reports it (taking note that we own it). */
  #taken(rc: number): LockResult {
    if (rc === ACQUIRED || rc === OWNER_DIED) {
      this.#lane.owned = true;
      holding.set(this.#address, this);
      return rc === ACQUIRED ? 'acquired' : 'owner-died';
    }
    if (rc === EDEADLK) throw new MemmapError('ERR_MEMMAP_DEADLOCK', 'lock: this thread holds the mutex already');
    if (rc === -95 || rc === -38 || rc === -34) throw unsupported(rc);
    throw systemError(rc, 'futex');
  }

  /**
   * Tries to take the lock in a tight loop for up to `micros` microseconds. It only reads the
   * word until the lock is free (or its owner died).
   */
  #spin(micros: number): LockResult | false {
    let result: LockResult | false = false;
    spinUntil(micros, () => {
      if ((Atomics.load(this.#words, 0) & TID_MASK) !== 0) return false;
      const rc = addon.lockTry(this.#record, false);
      if (rc === 2) return false;
      result = this.#taken(rc);
      return true;
    });
    return result;
  }

  /**
   * The async taking: a try on this thread, then a sleep on the waiter thread while another
   * thread holds it, and again. The owner word is only ever written here, on the owning
   * thread; the waiter thread only watches it.
   */
  async #take(deadline: number, spin: number, signal: AbortSignal | undefined): Promise<LockResult> {
    const spun = this.#spin(spin);
    if (spun !== false) return spun;
    let waited = false;
    for (;;) {
      this.#check();
      const rc = addon.lockTry(this.#record, waited);
      if (rc !== 2) {
        const result = this.#taken(rc);
        this.#lane.owned = false;
        if (signal?.aborted) {
          // Aborted while a wake was on its way to us: the lock goes on to the next waiter.
          addon.lockRelease(this.#record);
          holding.take(this.#address);
          throw abortError(signal);
        }
        return result;
      }
      const left = deadline - performance.now();
      if (signal?.aborted || left <= 0) {
        // A wake taken by this waiter, whose lock another thread then got first, must not end
        // with it: the thread that got it may not know anyone waits.
        if (waited) futex.wake(this.#words, 0, 1);
        if (signal?.aborted) throw abortError(signal);
        throw timeoutError();
      }
      const seen = this.#announce();
      if (seen === 0) continue;
      try {
        await futex.waitAsync(this.#words, 0, seen, {
          ...(left === Number.POSITIVE_INFINITY ? {} : { timeout: left }),
          ...(signal ? { signal } : {}),
        });
      } catch (error) {
        if ((error as MemmapError).code === 'ERR_MEMMAP_TIMEOUT') throw timeoutError();
        throw error;
      }
      waited = true;
    }
  }

  /** Sets the waiters bit so that unlock wakes us; returns the state to sleep on (0: try again). */
  #announce(): number {
    const state = Atomics.load(this.#words, 0);
    if ((state & TID_MASK) === 0) return 0;
    if (state & WAITERS) return state;
    return Atomics.compareExchange(this.#words, 0, state, state | WAITERS) === state ? state | WAITERS : 0;
  }

  /** Waits for this async caller's turn among the async callers of this thread. */
  #turn(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const lane = this.#lane;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = (error: Error) => {
        const at = lane.queue.indexOf(go);
        if (at >= 0) lane.queue.splice(at, 1);
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        reject(error);
      };
      const onAbort = () => leave(abortError(signal as AbortSignal));
      const go = () => {
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        resolve();
      };
      lane.queue.push(go);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (deadline !== Number.POSITIVE_INFINITY) {
        timer = setTimeout(() => leave(timeoutError()), Math.max(0, deadline - performance.now()));
      }
    });
  }

  /** Gives the next async caller of this thread its turn, once nobody here holds or takes it. */
  #next(): void {
    const lane = this.#lane;
    if (lane.owned || lane.taking) return;
    const go = lane.queue.shift();
    if (go !== undefined) {
      lane.taking = true;
      go();
    }
  }
}
