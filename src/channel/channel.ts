/**
 * A message channel between processes and threads: a ring of framed messages in shared
 * memory, many producers, one consumer, zero-copy reads, waits that cost no system call on
 * the common path.
 *
 * @module
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { MemmapError, outOfRange } from '../errors.js';
import { validateInteger, validateOptions } from '../internal/validate.js';
import { SharedMemory } from '../shm.js';
import { futex } from '../sync/futex.js';
import { type Codec, type CodecFunctions, encodingOf } from './codec.js';
import { Consumer, type ConsumerOptions, takeConsumer } from './consumer.js';
import {
  DATA_SIGNAL_OFFSET,
  HEADER_LENGTH,
  MAX_CAPACITY,
  MIN_CAPACITY,
  maxMessageLimit,
  readHeader,
  SPACE_SIGNAL_OFFSET,
  writeHeader,
} from './layout.js';
import { Producer } from './producer.js';
import { pidNamespace, Ring } from './ring.js';
import { SPIN_MAX } from './wait.js';

/** Options of {@link Channel.create}. */
export interface ChannelCreateOptions {
  /** Bytes of the data ring: a power of two from 1 KiB to 1 GiB. Default 1 MiB. */
  capacity?: number;
  /** The largest message in bytes, at most capacity / 8 - 8. Default capacity / 8 - 8. */
  maxMessage?: number;
  /**
   * A name ('/jobs') to create the channel as a named shared memory object (always
   * exclusively: an existing name is refused with EEXIST), which other processes open with
   * {@link Channel.open}. Default: an anonymous memory file, sealed against shrinking and
   * growing, shared through {@link Channel.fd}.
   */
  name?: string;
  /** Permission bits of a named channel. Default 0o600. */
  mode?: number;
}

/** Options of {@link Channel.producer}. */
export interface ProducerOptions<T> {
  /** How values are encoded: 'bytes' (default), 'utf8', 'json' or { encode, decode }. */
  codec?: Codec<T>;
  /** Microseconds to spin (adaptively) before a send sleeps for space. Default 20. */
  spin?: number;
}

const DEFAULT_CAPACITY = 1 << 20;
const DEFAULT_SPIN = 20;
const DEFAULT_UNBLOCK_AFTER = 10_000;
const kCreate = Symbol('Channel');

/**
 * A channel in shared memory. Create it in one process, open it in the others (by name, or by
 * descriptor handed down through spawn's stdio), then send through producers and receive
 * through the one consumer.
 */
export class Channel implements Disposable {
  readonly #ring: Ring;
  readonly #shm: SharedMemory;
  readonly #consumers = new Set<Consumer<unknown>>();

