/**
 * The reading side of a channel: one consumer, which reads records in place (zero copy) and
 * frees them when they are released.
 *
 * @module
 */
import { MemmapError } from '../errors.js';
import { futex } from '../sync/futex.js';
import type { Encoding } from './codec.js';
import {
  align,
  CONSUMER_PID_OFFSET,
  CONSUMER_SLEEPING_OFFSET,
  corruptError,
  DATA_SIGNAL_OFFSET,
  HEAD_OFFSET,
  HEADER_LENGTH,
  PADDING_TYPE,
  PRODUCERS_SLEEPING_OFFSET,
  RECORD_HEADER_LENGTH,
  SPACE_SIGNAL_OFFSET,
  TAIL_OFFSET,
} from './layout.js';
import { alive, type Ring } from './ring.js';
import { type ChannelWaitOptions, Spinner, sleep, waitOf } from './wait.js';

/** A message read from a channel. Its `view` is the ring's own memory, valid until release(). */
export interface Message<T = Uint8Array> {
  /** The message's bytes, in shared memory. After release() they belong to the ring again. */
  readonly view: Buffer;
  /** The type the producer gave it (0 to 2^31 - 1). */
  readonly type: number;
  /** The view decoded by the consumer's codec (the view itself for bytes). */
  readonly value: T;
  /** Gives the message's space back to the producers. Idempotent. */
  release(): void;
}

const TAIL = TAIL_OFFSET >> 3;
const HEAD = HEAD_OFFSET >> 3;
const SLEEPING = CONSUMER_SLEEPING_OFFSET >> 2;
const DATA_SIGNAL = DATA_SIGNAL_OFFSET >> 2;
const SPACE_SIGNAL = SPACE_SIGNAL_OFFSET >> 2;
const PRODUCERS_SLEEPING = PRODUCERS_SLEEPING_OFFSET >> 2;
const CONSUMER_PID = CONSUMER_PID_OFFSET >> 2;
/** Written into the length word while the consumer turns a claim into padding. */
const UNBLOCKING = -(2 ** 31);
/** How often a consumer blocked by an unfinished claim looks again, when nothing wakes it (ms). */
const STUCK_SLICE_MS = 50;
/** How many empty polls of tryReceive pass between two looks for an unfinished claim. */
const POLLS_PER_LOOK = 1024;

enum Stuck {
  No,
  Yes,
  Unblocked,
}

interface Entry {
  /** Bytes read since the consumer started, at the end of this record. */
  end: number;
  released: boolean;
}

class Received<T> implements Message<T> {
  readonly view: Buffer;
  readonly type: number;
  readonly #consumer: Consumer<T>;
  readonly #entry: Entry;
  readonly #decode: (view: Buffer) => T;

  constructor(consumer: Consumer<T>, view: Buffer, type: number, entry: Entry, decode: (view: Buffer) => T) {
    this.#consumer = consumer;
    this.view = view;
    this.type = type;
    this.#entry = entry;
    this.#decode = decode;
  }

