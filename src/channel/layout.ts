/**
 * The channel's layout in shared memory: the header page and the record header. This file
 * holds only constants, offset helpers and the checks of what a peer wrote; the algorithms
 * are in producer.ts and consumer.ts. docs/api.md ("Channel layout") draws the same picture
 * for C peers.
 *
 * Words: all little-endian, naturally aligned. A *position* is a free-running unsigned 64-bit
 * count of bytes ever claimed (tail) or released (head); an *index* is `position & (capacity -
 * 1)`, an offset into the data ring. Positions and indexes never share a name.
 *
 * ```
 * header page (HEADER_LENGTH bytes)           data ring (capacity bytes, a power of two)
 *   0 u32 magic 'mmch'                         records, each 8-byte aligned, never wrapping:
 *   4 u32 version                                +0 i32 length (header + payload bytes; the
 *   8 u32 header length (4096)                           commit marker: 0 unwritten, < 0
 *  12 u32 capacity                                       claimed, > 0 committed)
 *  16 u32 maxMessage                             +4 i32 type (>= 0 a message, -1 padding;
 *  20 u32 pid namespace of the creator                   while claimed: the claimer's pid)
 * 128 u64 tail position      (producers)
 * 256 u64 head cache         (producers)         +8 payload, then zeros to the next 8 bytes
 * 384 u64 head position      (consumer)
 * 512 i32 data signal, 516 i32 consumer sleeping
 * 640 i32 space signal, 644 i32 producers sleeping flag
 * 768 i32 consumer pid
 * ```
 *
 * @module
 */
import { MemmapError } from '../errors.js';

/** 'mmch' in memory order (little-endian u32): the first word of every channel. */
export const MAGIC = 0x68636d6d;
/** The layout version this code reads and writes; another one is refused at open. */
export const VERSION = 1;
/** Bytes of the header page; the data ring starts here (a page, so the ring is page-aligned). */
export const HEADER_LENGTH = 4096;

/** Offsets of the header's fixed fields (bytes from the start of the shared memory). */
export const MAGIC_OFFSET = 0;
export const VERSION_OFFSET = 4;
export const HEADER_LENGTH_OFFSET = 8;
export const CAPACITY_OFFSET = 12;
export const MAX_MESSAGE_OFFSET = 16;
/**
 * The inode of the creator's pid namespace (/proc/self/ns/pid), 0 if unknown. A producer
 * writes its pid into a claim only when it is in this namespace, and the consumer checks that
 * pid for liveness only when it is too: a pid means nothing in another namespace.
 */
export const PID_NAMESPACE_OFFSET = 20;

/**
 * Each hot word sits on a line of its own: 128 bytes, not 64, because x86 prefetches cache
 * lines in adjacent pairs (Agrona's rule). Producers write the tail and the head cache, the
 * consumer writes the head: sharing a line would make every send and receive fight over it.
 */
export const LINE = 128;
/** u64 tail position: where the next claim starts. Producers move it by compare-and-swap. */
export const TAIL_OFFSET = 1 * LINE;
/** u64 head cache: a recent head position, so a claim reads the consumer's line only when short. */
export const HEAD_CACHE_OFFSET = 2 * LINE;
/** u64 head position: everything before it has been consumed and zeroed. Only the consumer writes it. */
export const HEAD_OFFSET = 3 * LINE;
/** i32 futex word the consumer sleeps on; a producer adds one to it before waking the consumer. */
export const DATA_SIGNAL_OFFSET = 4 * LINE;
/** i32 1 while the consumer is (about to be) asleep: a producer that commits wakes it. */
export const CONSUMER_SLEEPING_OFFSET = 4 * LINE + 4;
/** i32 futex word producers waiting for space sleep on; the consumer adds one before waking them. */
export const SPACE_SIGNAL_OFFSET = 5 * LINE;
/**
 * i32 1 while producers are (about to be) asleep waiting for space. Any sleeper puts it up
 * before its last look; the consumer takes it down with an exchange and wakes them all, and
 * each puts it up again if it must sleep on: so no sleeper's flag is lost to another's wake.
 */
export const PRODUCERS_SLEEPING_OFFSET = 5 * LINE + 4;
/** i32 pid of the process whose consumer holds the channel, 0 when none. */
export const CONSUMER_PID_OFFSET = 6 * LINE;

/** Bytes of a record header: i32 length, i32 type. */
export const RECORD_HEADER_LENGTH = 8;
/** Records start at multiples of this. */
export const RECORD_ALIGNMENT = 8;
/** Offset of the length word in a record header. */
export const LENGTH_FIELD = 0;
/** Offset of the type word in a record header. */
export const TYPE_FIELD = 4;
/** The type of a padding record: it fills the end of the ring, or replaces an aborted or dead claim. */
export const PADDING_TYPE = -1;
/** The largest message type (types are 0 to this). */
export const MAX_TYPE = 0x7fffffff;

