/**
 * The writing side of a channel: claims space by compare-and-swap on the tail, so any number
 * of producers, in any number of processes, write at once (Agrona's ManyToOneRingBuffer).
 *
 * @module
 */
import { MemmapError, outOfRange } from '../errors.js';
import { validateInteger } from '../internal/validate.js';
import { futex } from '../sync/futex.js';
import type { Encoding } from './codec.js';
import {
  align,
  CONSUMER_SLEEPING_OFFSET,
  corruptError,
  DATA_SIGNAL_OFFSET,
  HEAD_CACHE_OFFSET,
  HEAD_OFFSET,
  HEADER_LENGTH,
  LENGTH_FIELD,
  MAX_TYPE,
  PADDING_TYPE,
  PRODUCERS_SLEEPING_OFFSET,
  RECORD_HEADER_LENGTH,
  SPACE_SIGNAL_OFFSET,
  TAIL_OFFSET,
  TYPE_FIELD,
} from './layout.js';
import type { Ring } from './ring.js';
import { type ChannelWaitOptions, Spinner, sleep, waitOf } from './wait.js';

/** Options of Producer.send. */
export interface SendOptions extends ChannelWaitOptions {
  /** The message type, 0 to 2^31 - 1. Default 0. */
  type?: number;
}

/** Space claimed in the ring: write the message into `view`, then commit() it or abort() it. */
export interface Claim {
  /** The message's bytes in shared memory (zeros until written). Valid until commit() or abort(). */
  readonly view: Buffer;
  /** Publishes the message with `type` (default 0); the consumer sees it whole or not at all. */
  commit(type?: number): void;
  /** Gives the space up: the consumer skips it. */
  abort(): void;
}

const FULL = -1;
const TAIL = TAIL_OFFSET >> 3;
const HEAD = HEAD_OFFSET >> 3;
const HEAD_CACHE = HEAD_CACHE_OFFSET >> 3;
const SLEEPING = CONSUMER_SLEEPING_OFFSET >> 2;
const DATA_SIGNAL = DATA_SIGNAL_OFFSET >> 2;
const SPACE_SIGNAL = SPACE_SIGNAL_OFFSET >> 2;
const PRODUCERS_SLEEPING = PRODUCERS_SLEEPING_OFFSET >> 2;

function checkType(type: unknown): number {
  return type === undefined ? 0 : validateInteger(type, 'type', 0, MAX_TYPE);
}

/**
 * Sends messages into a channel. Get one from {@link Channel.producer}; make as many as you
 * like, in as many processes and threads as you like.
 */
export class Producer<T = Uint8Array> {
  readonly #ring: Ring;
  readonly #encoding: Encoding<T>;
  readonly #spinner: Spinner;
  /** What this process writes into a claim's type word while it holds it: its pid, or 0. */
  readonly #claimant: number;
  readonly #capacity: bigint;
  readonly #mask: bigint;

  /** @internal Use Channel.producer(). */
  constructor(ring: Ring, encoding: Encoding<T>, spin: number) {
    this.#ring = ring;
    this.#encoding = encoding;
    this.#spinner = new Spinner(spin);
    this.#claimant = ring.pidsComparable ? process.pid : 0;
    this.#capacity = BigInt(ring.capacity);
    this.#mask = BigInt(ring.mask);
  }

  /** The largest message, in bytes. */
  get maxMessage(): number {
    return this.#ring.maxMessage;
  }

  /**
   * Claims a record of `length` (header included) bytes: its index in the ring, or FULL.
   * Everything is recomputed on each try of the compare-and-swap (aeron#636).
   */
  #claim(length: number): number {
    const { longs, capacity } = this.#ring;
    const required = align(length);
    for (;;) {
      let head = Atomics.load(longs, HEAD_CACHE);
      const tail = Atomics.load(longs, TAIL);
      const tailIndex = Number(tail & this.#mask);
      const toEnd = capacity - tailIndex;
      // A record never wraps: one that does not fit before the end goes to index 0, and the
      // gap becomes a padding record. Full and empty come from positions, never from indexes.
      const padding = required > toEnd ? toEnd : 0;
      const need = padding + required;
      const cached = Number(tail - head);
      if (cached < 0 || cached + need > capacity) {
        head = Atomics.load(longs, HEAD);
        const used = tail - head;
        if (used < 0n || used > this.#capacity) {
          // Other claims and the consumer may have moved on since the tail was read: only a
          // tail read after the head that is still out of bounds breaks the layout.
          if (Atomics.load(longs, TAIL) !== tail) continue;
          throw corruptError(`the tail position ${tail} is not within a ring's capacity of the head position ${head}`);
        }
        if (Number(used) + need > capacity) {
          // Pad to the end even when the record will not fit at the front (agrona#239),
          // else free space split across the end stalls the ring. A claim that only pads
          // still reports full (aeron#2015).
          if (padding > 0 && Number(used) + padding <= capacity) {
            if (Atomics.compareExchange(longs, TAIL, tail, tail + BigInt(padding)) === tail) {
              this.#writePadding(tailIndex, padding);
            }
            continue;
          }
          return FULL;
        }
        Atomics.store(longs, HEAD_CACHE, head);
      }
      if (Atomics.compareExchange(longs, TAIL, tail, tail + BigInt(need)) !== tail) continue;
      if (padding > 0) {
        this.#writePadding(tailIndex, padding);
        return 0;
      }
      return tailIndex;
    }
  }