  get value(): T {
    if (this.#entry.released) throw new MemmapError('ERR_MEMMAP_CLOSED', 'value: the message was released');
    return this.#decode(this.view);
  }

  release(): void {
    if (this.#entry.released) return;
    this.#entry.released = true;
    this.#consumer[kRelease]();
  }
}

const kRelease = Symbol('release');

/** Options of {@link Channel.consumer}. */
export interface ConsumerOptions<T> {
  /** How messages are decoded: 'bytes' (default), 'utf8', 'json' or { encode, decode }. */
  codec?: import('./codec.js').Codec<T>;
  /** Microseconds to spin (adaptively) before a receive sleeps. Default 20. */
  spin?: number;
  /**
   * Milliseconds after which a claim that stays uncommitted at the head is turned into
   * padding even though its producer seems alive (or cannot be checked: another pid
   * namespace, or it died before writing its header). Default 10000; Infinity never.
   */
  unblockAfter?: number;
}

/**
 * Receives the messages of a channel, in the order their claims were made. There is one per
 * channel; get it from {@link Channel.consumer}.
 */
export class Consumer<T = Uint8Array> implements Disposable, AsyncIterable<Message<T>> {
  readonly #ring: Ring;
  readonly #encoding: Encoding<T>;
  readonly #spinner: Spinner;
  readonly #unblockAfter: number;
  #closed = false;
  /** The head position as last published, and its index. */
  #headPosition: bigint;
  #headIndex: number;
  /** Bytes published (released and zeroed) and bytes read, since this consumer started. */
  #published = 0;
  #read = 0;
  /** Bytes released (a prefix of what was read) but not yet published. */
  #released = 0;
  /** Records read and not yet published, oldest first. */
  readonly #queue: Entry[] = [];
  /** receive() calls of this consumer now waiting. */
  #waiting = 0;
  #polls = 0;
  /** Where (bytes read) the head was first seen blocked by an unfinished claim, and when. */
  #stuckAt = -1;
  #stuckSince = 0;

  /** @internal Use Channel.consumer(). */
  constructor(ring: Ring, encoding: Encoding<T>, spin: number, unblockAfter: number) {
    this.#ring = ring;
    this.#encoding = encoding;
    this.#spinner = new Spinner(spin);
    this.#unblockAfter = unblockAfter;
    this.#headPosition = Atomics.load(ring.longs, HEAD);
    this.#headIndex = Number(this.#headPosition & BigInt(ring.mask));
  }

  #check(what: string): void {
    if (this.#closed) throw new MemmapError('ERR_MEMMAP_CLOSED', `${what}: the consumer is closed`);
    this.#ring.check(what);
  }

  /**
   * The next message, or null when there is none yet. Its view stays valid until release();
   * messages may be held and released in any order, but space is freed in order.
   * @throws ERR_MEMMAP_CHANNEL_CORRUPT when a record breaks the layout's rules (nothing is
   * read past the ring); ERR_MEMMAP_CLOSED.
   * @example
   * const m = rx.tryReceive();
   * if (m) { console.log(m.view.toString()); m.release(); }
   */
  tryReceive(): Message<T> | null {
    this.#check('tryReceive');
    const { words, capacity, mask } = this.#ring;
    for (;;) {
      const pending = this.#read - this.#published;
      if (pending >= capacity) {
        if (this.#released > this.#published) this.#publish(this.#released);
        return null;
      }
      const index = (this.#headIndex + pending) & mask;
      const at = (HEADER_LENGTH + index) >> 2;
      const length = Atomics.load(words, at);
      if (length <= 0) {
        if (++this.#polls % POLLS_PER_LOOK === 0 && this.#unblock(index, length) === Stuck.Unblocked) continue;
        // Nothing more to read now: free what was released, so no producer waits for it.
        if (this.#released > this.#published) this.#publish(this.#released);
        return null;
      }
      const type = Atomics.load(words, at + 1);
      const stride = this.#checkRecord(index, length, type, pending);
      this.#read += stride;
      if (type === PADDING_TYPE) {
        if (this.#queue.length === 0) this.#released = this.#read;
        else this.#queue.push({ end: this.#read, released: true });
        continue;
      }
      const entry = { end: this.#read, released: false };
      this.#queue.push(entry);
      const start = HEADER_LENGTH + index + RECORD_HEADER_LENGTH;
      const view = this.#ring.bytes.subarray(start, start + length - RECORD_HEADER_LENGTH);
      return new Received(this, view, type, entry, this.#encoding.decode);
    }
  }

  /** Checks a committed record's header against the ring (the copies read at open); returns its stride. */
  #checkRecord(index: number, length: number, type: number, pending: number): number {
    const { capacity, maxMessage } = this.#ring;
    const where = `the record at index ${index}`;
    if (length < RECORD_HEADER_LENGTH) throw corruptError(`${where} has length ${length}, less than its header`);
    if (length > capacity - index) {
      throw corruptError(
        `${where} has length ${length} and would wrap past the ring's end (${capacity - index} bytes left)`,
      );
    }
    const stride = align(length);
    if (pending + stride > capacity) throw corruptError(`${where} reaches into records not yet released`);
    if (type !== PADDING_TYPE) {
      if (type < 0) throw corruptError(`${where} has type ${type}, neither a message type nor padding`);
      if (length - RECORD_HEADER_LENGTH > this.#ring.maxMessage) {
        throw corruptError(`${where} holds ${length - RECORD_HEADER_LENGTH} bytes, more than maxMessage ${maxMessage}`);
      }
    }
    return stride;
  }

  /** @internal */
  [kRelease](): void {
    while (this.#queue.length > 0 && (this.#queue[0] as Entry).released)
      this.#released = (this.#queue.shift() as Entry).end;
    if (this.#closed || this.#ring.shm.closed) return;
    // Space is published in batches of a sixteenth of the ring (one zeroing and one head store
    // for many messages), at once when a producer waits for it, and whenever tryReceive finds
    // nothing more to read.
    const { words, capacity } = this.#ring;
    if (this.#released - this.#published >= capacity >> 4 || Atomics.load(words, PRODUCERS_SLEEPING) !== 0) {
      this.#publish(this.#released);
    }
  }

  /**
   * Zeroes what was consumed up to `upTo` (so that unwritten space always reads 0, which the
   * claims and unblocking rely on), then moves the head there with a release store, and wakes
   * producers asleep for space.
   */
  #publish(upTo: number): void {
    const { bytes, words, longs, capacity, mask } = this.#ring;
    const count = upTo - this.#published;
    const first = Math.min(count, capacity - this.#headIndex);
    bytes.fill(0, HEADER_LENGTH + this.#headIndex, HEADER_LENGTH + this.#headIndex + first);
    if (count > first) bytes.fill(0, HEADER_LENGTH, HEADER_LENGTH + count - first);
    this.#published = upTo;
    this.#headPosition += BigInt(count);
    this.#headIndex = (this.#headIndex + count) & mask;
    Atomics.store(longs, HEAD, this.#headPosition);
    if (Atomics.load(words, PRODUCERS_SLEEPING) !== 0 && Atomics.exchange(words, PRODUCERS_SLEEPING, 0) !== 0) {
      Atomics.add(words, SPACE_SIGNAL, 1);
      futex.wake(words, SPACE_SIGNAL);
    }
  }

  /**
   * Looks at a head blocked by an unfinished claim (length `length` <= 0 at `index` while the
   * tail is past it) and turns the claim into padding when its producer is dead, or when it has
   * blocked the head for unblockAfter ms (Agrona's unblock()).
   */
  #unblock(index: number, length: number): Stuck {
    const { words, longs, capacity } = this.#ring;
    const pending = this.#read - this.#published;
    const readPosition = this.#headPosition + BigInt(pending);
    const tail = Atomics.load(longs, TAIL);
    if (tail <= readPosition) {
      this.#stuckAt = -1;
      return Stuck.No;
    }
    const now = performance.now();
    if (this.#stuckAt !== this.#read) {
      this.#stuckAt = this.#read;
      this.#stuckSince = now;
    }
    const late = now - this.#stuckSince >= this.#unblockAfter;
    const at = (HEADER_LENGTH + index) >> 2;
    if (length < 0) {
      const claimed = -length;
      if (claimed < RECORD_HEADER_LENGTH || claimed > capacity - index || pending + align(claimed) > capacity) {
        throw corruptError(`the claim at index ${index} has length ${length}, which does not fit the ring`);
      }
      const pid = Atomics.load(words, at + 1);
      const dead = this.#ring.pidsComparable && pid > 0 && !alive(pid);
      if (!dead && !late) return Stuck.Yes;
      // The length word first (a producer committing now fails its compare-and-swap and
      // learns its claim is gone), then the padding type, then the length back.
      if (Atomics.compareExchange(words, at, length, UNBLOCKING) !== length) return Stuck.Unblocked;
      Atomics.store(words, at + 1, PADDING_TYPE);
      Atomics.store(words, at, claimed);
      return Stuck.Unblocked;
    }
    // Length 0: a claimant stopped between its compare-and-swap on the tail and its first
    // store. Its space reads zeros (the consumer zeroes what it frees); the next record
    // header that is not zero is where its claim ended.
    if (!late) return Stuck.Yes;
    const limit = Math.min(Number(tail - readPosition), capacity - index);
    let gap = 0;
    for (let offset = RECORD_HEADER_LENGTH; offset < limit; offset += RECORD_HEADER_LENGTH) {
      if (words[at + (offset >> 2)] !== 0 || words[at + (offset >> 2) + 1] !== 0) {
        gap = offset;
        break;
      }
    }
    if (gap === 0) {
      // Nothing after it before the ring's end, and the tail is past the end: a claim that
      // was to pad the end of the ring.
      if (Number(tail - readPosition) <= capacity - index) return Stuck.Yes;
      gap = capacity - index;
    }
    Atomics.store(words, at + 1, PADDING_TYPE);
    Atomics.compareExchange(words, at, 0, gap);
    return Stuck.Unblocked;
  }

  /**
   * The next message, waiting for one (spinning briefly, then asleep on the channel's data
   * word through memmap's waiter thread, never libuv's pool).
   * @throws (rejects) ERR_MEMMAP_TIMEOUT after `timeout` ms; an AbortError when `signal`
   * aborts; ERR_MEMMAP_CLOSED when the consumer or channel is closed meanwhile; what
   * tryReceive throws.
   * @example
   * const m = await rx.receive({ timeout: 1000 });
   */
  async receive(options?: ChannelWaitOptions): Promise<Message<T>> {
    const wait = waitOf(options);
    let message = this.tryReceive();
    if (message !== null) return message;
    const spun = () => {
      message = this.tryReceive();
      return message !== null;
    };
    if (this.#spinner.spin(spun)) return message as unknown as Message<T>;
    const { words } = this.#ring;
    this.#waiting++;
    try {
      for (;;) {
        // The flag first, then the signal, then the last look: a producer that commits after
        // that look sees the flag, moves the signal and wakes us (or the wait sees it moved).
        Atomics.store(words, SLEEPING, 1);
        const seen = Atomics.load(words, DATA_SIGNAL);
        message = this.tryReceive();
        if (message !== null) return message;
        const pending = this.#read - this.#published;
        const index = (this.#headIndex + pending) & this.#ring.mask;
        const stuck =
          pending < this.#ring.capacity
            ? this.#unblock(index, Atomics.load(words, (HEADER_LENGTH + index) >> 2))
            : Stuck.No;
        if (stuck === Stuck.Unblocked) continue;
        await sleep(
          words,
          DATA_SIGNAL,
          seen,
          wait,
          'receive',
          this.#ring,
          stuck === Stuck.Yes ? STUCK_SLICE_MS : Number.POSITIVE_INFINITY,
        );
        this.#check('receive');
      }
    } finally {
      // Other receive() calls of this consumer still wait: the flag stays up for them.
      if (--this.#waiting === 0 && !this.#ring.shm.closed) Atomics.store(words, SLEEPING, 0);
    }
  }

  /**
   * The messages as an async iterator: each is released when the loop asks for the next one
   * (or ends), so release() in the body is optional.
   * @example
   * for await (const m of rx.messages({ signal })) handle(m.value);
   */
  async *messages(options?: ChannelWaitOptions): AsyncGenerator<Message<T>, void, undefined> {
    for (;;) {
      const message = await this.receive(options);
      try {
        yield message;
      } finally {
        message.release();
      }
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<Message<T>, void, undefined> {
    return this.messages();
  }

  /** Gives the channel's consumer role back (another process may take it); messages not released will be read again by the next consumer. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ring.shm.closed) return;
    if (this.#released > this.#published) this.#publish(this.#released);
    Atomics.compareExchange(this.#ring.words, CONSUMER_PID, process.pid, 0);
    // Wake our own receive() calls so they see the consumer closed.
    Atomics.add(this.#ring.words, DATA_SIGNAL, 1);
    futex.wake(this.#ring.words, DATA_SIGNAL);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Takes the consumer role of a channel for this process: free, or held by a process that is
 * dead (a restarted consumer resumes at the head, so what was not released is read again).
 * @throws ERR_MEMMAP_CHANNEL_BUSY when a live process (this one included) holds it.
 */
export function takeConsumer(ring: Ring): void {
  const { words } = ring;
  for (;;) {
    const holder = Atomics.compareExchange(words, CONSUMER_PID, 0, process.pid);
    if (holder === 0) return;
    if (holder === process.pid || !ring.pidsComparable || alive(holder)) {
      throw new MemmapError(
        'ERR_MEMMAP_CHANNEL_BUSY',
        `consumer: process ${holder} holds this channel's consumer (a channel has one); close that one first`,
      );
    }
    if (Atomics.compareExchange(words, CONSUMER_PID, holder, process.pid) === holder) return;
  }
}
