/**
 * The views of one channel's shared memory that its producers and consumer work through, and
 * the facts read once at open (a peer may rewrite the header later; these copies are what
 * every bound is checked against).
 *
 * @module
 */
import { statSync } from 'node:fs';
import { MemmapError } from '../errors.js';
import type { SharedMemory } from '../shm.js';
import { type Geometry, HEADER_LENGTH } from './layout.js';

/** The inode of this process's pid namespace (0 if unknown): pids mean the same only within one. */
export function pidNamespace(): number {
  try {
    return statSync('/proc/self/ns/pid').ino % 2 ** 32;
  } catch {
    return 0;
  }
}

/** Whether process `pid` exists (of this pid namespace). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export class Ring {
  readonly shm: SharedMemory;
  /** The whole shared memory as bytes, 32-bit words and 64-bit words (offsets from its start). */
  readonly bytes: Buffer;
  readonly words: Int32Array;
  readonly longs: BigInt64Array;
  readonly capacity: number;
  readonly mask: number;
  readonly maxMessage: number;
  /** Whether pids written by peers can be checked here (this process is in the creator's pid namespace). */
  readonly pidsComparable: boolean;

  constructor(shm: SharedMemory, geometry: Geometry) {
    this.shm = shm;
    const b = shm.buffer;
    this.bytes = b;
    this.words = new Int32Array(b.buffer, b.byteOffset, (HEADER_LENGTH + geometry.capacity) >> 2);
    this.longs = new BigInt64Array(b.buffer, b.byteOffset, (HEADER_LENGTH + geometry.capacity) >> 3);
    this.capacity = geometry.capacity;
    this.mask = geometry.capacity - 1;
    this.maxMessage = geometry.maxMessage;
    this.pidsComparable = geometry.namespace !== 0 && geometry.namespace === pidNamespace();
  }

  /** Throws ERR_MEMMAP_CLOSED once the channel is closed. */
  check(what: string): void {
    if (this.shm.closed) throw new MemmapError('ERR_MEMMAP_CLOSED', `${what}: the channel is closed`);
  }
}