  /** @internal Use the static methods. */
  constructor(token: symbol, shm: SharedMemory) {
    if (token !== kCreate) throw new TypeError('Channel: use Channel.create, Channel.open or Channel.fromFd');
    let geometry: ReturnType<typeof readHeader>;
    try {
      geometry = readHeader(new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 8), shm.length);
    } catch (error) {
      shm.close();
      throw error;
    }
    this.#shm = shm;
    this.#ring = new Ring(shm, geometry);
  }

  /**
   * Creates a channel: an anonymous memory file sealed against shrinking and growing (so no
   * peer can truncate it under a mapping), or a named object with `name`.
   * @throws ERR_OUT_OF_RANGE for a capacity that is not a power of two in range or a
   * maxMessage above capacity / 8 - 8; EEXIST for a name that exists.
   * @example
   * using ch = Channel.create({ capacity: 1 << 20, maxMessage: 64 << 10 });
   */
  static create(options?: ChannelCreateOptions): Channel {
    const opts = validateOptions(options, 'options', ['capacity', 'maxMessage', 'name', 'mode'] as const);
    const capacity =
      opts.capacity === undefined
        ? DEFAULT_CAPACITY
        : validateInteger(opts.capacity, 'options.capacity', MIN_CAPACITY, MAX_CAPACITY);
    if ((capacity & (capacity - 1)) !== 0) {
      throw outOfRange('options.capacity', 'a power of two', capacity);
    }
    const limit = maxMessageLimit(capacity);
    const maxMessage =
      opts.maxMessage === undefined ? limit : validateInteger(opts.maxMessage, 'options.maxMessage', 0, limit);
    const size = HEADER_LENGTH + capacity;
    let shm: SharedMemory;
    if (opts.name === undefined) {
      shm = SharedMemory.anonymous(size);
      shm.seal('shrink', 'grow');
    } else {
      const mode = opts.mode === undefined ? undefined : (opts.mode as number);
      shm = SharedMemory.create(opts.name as string, size, {
        exclusive: true,
        ...(mode === undefined ? {} : { mode }),
      });
    }
    writeHeader(new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 8), {
      capacity,
      maxMessage,
      namespace: pidNamespace(),
    });
    return new Channel(kCreate, shm);
  }

  /**
   * Opens a named channel made by {@link Channel.create} with `name`.
   * @throws ENOENT; ERR_MEMMAP_CHANNEL_LAYOUT when the object holds no channel (or its size
   * does not match its header); ERR_MEMMAP_CHANNEL_VERSION for another layout version.
   */
  static open(name: string): Channel {
    return new Channel(kCreate, SharedMemory.open(name));
  }

  /**
   * Opens the channel behind a descriptor: one handed down by a parent (fd 3 of spawn's
   * stdio), or {@link Channel.fd} passed to a worker thread. memmap duplicates it.
   * @throws EBADF; the layout errors of {@link Channel.open}.
   * @example
   * const ch = Channel.fromFd(3);
   */
  static fromFd(fd: number): Channel {
    return new Channel(kCreate, SharedMemory.fromFd(fd));
  }

  /** The descriptor of the channel's memory, for spawn's `stdio` or a worker thread (-1 once closed). */
  get fd(): number {
    return this.#shm.fd;
  }

  /** The name of a named channel, null for an anonymous one. */
  get name(): string | null {
    return this.#shm.name;
  }

  /** Bytes of the data ring. */
  get capacity(): number {
    return this.#ring.capacity;
  }

  /** The largest message, in bytes. */
  get maxMessage(): number {
    return this.#ring.maxMessage;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#shm.closed;
  }

  /**
   * A producer: sends messages. Any number, in any number of processes and threads.
   * @example
   * const tx = ch.producer({ codec: 'json' });
   * await tx.send({ job: 1 });
   */
  producer(options: ProducerOptions<string> & { codec: 'utf8' }): Producer<string>;
  producer(options: ProducerOptions<unknown> & { codec: 'json' }): Producer<unknown>;
  producer<T>(options: ProducerOptions<T> & { codec: CodecFunctions<T> }): Producer<T>;
  producer(options?: ProducerOptions<Uint8Array>): Producer<Uint8Array>;
  producer<T = Uint8Array>(options?: ProducerOptions<T>): Producer<T> {
    this.#ring.check('producer');
    const opts = validateOptions(options, 'options', ['codec', 'spin'] as const);
    const spin = opts.spin === undefined ? DEFAULT_SPIN : validateInteger(opts.spin, 'options.spin', 0, SPIN_MAX);
    return new Producer<T>(this.#ring, encodingOf<T>(opts.codec, 'options.codec'), spin);
  }

  /**
   * The consumer: receives messages. One per channel across every process (ERR_MEMMAP_CHANNEL_BUSY
   * while another live one holds it); one left by a dead process is taken over, resuming at the
   * head.
   * @throws ERR_MEMMAP_CHANNEL_BUSY.
   * @example
   * const rx = ch.consumer({ codec: 'utf8' });
   * for await (const m of rx) console.log(m.value);
   */
  consumer(options: ConsumerOptions<string> & { codec: 'utf8' }): Consumer<string>;
  consumer(options: ConsumerOptions<unknown> & { codec: 'json' }): Consumer<unknown>;
  consumer<T>(options: ConsumerOptions<T> & { codec: CodecFunctions<T> }): Consumer<T>;
  consumer(options?: ConsumerOptions<Uint8Array>): Consumer<Uint8Array>;
  consumer<T = Uint8Array>(options?: ConsumerOptions<T>): Consumer<T> {
    this.#ring.check('consumer');
    const opts = validateOptions(options, 'options', ['codec', 'spin', 'unblockAfter'] as const);
    const spin = opts.spin === undefined ? DEFAULT_SPIN : validateInteger(opts.spin, 'options.spin', 0, SPIN_MAX);
    let unblockAfter = DEFAULT_UNBLOCK_AFTER;
    if (opts.unblockAfter !== undefined && opts.unblockAfter !== Number.POSITIVE_INFINITY) {
      unblockAfter = validateInteger(opts.unblockAfter, 'options.unblockAfter', 0);
    } else if (opts.unblockAfter === Number.POSITIVE_INFINITY) unblockAfter = Number.POSITIVE_INFINITY;
    const encoding = encodingOf<T>(opts.codec, 'options.codec');
    takeConsumer(this.#ring);
    const consumer = new Consumer<T>(this.#ring, encoding, spin, unblockAfter);
    this.#consumers.add(consumer as Consumer<unknown>);
    return consumer;
  }

  /**
   * Closes this process's view of the channel: its consumer gives the role back, waits of this
   * process end with ERR_MEMMAP_CLOSED, the memory is unmapped. Idempotent. The channel lives
   * on while another process has it open (a named one until unlinked).
   */
  close(): void {
    if (this.#shm.closed) return;
    for (const consumer of this.#consumers) consumer.close();
    this.#consumers.clear();
    // Wake this process's sleepers so they look again and find the channel closed.
    const { words } = this.#ring;
    Atomics.add(words, DATA_SIGNAL_OFFSET >> 2, 1);
    Atomics.add(words, SPACE_SIGNAL_OFFSET >> 2, 1);
    futex.wake(words, DATA_SIGNAL_OFFSET >> 2);
    futex.wake(words, SPACE_SIGNAL_OFFSET >> 2);
    this.#shm.close();
  }

  /** Same as {@link Channel.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Removes a named channel's name (see {@link SharedMemory.unlink}). */
  static unlink(name: string): void {
    SharedMemory.unlink(name);
  }
}

/** Options of {@link spawnWithChannel}: spawn's, and the channel's. */
export interface SpawnWithChannelOptions extends SpawnOptions {
  /** The channel's options (capacity, maxMessage); a new anonymous channel is made. */
  channel?: Omit<ChannelCreateOptions, 'name' | 'mode'>;
}

/**
 * Spawns `command` with a new anonymous channel handed to it as file descriptor 3 (after
 * stdin, stdout, stderr); the child opens it with `Channel.fromFd(3)`. `MEMMAP_CHANNEL_FD=3`
 * is set in its environment.
 * @example
 * const { child, channel } = spawnWithChannel(process.execPath, ['worker.js']);
 */
export function spawnWithChannel(
  command: string,
  args: readonly string[] = [],
  options: SpawnWithChannelOptions = {},
): { child: ChildProcess; channel: Channel } {
  const { channel: channelOptions, ...spawnOptions } = options;
  const stdio = spawnOptions.stdio ?? 'inherit';
  const first = typeof stdio === 'string' ? [stdio, stdio, stdio] : [...stdio].slice(0, 3);
  if (Array.isArray(stdio) && stdio.length > 3) {
    throw new MemmapError('ERR_MEMMAP_UNSUPPORTED', 'spawnWithChannel: stdio beyond fd 2 is taken by the channel');
  }
  const channel = Channel.create(channelOptions);
  try {
    // Loaded here, not at import: a process that merely loads node:child_process and then
    // holds a Mutex inside another pid namespace is, when killed, not marked owner-died by the
    // kernel (seen here; not understood yet), and every process that imports memmap would be.
    const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    const child = spawn(command, args, {
      ...spawnOptions,
      env: { ...(spawnOptions.env ?? process.env), MEMMAP_CHANNEL_FD: '3' },
      stdio: [...first, channel.fd] as SpawnOptions['stdio'],
    });
    return { child, channel };
  } catch (error) {
    channel.close();
    throw error;
  }
}