/** Smallest and largest capacity of the data ring. */
export const MIN_CAPACITY = 1024;
export const MAX_CAPACITY = 2 ** 30;
/**
 * The largest maxMessage for a capacity: an eighth of the ring (Agrona's rule), so a message
 * never waits for more than an eighth of the ring to drain, and padding the end of the ring
 * wastes at most that much.
 */
export function maxMessageLimit(capacity: number): number {
  return capacity / 8 - RECORD_HEADER_LENGTH;
}

/** Bytes a record of `length` (header included) takes in the ring. */
export function align(length: number): number {
  return (length + RECORD_ALIGNMENT - 1) & ~(RECORD_ALIGNMENT - 1);
}

/** What a channel's header says; read once at open and never again (a peer may rewrite it). */
export interface Geometry {
  capacity: number;
  maxMessage: number;
  /** See PID_NAMESPACE_OFFSET. */
  namespace: number;
}

function layoutError(rule: string): MemmapError {
  return new MemmapError('ERR_MEMMAP_CHANNEL_LAYOUT', `Channel: ${rule}`);
}

/** Writes a new header: every field first, the magic last, so that open() never accepts a half-made one. */
export function writeHeader(words: Int32Array, geometry: Geometry): void {
  Atomics.store(words, PID_NAMESPACE_OFFSET >> 2, geometry.namespace | 0);
  Atomics.store(words, VERSION_OFFSET >> 2, VERSION);
  Atomics.store(words, HEADER_LENGTH_OFFSET >> 2, HEADER_LENGTH);
  Atomics.store(words, CAPACITY_OFFSET >> 2, geometry.capacity);
  Atomics.store(words, MAX_MESSAGE_OFFSET >> 2, geometry.maxMessage);
  Atomics.store(words, MAGIC_OFFSET >> 2, MAGIC);
}

/**
 * Checks the header a peer wrote, one rule each, against the mapping's `length`.
 * @throws ERR_MEMMAP_CHANNEL_LAYOUT, ERR_MEMMAP_CHANNEL_VERSION.
 */
export function readHeader(words: Int32Array, length: number): Geometry {
  if (length < HEADER_LENGTH) {
    throw layoutError(`shared memory of ${length} bytes is smaller than a channel's header (${HEADER_LENGTH})`);
  }
  const magic = Atomics.load(words, MAGIC_OFFSET >> 2);
  if (magic !== MAGIC) {
    throw layoutError(
      `no channel here: the first word is 0x${(magic >>> 0).toString(16)}, not 0x${MAGIC.toString(16)} ('mmch'); was it created with Channel.create?`,
    );
  }
  const version = Atomics.load(words, VERSION_OFFSET >> 2) >>> 0;
  if (version !== VERSION) {
    throw new MemmapError(
      'ERR_MEMMAP_CHANNEL_VERSION',
      `Channel: layout version ${version}, this memmap reads version ${VERSION}: use the same memmap on both sides`,
    );
  }
  const headerLength = Atomics.load(words, HEADER_LENGTH_OFFSET >> 2) >>> 0;
  if (headerLength !== HEADER_LENGTH) throw layoutError(`header length ${headerLength}, expected ${HEADER_LENGTH}`);
  const capacity = Atomics.load(words, CAPACITY_OFFSET >> 2) >>> 0;
  if (capacity < MIN_CAPACITY || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) {
    throw layoutError(`capacity ${capacity} is not a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY}`);
  }
  const maxMessage = Atomics.load(words, MAX_MESSAGE_OFFSET >> 2) >>> 0;
  if (maxMessage > maxMessageLimit(capacity)) {
    throw layoutError(
      `maxMessage ${maxMessage} is above ${maxMessageLimit(capacity)}, an eighth of the ring less a header`,
    );
  }
  if (length !== HEADER_LENGTH + capacity) {
    throw layoutError(
      `shared memory of ${length} bytes, but a header of ${HEADER_LENGTH} and a ring of ${capacity} need ${HEADER_LENGTH + capacity}`,
    );
  }
  return { capacity, maxMessage, namespace: Atomics.load(words, PID_NAMESPACE_OFFSET >> 2) >>> 0 };
}

/** The error for a record or position that breaks a rule of the layout. */
export function corruptError(rule: string): MemmapError {
  return new MemmapError('ERR_MEMMAP_CHANNEL_CORRUPT', `Channel: ${rule} (a corrupt or hostile peer)`);
}