  #writePadding(index: number, length: number): void {
    const { words } = this.#ring;
    const at = (HEADER_LENGTH + index) >> 2;
    Atomics.store(words, at + 1, PADDING_TYPE);
    Atomics.store(words, at, length);
  }

  /** Marks a claimed record: the claimant in the type word, then the negative length. */
  #hold(index: number, length: number): void {
    const { words } = this.#ring;
    const at = (HEADER_LENGTH + index) >> 2;
    Atomics.store(words, at + (TYPE_FIELD >> 2), this.#claimant);
    Atomics.store(words, at + (LENGTH_FIELD >> 2), -length);
  }

  /** Publishes a held record (type first, then +length, a release store) and wakes a sleeping consumer. */
  #publish(index: number, length: number, type: number): void {
    const { words } = this.#ring;
    const at = (HEADER_LENGTH + index) >> 2;
    if (Atomics.load(words, at) !== -length) {
      throw new MemmapError(
        'ERR_MEMMAP_CHANNEL_UNBLOCKED',
        'Channel: the consumer turned this claim into padding (it took its producer for dead after unblockAfter); the message is lost',
      );
    }
    Atomics.store(words, at + 1, type);
    Atomics.compareExchange(words, at, -length, length);
    // While the consumer's flag is up, each commit moves the signal and wakes it (and every
    // receive of its process: they all sleep on the signal). Only the consumer takes its flag
    // down, once it is awake: a producer that took it down and was killed before its wake
    // would leave the consumer asleep for good, with no later commit to wake it.
    if (Atomics.load(words, SLEEPING) !== 0) {
      Atomics.add(words, DATA_SIGNAL, 1);
      futex.wake(words, DATA_SIGNAL);
    }
  }

  /** Encodes, claims, copies and commits; false when the ring has no room now. */
  #send(prepared: Uint8Array | string, size: number, type: number): boolean {
    const length = size + RECORD_HEADER_LENGTH;
    const index = this.#claim(length);
    if (index === FULL) return false;
    this.#hold(index, length);
    this.#encoding.write(prepared, this.#ring.bytes, HEADER_LENGTH + index + RECORD_HEADER_LENGTH);
    this.#publish(index, length, type);
    return true;
  }

  #prepare(value: T): [Uint8Array | string, number] {
    this.#ring.check('send');
    const prepared = this.#encoding.prepare(value);
    const size = this.#encoding.size(prepared);
    if (size > this.#ring.maxMessage) {
      throw outOfRange('message', `at most maxMessage (${this.#ring.maxMessage}) bytes`, size);
    }
    return [prepared, size];
  }

  /**
   * Sends `value` if the ring has room now; returns false when it is full.
   * @throws ERR_OUT_OF_RANGE (RangeError) for a message larger than maxMessage;
   * ERR_MEMMAP_CLOSED; ERR_MEMMAP_CHANNEL_CORRUPT when the positions break the layout's rules.
   * @example
   * if (!tx.trySend(Buffer.from('hello'))) console.log('full');
   */
  trySend(value: T, type?: number): boolean {
    const t = checkType(type);
    const [prepared, size] = this.#prepare(value);
    return this.#send(prepared, size, t);
  }

  /**
   * Sends `value`, waiting for room (spinning briefly, then asleep on the channel's space
   * word through memmap's waiter thread) as long as the ring is full.
   * @throws (rejects) ERR_MEMMAP_TIMEOUT after `timeout` ms; an AbortError when `signal`
   * aborts; what trySend throws.
   * @example
   * await tx.send(Buffer.from('hello'), { timeout: 1000 });
   */
  async send(value: T, options?: SendOptions): Promise<void> {
    const wait = waitOf(options, ['type']);
    const type = checkType(wait.type);
    const [prepared, size] = this.#prepare(value);
    if (this.#send(prepared, size, type)) return;
    if (this.#spinner.spin(() => this.#send(prepared, size, type))) return;
    const { words } = this.#ring;
    for (;;) {
      this.#ring.check('send');
      // The flag up before the last look at the ring: a consumer that frees space after that
      // look sees it, takes it down, moves the signal and wakes every producer asleep on it
      // (each puts the flag up again before its own last look, so none is left asleep).
      Atomics.store(words, PRODUCERS_SLEEPING, 1);
      const seen = Atomics.load(words, SPACE_SIGNAL);
      if (this.#send(prepared, size, type)) return;
      await sleep(words, SPACE_SIGNAL, seen, wait, 'send', this.#ring);
    }
  }

  /**
   * Claims room for a message of `length` bytes, to be written in place (no copy), or returns
   * null when the ring is full. Commit or abort it soon: the consumer cannot pass it.
   * @throws ERR_OUT_OF_RANGE for a length above maxMessage; ERR_MEMMAP_CLOSED.
   * @example
   * const claim = tx.tryClaim(16);
   * if (claim) { claim.view.writeDoubleLE(Math.PI, 0); claim.commit(7); }
   */
  tryClaim(length: number): Claim | null {
    this.#ring.check('tryClaim');
    validateInteger(length, 'length', 0, this.#ring.maxMessage);
    const recordLength = length + RECORD_HEADER_LENGTH;
    const index = this.#claim(recordLength);
    if (index === FULL) return null;
    this.#hold(index, recordLength);
    const start = HEADER_LENGTH + index + RECORD_HEADER_LENGTH;
    const view = this.#ring.bytes.subarray(start, start + length);
    let done = false;
    const finish = (what: string) => {
      this.#ring.check(what);
      if (done) throw new MemmapError('ERR_MEMMAP_CLOSED', `${what}: this claim was committed or aborted already`);
      done = true;
    };
    return {
      view,
      commit: (type?: number) => {
        const t = checkType(type);
        finish('commit');
        this.#publish(index, recordLength, t);
      },
      abort: () => {
        finish('abort');
        this.#publish(index, recordLength, PADDING_TYPE);
      },
    };
  }
}
