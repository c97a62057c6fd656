/**
 * File and anonymous mappings: {@link mapFile}, {@link mapAnonymous} and {@link Mapping}.
 *
 * @module
 */
import { constants as bufferConstants } from 'node:buffer';
import { readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type InspectOptionsStylized, inspect } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import {
  closedError,
  invalidArgType,
  invalidArgValue,
  MemmapError,
  protectionError,
  systemError,
  truncatedError,
} from './errors.js';
import { ADVICE, ADVICES, type Advice, adviceHint, lockHint, type MemoryStats, smapsFor } from './internal/tuning.js';
import { validateBoolean, validateInteger, validateOneOf, validateOptions } from './internal/validate.js';
import { type TypedArray, type TypedArrayConstructor, typedView, type ViewOptions } from './internal/views.js';
import {
  type LinesOptions,
  type MappingIterator,
  type ReadStreamOptions,
  type ScanRange,
  lines as scanLines,
  records as scanRecords,
  split as scanSplit,
  createReadStream as streamOf,
} from './lines.js';
import {
  addon,
  createSharedArrayBuffer,
  FileKind,
  type Handle,
  mappingCountRefusal,
  roomForMapping,
  runtimeName,
} from './native.js';
import { numaNodes } from './numa.js';

/**
 * How a mapping relates to its file.
 * - `'read'`: read-only; sees every later change to the file.
 * - `'write'`: read-write and shared; writes reach the file and every other mapping of it.
 * - `'copy'`: read-write and private (copy-on-write); the file never changes.
 */
export type MapMode = 'read' | 'write' | 'copy';

/** The access-pattern hints {@link mapFile} can give when it maps (a subset of {@link Advice}). */
export type AccessAdvice = 'normal' | 'random' | 'sequential' | 'willneed';

/** What a range of a mapping may be used for; see {@link Mapping.protect}. */
export type Protection = 'none' | 'read' | 'readwrite';
const PROTECTIONS: Protection[] = ['none', 'read', 'readwrite'];

/** How {@link Mapping.bind} places pages on NUMA nodes. */
export type NumaPolicy = 'bind' | 'preferred' | 'interleave';
const NUMA_POLICIES: NumaPolicy[] = ['preferred', 'bind', 'interleave'];

/** Options of {@link Mapping.bind}. */
export interface BindOptions extends RangeOptions {
  /**
   * 'bind': only these nodes (allocation fails rather than going elsewhere); 'preferred': this
   * node first, others when it is full (one node); 'interleave': page by page across them.
   * Default 'bind'.
   */
  policy?: NumaPolicy;
  /** Also move pages already in memory to the nodes (MPOL_MF_MOVE). Default false. */
  move?: boolean;
}

/** Options of {@link Mapping.prefault}. */
export interface PrefaultOptions extends RangeOptions {
  /** Place the pages on this NUMA node (preferred), the way first touch by a thread there would. */
  onNode?: number;
}

/** Options of {@link Mapping.lock}. */
export interface LockRangeOptions extends RangeOptions {
  /**
   * Lock only the pages already in memory, and each page as it is first touched, instead of
   * reading the whole range in now (mlock2 MLOCK_ONFAULT). Default false.
   */
  onFault?: boolean;
}

/** Which pages of a range are in memory: from {@link Mapping.residency} and {@link fileResidency}. */
export interface Residency {
  pageSize: number;
  /** Pages in the range (a partial page counts as one). */
  pages: number;
  /** Of which resident. */
  resident: number;
  /** One byte per page: 1 resident, 0 not. */
  map: Uint8Array;
}

/** The options of {@link mapFile} that every mode takes. */
export interface MapFileCommonOptions {
  /** Byte offset in the file where the mapping starts; any byte, not only a page boundary. Default 0. */
  offset?: number;
  /** Bytes to map. Default: from `offset` to the end of the file. */
  length?: number;
  /**
   * Grow the file (with `grow`, and later with {@link Mapping.resize}) without reserving its
   * blocks: the new part is a hole that costs no space until written, for files that are
   * sparse on purpose. The risk: on a full file system a write into a hole cannot be stored,
   * and the mapping faults (ERR_MEMMAP_TRUNCATED) instead of the growing call failing with
   * ENOSPC. Default false: growing reserves the blocks (fallocate), so ENOSPC comes from the
   * call; on a file system that cannot reserve ahead the file grows sparsely all the same.
   */
  sparse?: boolean;
  /** Read every page in before returning (MAP_POPULATE), so first accesses do not fault. Default false. */
  populate?: boolean;
  /** An initial access-pattern hint for the whole mapping. Default: none. */
  advice?: AccessAdvice;
  /**
   * Charge nothing against the commit limit up front (MAP_NORESERVE). Matters for 'copy'
   * mappings, whose written pages are private memory: the risk is that the process is killed
   * when memory runs out as it writes, instead of getting ENOMEM now. Default false.
   */
  noReserve?: boolean;
  /**
   * Where the mapping's first page must start (page-aligned), taken only if that range is free
   * (MAP_FIXED_NOREPLACE): EEXIST otherwise. memmap never replaces a mapping that is there.
   */
  hint?: number | bigint;
}

/**
 * Options of {@link mapFile}. `grow`, `create` and `syncMapping` need `mode: 'write'`: the
 * types refuse `{ mode: 'read', grow: true }`, as mapFile does at run time.
 */
export type MapFileOptions = MapFileCommonOptions &
  (
    | {
        /** `'read'` (default), `'write'` or `'copy'`; see {@link MapMode}. */
        mode: 'write';
        /** Extend the file to `offset + length` first if it is shorter (mode `'write'` only). Default false. */
        grow?: boolean;
        /** Create the file if it does not exist (mode `'write'` only; with a path). Default false. */
        create?: boolean;
        /**
         * Synchronous page faults for a file on a DAX file system (persistent memory): writes are
         * durable once they reach the CPU cache's flush, without msync (MAP_SYNC). 'write' only;
         * elsewhere EOPNOTSUPP. Default false.
         */
        syncMapping?: boolean;
      }
    | {
        /** `'read'` (default) or `'copy'`. */
        mode?: 'read' | 'copy' | undefined;
        grow?: false;
        create?: false;
        syncMapping?: false;
      }
  );

/** Options of {@link mapAnonymous}. */
export interface MapAnonymousOptions {
  /** Shared memory (MAP_SHARED) instead of private. Default false. */
  shared?: boolean;
  /** Allocate every page before returning (MAP_POPULATE). Default false. */
  populate?: boolean;
  /**
   * Charge nothing against the commit limit up front (MAP_NORESERVE): a huge sparse region
   * costs only the pages written. The risk: the process is killed when memory runs out as it
   * writes, instead of getting ENOMEM now. Default false.
   */
  noReserve?: boolean;
  /**
   * Back the memory with reserved huge pages (MAP_HUGETLB) of 2 MB or 1 GB: fewer TLB misses
   * for large working sets. The length is rounded up to whole huge pages. Needs pages reserved
   * in /proc/sys/vm/nr_hugepages (the error says how many are free).
   */
  hugePages?: '2MB' | '1GB';
  /**
   * Ask for transparent huge pages (MADV_HUGEPAGE, on a 2 MiB-aligned range): no reservation
   * needed; the kernel backs the memory with huge pages where it can. memoryStats().anonHugePages
   * shows how much it did.
   */
  transparentHugePages?: boolean;
  /** As for {@link MapFileOptions.hint}. */
  hint?: number | bigint;
}

/** Options of {@link Mapping.flush}. */
export interface FlushOptions extends RangeOptions {
  /**
   * Schedule the write-back and return at once (MS_ASYNC) instead of waiting for the disk.
   * Nothing is durable until a flush without it returns. Default false.
   */
  async?: boolean;
  /**
   * Also make other mappings of the file drop cached copies of the range (MS_INVALIDATE), so
   * they see what is in the file. On Linux the page cache is shared and this is rarely needed.
   * Default false.
   */
  invalidate?: boolean;
}

/** A byte range of a mapping, relative to its first byte. */
export interface RangeOptions {
  /** Default 0. */
  offset?: number;
  /** Default: to the end of the mapping. */
  length?: number;
}

/** What {@link mapFile} accepts as the file: a path, a `file:` URL, a numeric fd or a FileHandle. */
export type FileTarget = string | URL | number | FileHandle;

const ACCESS: Record<MapMode, number> = { read: 0, write: 1, copy: 2 };
const FLAG_POPULATE = 1;
const FLAG_NO_RESERVE = 2;
const FLAG_HUGE_2M = 4;
const FLAG_HUGE_1G = 8;
const FLAG_SYNC = 16;
const FLAG_ALIGN_HUGE = 32;
const FLUSH_ASYNC = 1;
const FLUSH_INVALIDATE = 2;

const MODES = Object.keys(ACCESS) as MapMode[];
const ACCESS_ADVICES: AccessAdvice[] = ['normal', 'random', 'sequential', 'willneed'];
const FILE_OPTIONS = [
  'mode',
  'offset',
  'length',
  'grow',
  'create',
  'sparse',
  'populate',
  'advice',
  'noReserve',
  'syncMapping',
  'hint',
] as const;
const FILE_OPTIONS_MEANT = {
  readOnly: "mode: 'read'",
  readonly: "mode: 'read'",
  writable: "mode: 'write'",
  write: "mode: 'write'",
  size: 'length',
  start: 'offset',
  position: 'offset',
  truncate: 'grow',
  sync: 'syncMapping',
  address: 'hint',
};
const ANON_OPTIONS = ['shared', 'populate', 'noReserve', 'hugePages', 'transparentHugePages', 'hint'] as const;
const RANGE_OPTIONS = ['offset', 'length'] as const;

const pageSize = addon.pageSize;
const kMaxLength = bufferConstants.MAX_LENGTH;
const kCreate = Symbol('memmap.create');
/** @internal The constructor token, for the subclasses of Mapping in this package. */
export const kMappingToken = kCreate;
/** @internal A method key: the file descriptor a mapping owns (-1 once closed). */
export const kFd = Symbol('memmap.fd');

/** @internal A method key: throws what the next call would (closed, faulted), naming `what`. */
export const kCheck = Symbol('memmap.check');

/** @internal */
export interface Parts {
  handle: Handle;
  /** Bytes between the page-aligned start of the region and the first byte handed out. */
  delta: number;
  length: number;
  offset: number;
  mode: MapMode;
  path: string | null;
  /** The mapping grew its file, whose new size flush() must make durable. */
  grew: boolean;
  anonymous: boolean;
  /** The flags it was mapped with (FLAG_*), which remap() and resize() map with again. */
  flags: number;
  /** Grow the file without reserving its blocks (mapFile's `sparse`). */
  sparse?: boolean;
}

/** What a 'fault' listener of a {@link Mapping} receives. */
export interface FaultEvent {
  /**
   * 'truncated': a page the file lost (it shrank under the mapping, or the page could not be
   * read), which now reads as zeros; 'protection': an access the mapping's mode or protect()
   * forbids, which landed on a private copy.
   */
  kind: 'truncated' | 'protection';
  /** The first fault's access: 'read', 'write', or 'access' where the machine does not say. */
  access: 'read' | 'write' | 'access';
  /** Where the first fault was, in bytes from the start of the mapping. */
  offset: number;
  /** When the first fault was, in milliseconds since the epoch (as Date.now()). */
  time: number;
  /** Faults the guard absorbed in the mapping so far. */
  count: number;
}

const FAULT_LOST = 1;
const FAULT_WRITE = 8;
const FAULT_READ = 4;

function faultEventOf(first: [number, number, number, number], delta: number): FaultEvent {
  const [bits, at, time, count] = first;
  return {
    kind: bits & FAULT_LOST ? 'truncated' : 'protection',
    access: bits & FAULT_WRITE ? 'write' : bits & FAULT_READ ? 'read' : 'access',
    offset: Math.max(0, at - delta),
    time,
    count,
  };
}

/** The first fault in words, for the messages of ERR_MEMMAP_TRUNCATED and _PROTECTION. */
function describeFault(first: [number, number, number, number], delta: number, mode: MapMode): string {
  const f = faultEventOf(first, delta);
  const what = f.access === 'access' ? 'an access' : `a ${f.access}`;
  const when = new Date(f.time).toISOString();
  if (f.kind === 'truncated') return `first ${what} at offset ${f.offset} of a page the file no longer has (${when})`;
  const into = mode === 'read' && f.access === 'write' ? 'into a read-only mapping' : 'that its protection forbids';
  return `first ${what} at offset ${f.offset} ${into} (${when})`;
}

/** Mappings with 'fault' listeners. */
const watching = new Set<Mapping>();
let noticesStarted = false;

/** Asks the guard to wake this thread's event loop after faults (Node's main thread only). */
function startFaultNotices(): void {
  if (noticesStarted) return;
  noticesStarted = true;
  const report = () => {
    for (const m of [...watching]) m.report();
  };
  // The guard's wake-up does not keep the process alive: a fault in the last turn is reported
  // when the event loop runs dry, as the process is about to exit.
  process.on('beforeExit', () => {
    if (watching.size > 0 && faultEpoch() !== reportedEpoch) {
      reportedEpoch = faultEpoch();
      report();
    }
  });
  const versions = process.versions as Record<string, string | undefined>;
  if (!isMainThread || versions.bun !== undefined || versions.deno !== undefined) return;
  addon.faultNotify(() => {
    reportedEpoch = faultEpoch();
    report();
  });
}
let reportedEpoch = -1;

/**
 * A mapped range of a file or of anonymous memory. Made by {@link mapFile} or
 * {@link mapAnonymous}; release it with {@link Mapping.close} (or `using`).
 *
 * Safety: another process can change a shared file under a mapping at any time; what this
 * process reads is whatever the file holds at that moment. Coordinate writers with a lock. If
 * the file shrinks, the pages past its new end read as zeros, {@link Mapping.faulted} turns
 * true and the next call reports ERR_MEMMAP_TRUNCATED: the process does not die.
 */
export class Mapping implements Disposable {
  #handle: Handle | null;
  #delta: number;
  #grew: boolean;
  #length: number;
  #arrayBuffer: ArrayBuffer | null = null;
  #buffer: Buffer | null = null;
  #shared: SharedArrayBuffer | null = null;
  #closed = false;
  /** What made the mapping faulted, once something did. */
  #fault: 'truncated' | 'protection' | null = null;
  /** The first fault, as the guard recorded it: [kind bits, region offset, time ms, count]. */
  #first: [number, number, number, number] | null = null;
  /** 'fault' listeners (each with the fault count it was last told of), or null for none. */
  #listeners: { listener: (fault: FaultEvent) => void; once: boolean; seen: number }[] | null = null;
  /** The guard's epoch when this mapping last asked whether it faulted. */
  #epoch: number;
  #flags: number;
  #viewsDropped = 0;

  /** Where the mapping starts in its file, in bytes (0 for anonymous memory). */
  readonly offset: number;
  /** How the mapping relates to its file; anonymous memory is `'write'` if shared, else `'copy'`. */
  readonly mode: MapMode;
  /** The file's path when it was mapped by path, otherwise null. */
  readonly path: string | null;
  readonly #anonymous: boolean;
  readonly #sparse: boolean;

  /** @internal Use {@link mapFile} or {@link mapAnonymous}. */
  constructor(token: symbol, parts: Parts) {
    if (token !== kCreate) {
      throw Object.assign(new TypeError('Illegal constructor: use mapFile() or mapAnonymous()'), {
        code: 'ERR_ILLEGAL_CONSTRUCTOR',
      });
    }
    this.#handle = parts.handle;
    this.#delta = parts.delta;
    this.#grew = parts.grew;
    this.#length = parts.length;
    this.offset = parts.offset;
    this.mode = parts.mode;
    this.path = parts.path;
    this.#anonymous = parts.anonymous;
    this.#flags = parts.flags;
    this.#epoch = faultEpoch();
    this.#sparse = parts.sparse === true;
  }

  /** Bytes mapped. Changes only through {@link Mapping.remap}. */
  get length(): number {
    return this.#length;
  }

  /**
   * Where the mapping's first byte is in this process's address space: for matching it with
   * /proc/self/maps, handing it to native code, or placing another mapping next to it with
   * `hint`. 0n once closed.
   */
  get address(): bigint {
    return this.#handle === null ? 0n : addon.regionAddress(this.#handle) + BigInt(this.#delta);
  }

  /** True once {@link Mapping.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * True once the guard absorbed a fault in this mapping: the file shrank under it (or a page
   * could not be read) and an access touched a page that is gone, which reads as zeros
   * (ERR_MEMMAP_TRUNCATED); or an access reached a page its protection forbids, which now
   * holds a private copy (ERR_MEMMAP_PROTECTION). Every call but {@link Mapping.remap} and
   * {@link Mapping.close} then throws that code.
   */
  get faulted(): boolean {
    if (this.#faultedSoFar()) return true;
    // The kernel reads a lost page for a system call (fs.writeSync of the Buffer, say) by
    // failing the call with EFAULT, not by a fault the guard sees: ask the file's size too.
    if (!this.#anonymous && this.#handle !== null && !this.#closed) {
      const info = addon.fileInfo(addon.fd(this.#handle));
      if (typeof info !== 'number' && info[1] < this.offset + this.#length) this.#fault = 'truncated';
    }
    return this.#fault !== null;
  }

  /**
   * Whether the guard absorbed a fault in this mapping. A memory read while no fault happened
   * anywhere in the process since the last question; a native call only when one did.
   */
  #faultedSoFar(): boolean {
    if (this.#fault !== null) {
      // More faults since: listeners that no wake-up reaches hear of them at this notice.
      if (this.#listeners !== null && this.#handle !== null && faultEpoch() !== this.#epoch) {
        this.#epoch = faultEpoch();
        queueMicrotask(() => this.#report());
      }
      return true;
    }
    if (this.#handle === null || faultEpoch() === this.#epoch) return false;
    this.#epoch = faultEpoch();
    const kind = addon.faultKind(this.#handle);
    if (kind !== 0) {
      this.#fault = kind === 1 ? 'truncated' : 'protection';
      this.#first = addon.faultFirst(this.#handle) ?? null;
      // Where the event loop is not woken by the guard (worker threads, Bun, Deno), the
      // listeners hear of the fault now, when the mapping notices it.
      if (this.#listeners !== null) queueMicrotask(() => this.#report());
    }
    return this.#fault !== null;
  }

  /**
   * Listens for faults the guard absorbs in this mapping: a read or write of a page the file
   * lost (it shrank, or the page could not be read) or an access its protection forbids. On
   * Node's main thread the guard wakes the event loop, so the listener runs within a turn of
   * the fault; in worker threads, Bun and Deno it runs once the mapping next notices (any
   * call on it, or `faulted`). Called once per batch of faults with the first one's kind,
   * access, offset and time, and the count so far; the calls on the mapping go on throwing
   * ERR_MEMMAP_TRUNCATED or ERR_MEMMAP_PROTECTION as before. A listening mapping stays
   * reachable until it is closed or the listener is removed.
   * @example
   * m.on('fault', (f) => log.warn(`${m.path}: ${f.access} at ${f.offset}, ${f.kind}`));
   */
  on(event: 'fault', listener: (fault: FaultEvent) => void): this {
    return this.#listen(event, listener, false);
  }

  /** As {@link Mapping.on}, for the next report only. */
  once(event: 'fault', listener: (fault: FaultEvent) => void): this {
    return this.#listen(event, listener, true);
  }

  /** Removes a listener added with {@link Mapping.on} or {@link Mapping.once}. */
  off(event: 'fault', listener: (fault: FaultEvent) => void): this {
    if (event !== 'fault') throw invalidArgValue('event', event, "is not an event of a Mapping (only 'fault')");
    const list = this.#listeners;
    if (list !== null) {
      const at = list.findIndex((l) => l.listener === listener);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0) this.#unwatch();
    }
    return this;
  }

  #listen(event: unknown, listener: unknown, once: boolean): this {
    if (event !== 'fault') throw invalidArgValue('event', event, "is not an event of a Mapping (only 'fault')");
    if (typeof listener !== 'function') throw invalidArgType('listener', 'of type function', listener);
    if (this.#closed) return this;
    if (this.#listeners === null) {
      this.#listeners = [];
      watching.add(this);
      startFaultNotices();
    }
    this.#listeners.push({ listener: listener as (fault: FaultEvent) => void, once, seen: 0 });
    // A fault from before the listener came is reported too.
    if (this.#fault !== null || this.#faultedSoFar()) queueMicrotask(() => this.#report());
    return this;
  }

  #unwatch(): void {
    this.#listeners = null;
    watching.delete(this);
  }

  /** @internal Tells the listeners of faults not reported yet. */
  report(): void {
    this.#report();
  }

  /**
   * Tells each listener of the faults it was not told of yet. A listener that throws does not
   * keep the others (or other mappings) from hearing: its error is thrown again on its own,
   * as an uncaught exception, after this returns.
   */
  #report(): void {
    const list = this.#listeners;
    if (list === null || list.length === 0) return;
    if (this.#handle !== null && this.#first === null) {
      if (!this.#faultedSoFar()) return;
    }
    const first = this.#handle !== null ? (addon.faultFirst(this.#handle) ?? this.#first) : this.#first;
    if (first === null) return;
    this.#first ??= first;
    const fault = faultEventOf(first, this.#delta);
    for (const entry of [...list]) {
      if (entry.seen >= first[3]) continue;
      entry.seen = first[3];
      if (entry.once) {
        const at = list.indexOf(entry);
        if (at >= 0) list.splice(at, 1);
        if (list.length === 0) this.#unwatch();
      }
      try {
        entry.listener.call(this, fault);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /**
   * The mapped bytes as a Buffer: zero copy, so every Buffer method, typed-array view,
   * TextDecoder and hash update works on the file's memory directly. The same Buffer on
   * every access until {@link Mapping.remap}. Detached (length 0) once the mapping is closed.
   * @throws MemmapError ERR_MEMMAP_CLOSED after close(); ERR_MEMMAP_TRUNCATED after a fault;
   * ERR_MEMMAP_OUT_OF_RANGE when the mapping is larger than a Buffer can be.
   */
  get buffer(): Buffer {
    this.#check('buffer');
    if (this.#buffer === null) {
      if (this.#handle === null || this.#length === 0) {
        this.#buffer = Buffer.alloc(0);
      } else {
        if (this.#length > kMaxLength) {
          throw new MemmapError(
            'ERR_MEMMAP_OUT_OF_RANGE',
            `buffer: a Buffer holds at most ${kMaxLength} bytes on ${runtimeName()} and this mapping has ${this.#length}; map the file in ranges of at most that size, or use sharedBuffer()`,
          );
        }
        this.#arrayBuffer = addon.view(this.#handle, this.#delta, this.#length);
        this.#buffer = Buffer.from(this.#arrayBuffer, 0, this.#length);
      }
    }
    return this.#buffer;
  }

  /**
   * The mapped bytes as a SharedArrayBuffer, for Atomics and for handing to worker threads
   * with postMessage. The same object on every call until {@link Mapping.remap}. A
   * SharedArrayBuffer cannot be detached: after close() it reads zeros until it is garbage
   * collected, and the file is released at once.
   * @throws MemmapError ERR_MEMMAP_CLOSED after close(); ERR_MEMMAP_TRUNCATED after a fault;
   * ERR_MEMMAP_UNSUPPORTED on a runtime that cannot wrap mapped memory in a SharedArrayBuffer.
   */
  sharedBuffer(): SharedArrayBuffer {
    this.#check('sharedBuffer');
    if (this.#shared === null) {
      this.#shared =
        this.#handle === null || this.#length === 0
          ? new SharedArrayBuffer(0)
          : createSharedArrayBuffer(this.#handle, this.#delta, this.#length);
    }
    return this.#shared;
  }

  /**
   * A typed array of `Type` over the mapping, zero copy: `length` elements (default: every
   * whole element to the end) from byte `offset`. The first element must be aligned in memory
   * (file offset of the mapping + `offset` a multiple of the element size) unless `copy: true`
   * asks for a heap copy. Views larger than a Buffer can be come from {@link Mapping.sharedBuffer}.
   * @throws MemmapError ERR_MEMMAP_MISALIGNED, ERR_MEMMAP_OUT_OF_RANGE (past the mapping, or
   * more elements than the runtime's typed arrays hold), ERR_MEMMAP_CLOSED; ERR_OUT_OF_RANGE
   * for a length above 2^53 - 1; ERR_INVALID_ARG_TYPE for a `Type` that is not a typed array.
   * @example
   * using m = mapFile('embeddings.f32');
   * const row = m.view(Float32Array, { offset: 1024 * 4 * 768, length: 768 });
   */
  view<T extends TypedArray>(Type: TypedArrayConstructor<T>, options?: ViewOptions): T {
    return typedView(this, Type, options);
  }

  /**
   * Writes the dirty pages of a range back to the file and waits until they are on storage
   * (msync MS_SYNC; the range is widened to whole pages). If this mapping grew the file, the
   * new size is made durable too (fsync). Nothing to do for `'read'` and `'copy'` mappings.
   * If the file is now shorter than the range, the flush reports ERR_MEMMAP_TRUNCATED: what
   * was written past its end is in no file.
   * @throws MemmapError ERR_MEMMAP_CLOSED, ERR_MEMMAP_TRUNCATED, ERR_MEMMAP_OUT_OF_RANGE; a
   * SystemError (EIO, ...) if the write-back failed.
   */
  flush(options?: FlushOptions): void {
    const [start, length] = this.#range(options, 'flush', ['async', 'invalidate']);
    const opts = options ?? {};
    const async = opts.async === undefined ? false : validateBoolean(opts.async, 'options.async');
    const invalidate = opts.invalidate === undefined ? false : validateBoolean(opts.invalidate, 'options.invalidate');
    if (this.#handle === null || this.mode !== 'write') return;
    const how = (async ? FLUSH_ASYNC : 0) | (invalidate ? FLUSH_INVALIDATE : 0);
    // An asynchronous flush does not wait for the file's new size either: a later flush does.
    const rc = addon.flush(this.#handle, start, length, this.#grew && !async, how);
    this.#settle(rc, 'flush', start + length, !async);
  }

  /**
   * {@link Mapping.flush} on libuv's thread pool, so the event loop keeps running while the
   * pages are written.
   */
  async flushAsync(options?: Omit<FlushOptions, 'async'>): Promise<void> {
    const [start, length] = this.#range(options, 'flushAsync', ['invalidate']);
    const invalidate =
      options?.invalidate === undefined ? false : validateBoolean(options.invalidate, 'options.invalidate');
    if (this.#handle === null || this.mode !== 'write') return;
    const handle = this.#handle;
    const fileEnd = this.offset - this.#delta + start + length;
    const rc = await addon.flushAsync(handle, start, length, this.#grew, invalidate ? FLUSH_INVALIDATE : 0);
    if (this.#handle === handle) return this.#settle(rc, 'flushAsync', start + length, true);
    // resize(), remap() or close() came while the flush ran: it covered the mapping it was
    // started on, which is not this one. Bytes the program cut off itself are no truncation;
    // the native side synced the file again if its size changed meanwhile.
    if (rc < 0) throw systemError(rc, 'msync', this.path);
    if (this.#handle === null) return;
    const info = addon.fileInfo(addon.fd(this.#handle));
    if (typeof info === 'number') throw systemError(info, 'fstat', this.path);
    if (info[1] < Math.min(fileEnd, this.offset + this.#length)) throw truncatedError('flushAsync', this.path);
  }

  /**
   * Gives the kernel advice about a range (madvise), by default the whole mapping; the range
   * is widened to whole pages. Access patterns: 'normal', 'random' (no read-ahead),
   * 'sequential' (more read-ahead, pages dropped behind), 'willneed' (start reading now).
   * Memory: 'populate-read' / 'populate-write' (fault the pages in now), 'cold' (reclaim these
   * first), 'pageout' (reclaim now), 'hugepage' / 'nohugepage' (transparent huge pages),
   * 'dontfork' / 'dofork' (whether a forked child gets the range).
   *
   * Three advices discard data: 'dontneed' (a private or anonymous mapping loses its changes
   * and reads the file, or zeros, again; a shared file mapping loses nothing),
   * 'free' (private anonymous memory may read zeros later), and 'remove' (frees the range
   * and punches a hole in the file behind it: it reads zeros, in every process).
   * @throws a SystemError whose message says why the kernel refused (EINVAL, EACCES, ...);
   * ERR_MEMMAP_CLOSED, ERR_MEMMAP_TRUNCATED, ERR_MEMMAP_OUT_OF_RANGE.
   * @example
   * using m = mapFile('index.bin');
   * m.advise('random');
   * m.advise('willneed', { offset: 0, length: 1 << 20 });
   */
  advise(advice: Advice, range?: RangeOptions): void {
    validateOneOf(advice, 'advice', ADVICES);
    const [start, length] = this.#range(range, 'advise');
    if (this.#handle === null || length === 0) return;
    const rc = addon.advise(this.#handle, start, length, ADVICE[advice]);
    if (rc < 0) throw systemError(rc, 'madvise', this.path, adviceHint(advice, rc));
  }

  /**
   * Changes what a range (by default the whole mapping) may be used for (mprotect; widened to
   * whole pages): 'none', 'read' or 'readwrite'. Never executable. A stray access that the
   * protection forbids does not end the process and never reaches the file: the page gets a
   * private copy that takes the access, the mapping turns {@link Mapping.faulted}, and later
   * calls throw ERR_MEMMAP_PROTECTION.
   * @throws EACCES for 'readwrite' on a mapping whose file is open read-only ('read' mode);
   * the range errors of every range call.
   * @example
   * using table = mapFile('table.bin', { mode: 'write' });
   * build(table.buffer);
   * table.protect('read'); // from now on a write is caught, not stored
   */
  protect(protection: Protection, range?: RangeOptions): void {
    validateOneOf(protection, 'protection', PROTECTIONS);
    const [start, length] = this.#range(range, 'protect');
    if (this.#handle === null || length === 0) return;
    const rc = addon.protect(this.#handle, start, length, PROTECTIONS.indexOf(protection));
    if (rc < 0) {
      throw systemError(
        rc,
        'mprotect',
        this.path,
        rc === -13 /* EACCES */
          ? "'readwrite' needs a mapping made writable ('write' or 'copy'): the file of a 'read' mapping is open read-only"
          : undefined,
      );
    }
  }

  /**
   * Sets the NUMA policy of a range (by default the whole mapping; mbind): which memory nodes
   * its pages come from when they are first touched, and with `move` where the pages already in
   * memory go. See {@link numaNodes}. A machine with one node runs it all the same.
   * @throws ERR_INVALID_ARG_VALUE for a node this machine does not have (the message lists
   * the ones it has), or several nodes with 'preferred'; ERR_MEMMAP_UNSUPPORTED on a kernel
   * without NUMA; EIO when `move` could not move every page.
   * @example
   * using table = mapAnonymous(1 << 30);
   * table.bind([0, 1], { policy: 'interleave' });
   */
  bind(nodes: number[], options?: BindOptions): void {
    const opts = validateOptions(options, 'options', ['offset', 'length', 'policy', 'move'] as const);
    const policy = opts.policy === undefined ? 'bind' : validateOneOf(opts.policy, 'options.policy', NUMA_POLICIES);
    const move = opts.move === undefined ? false : validateBoolean(opts.move, 'options.move');
    const mask = nodeMask(nodes, 'nodes');
    if (policy === 'preferred' && nodes.length !== 1) {
      throw invalidArgValue('nodes', nodes, "must name exactly one node with policy 'preferred'");
    }
    const [start, length] = this.#range({ offset: opts.offset, length: opts.length } as RangeOptions, 'bind');
    if (this.#handle === null || length === 0) return;
    const rc = addon.bindRange(this.#handle, start, length, NUMA_POLICIES.indexOf(policy) + 1, mask, move);
    if (rc < 0)
      throw systemError(rc, 'mbind', this.path, rc === -5 /* EIO */ ? 'some pages could not be moved' : undefined);
  }

  /**
   * Faults a range (by default the whole mapping) in now, so that later accesses do not wait:
   * writable mappings get their pages allocated or read (MADV_POPULATE_WRITE), read-only ones
   * read in (MADV_POPULATE_READ). With `onNode`, the pages go to that NUMA node first, as they
   * would if a thread running there touched them first.
   * @example
   * using buffer = mapAnonymous(256 << 20);
   * buffer.prefault({ onNode: 0 });
   */
  prefault(options?: PrefaultOptions): void {
    const opts = validateOptions(options, 'options', ['offset', 'length', 'onNode'] as const);
    const range = { offset: opts.offset, length: opts.length } as RangeOptions;
    if (opts.onNode !== undefined) {
      const node = validateInteger(opts.onNode, 'options.onNode', 0, 52);
      this.bind([node], { ...range, policy: 'preferred' });
    }
    const [start, length] = this.#range(range, 'prefault');
    if (this.#handle === null || length === 0) return;
    const advice = this.mode === 'read' ? 'populate-read' : 'populate-write';
    const rc = addon.advise(this.#handle, start, length, ADVICE[advice]);
    if (rc === -22 /* EINVAL: before Linux 5.14 */) {
      // Touch one byte per page: a write for writable memory (a read would map the shared
      // zero page and allocate nothing), a read otherwise.
      const view = new Uint8Array(addon.view(this.#handle, start, length));
      for (let i = 0; i < view.length; i += pageSize) {
        if (this.mode === 'read') void view[i];
        else Atomics.add(view, i, 0);
      }
      addon.detach(view.buffer);
    } else if (rc < 0) {
      throw systemError(rc, 'madvise', this.path, adviceHint(advice, rc));
    }
  }

  /**
   * Locks a range (by default the whole mapping) in RAM (mlock): its pages are read in now
   * and never swapped out or dropped from the page cache until {@link Mapping.unlock} or
   * close(). With `onFault`, only pages already in memory and each page when first touched.
   * Locked memory counts against RLIMIT_MEMLOCK (`ulimit -l`, often 8 MiB) unless the
   * process has CAP_IPC_LOCK; the error names the limit in force and how to raise it.
   * @throws ENOMEM above the limit, EPERM where locking is not permitted, EAGAIN; the
   * mapping errors of every range call.
   * @example
   * using hot = mapFile('hot.bin');
   * hot.lock({ onFault: true });
   */
  lock(options?: LockRangeOptions): void {
    const opts = validateOptions(options, 'options', ['offset', 'length', 'onFault'] as const);
    const onFault = opts.onFault === undefined ? false : validateBoolean(opts.onFault, 'options.onFault');
    const [start, length] = this.#range({ offset: opts.offset, length: opts.length }, 'lock');
    if (this.#handle === null || length === 0) return;
    const rc = addon.lockRange(this.#handle, start, length, onFault);
    if (rc < 0) throw systemError(rc, onFault ? 'mlock2' : 'mlock', this.path, lockHint(rc, length));
  }

  /** Unlocks a range locked with {@link Mapping.lock} (munlock); unlocking what is not locked is fine. */
  unlock(range?: RangeOptions): void {
    const [start, length] = this.#range(range, 'unlock');
    if (this.#handle === null || length === 0) return;
    const rc = addon.unlockRange(this.#handle, start, length);
    if (rc < 0) throw systemError(rc, 'munlock', this.path);
  }

  /**
   * Which pages of a range (by default the whole mapping) are in memory now (mincore),
   * without touching any: for a file mapping, whether each page is in the page cache. One call
   * answers for at most 2^26 pages (256 GiB of 4 KiB pages); ask about a
   * larger range in windows of `offset` and `length`.
   * @throws MemmapError ERR_MEMMAP_OUT_OF_RANGE for a range of more pages than that, or
   * outside the mapping; ERR_MEMMAP_CLOSED, ERR_MEMMAP_TRUNCATED.
   * @example
   * const { resident, pages } = m.residency();
   * console.log(`${((100 * resident) / pages).toFixed(0)}% cached`);
   */
  residency(range?: RangeOptions): Residency {
    const [start, length] = this.#range(range, 'residency');
    checkResidencyPages('residency', length, this.length);
    if (this.#handle === null || length === 0) return { pageSize, pages: 0, resident: 0, map: new Uint8Array(0) };
    const map = addon.residency(this.#handle, start, length);
    if (typeof map === 'number') throw systemError(map, 'mincore', this.path);
    return residencyOf(map);
  }

  /**
   * The kernel's memory figures for this mapping (from /proc/self/smaps), in bytes: resident
   * (rss), proportional (pss), shared and private clean and dirty pages, transparent huge
   * pages, locked and swapped bytes. `exact` is false when the kernel merged the mapping with
   * a neighbouring one of the same kind, whose figures are then included.
   * @example
   * using m = mapFile('data.bin', { populate: true });
   * console.log(m.memoryStats().rss);
   */
  memoryStats(): MemoryStats {
    this.#check('memoryStats');
    if (this.#handle === null || this.#length === 0) return smapsFor(0n, 0n);
    const base = addon.regionAddress(this.#handle);
    return smapsFor(base, base + BigInt(this.#delta + this.#length));
  }

  /**
   * Maps the file again at its current size, for readers that follow a growing file and for
   * recovering a mapping whose file shrank. The old Buffer is detached and the old
   * SharedArrayBuffer reads zeros; {@link Mapping.buffer} and {@link Mapping.sharedBuffer}
   * then hand out views of the new mapping. `length` defaults to the end of the file.
   * @throws MemmapError ERR_MEMMAP_CLOSED; ERR_MEMMAP_OUT_OF_RANGE if `length` reaches past the
   * end of the file; ERR_MEMMAP_UNSUPPORTED for anonymous memory, which has no file to follow.
   * @example
   * using log = mapFile('app.log');
   * // ... later, after the writer appended:
   * log.remap();
   */
  remap(options?: { length?: number }): void {
    const opts = validateOptions(options, 'options', ['length'] as const);
    const wanted = opts.length === undefined ? undefined : validateInteger(opts.length, 'options.length');
    if (this.#closed) throw closedError('remap');
    if (this.#anonymous || this.#handle === null) {
      throw new MemmapError('ERR_MEMMAP_UNSUPPORTED', 'remap: anonymous memory has no file to map again');
    }
    this.#refuseWhileLocked('remap');
    // Faults of the range about to go, not told yet: the listeners hear of them first.
    if (this.#listeners !== null) this.#report();
    const fd = addon.fd(this.#handle);
    const size = mappableSize(fd, this.path);
    const length = wanted ?? Math.max(size - this.offset, 0);
    if (this.offset + length > size) {
      throw new MemmapError(
        'ERR_MEMMAP_OUT_OF_RANGE',
        `remap: range [${this.offset}, ${this.offset + length}) lies past the end of ${this.path ?? 'the file'} (${size} bytes)`,
      );
    }
    const old = this.#handle;
    if (!roomForMapping()) throw systemError(-12, 'mmap', this.path, mapHint(-12, this.#flags, 0));
    const handle = addon.remapFile(
      old,
      this.offset - this.#delta,
      regionLength(this.#delta, length),
      ACCESS[this.mode],
      this.#flags,
    );
    if (typeof handle === 'number') throw systemError(handle, 'mmap', this.path, mapHint(handle, this.#flags, 0));
    this.#dropViews();
    this.#adopt(handle);
    this.#length = length;
    this.#fault = null;
    this.#first = null;
    for (const entry of this.#listeners ?? []) entry.seen = 0;
  }

  /**
   * Grows or shrinks the file to `offset + newLength` bytes (ftruncate) and the mapping with
   * it: data past the new end is gone, a grown part reads as zeros. Where nothing but the
   * mapping reaches its memory, the kernel resizes it in place or moves it (mremap); where a
   * Buffer or SharedArrayBuffer of it is alive, the file is mapped anew, the old Buffer is
   * detached and the old SharedArrayBuffer reads zeros. Either way, take `buffer` again after
   * a resize. The next flush() also makes the new size durable (fsync).
   * Growing reserves the new blocks (fallocate) unless the mapping was made `sparse`, so a full
   * file system answers ENOSPC here. All or nothing: a seal is checked first, a growth mremap
   * cannot do (after protect() split the range) maps anew, and a failed step is undone.
   * @throws ERR_MEMMAP_UNSUPPORTED for anonymous memory and for modes other than 'write' (the
   * file would not change); EPERM for a memory file sealed against it; ENOSPC (the file and the
   * mapping keep their size); the errors of every call on a closed or faulted mapping.
   * @example
   * // An append-only log: grow by a megabyte whenever it is full.
   * using log = mapFile('events.log', { mode: 'write', create: true, length: 1 << 20, grow: true });
   * let end = 0;
   * function append(record: Buffer) {
   *   if (end + record.length > log.length) log.resize(log.length + (1 << 20));
   *   record.copy(log.buffer, end);
   *   end += record.length;
   * }
   */
  resize(newLength: number): void {
    validateInteger(newLength, 'newLength', 0, Number.MAX_SAFE_INTEGER - this.offset);
    this.#check('resize');
    if (this.#anonymous || this.#handle === null) {
      throw new MemmapError(
        'ERR_MEMMAP_UNSUPPORTED',
        'resize: anonymous memory has no file to resize; map a new region and copy what you need',
      );
    }
    if (this.mode !== 'write') {
      throw new MemmapError(
        'ERR_MEMMAP_UNSUPPORTED',
        `resize: it changes the file, so it needs mode 'write' (this mapping is '${this.mode}'); remap() follows a file that another process resized`,
      );
    }
    this.#refuseWhileLocked('resize');
    const handle = this.#handle;
    const fd = addon.fd(handle);
    const size = this.offset + newLength;
    const before = mappableSize(fd, this.path);
    const growing = newLength > this.#length;
    // Whatever can refuse is asked before anything changes: a memory file sealed against the
    // change refuses the ftruncate, which for a shrink would come after the mapping shrank.
    const seals = addon.getSeals(fd);
    if (seals > 0 && seals & (size < before ? SEAL_SHRINK : size > before ? SEAL_GROW : 0)) {
      throw systemError(
        -1 /* EPERM */,
        'ftruncate',
        this.path,
        'the memory file is sealed against this change of size',
      );
    }
    const remapTo = (length: number): Handle | number =>
      addon.remapFile(
        this.#handle as Handle,
        this.offset - this.#delta,
        regionLength(this.#delta, length),
        ACCESS[this.mode],
        this.#flags,
      );
    // The file grows before the mapping and shrinks after it, so no page of the mapping ever
    // lies past the end of the file. A step that fails undoes the ones before it.
    if (growing) setFileSize(fd, before, size, this.#sparse, this.path);
    let rc = newLength > 0 ? addon.resizeRegion(handle, this.#delta + newLength) : -16;
    let call = 'mremap';
    // EBUSY: views of it are alive; EFAULT: protect() split the range into several kernel
    // mappings, which mremap cannot resize at once. Both: map the file anew instead.
    if (rc === -16 /* EBUSY */ || rc === -14 /* EFAULT */) {
      const fresh = roomForMapping() ? remapTo(newLength) : -12; /* ENOMEM */
      call = 'mmap';
      if (typeof fresh !== 'number') this.#adopt(fresh);
      rc = typeof fresh === 'number' ? fresh : 0;
    }
    if (rc < 0) {
      if (growing) addon.resizeFile(fd, before);
      throw systemError(rc, call, this.path, call === 'mmap' ? mapHint(rc, this.#flags, 0) : MMAP_HINTS[rc]);
    }
    this.#dropViews();
    const oldLength = this.#length;
    this.#length = newLength;
    if (!growing) {
      const cut = addon.resizeFile(fd, size);
      if (cut < 0) {
        // The mapping shrank but the file did not: map the old length again.
        const back = remapTo(oldLength);
        if (typeof back !== 'number') {
          this.#adopt(back);
          this.#length = oldLength;
        }
        throw systemError(cut, 'ftruncate', this.path);
      }
    }
    // flush() makes the new size durable along with the data.
    this.#grew = true;
  }

  /**
   * Unmaps now and closes the mapping's file descriptor. The Buffer handed out is detached
   * (reads give undefined, length 0); a SharedArrayBuffer reads zeros from now on. Calling it
   * again does nothing. A mapping never closed is released when it and every view of it have
   * been garbage collected.
   * @throws MemmapError ERR_MEMMAP_TRUNCATED if the mapping had faulted (everything is
   * released all the same).
   */
  close(): void {
    if (this.#closed) return;
    const faulted = this.#faultedSoFar();
    this.#closed = true;
    this.#dropViews();
    if (this.#handle === null) return;
    const handle = this.#handle;
    if (this.#listeners !== null) {
      this.#report(); // listeners' errors are thrown later, on their own: the close goes on
      this.#unwatch();
    }
    const rc = addon.close(handle);
    this.#handle = null;
    if (faulted) throw this.#faultError('close');
    if (rc < 0) throw systemError(rc, 'munmap', this.path);
  }

  /**
   * The lines of the mapping, or of a range of it, without copying the file: strings decoded
   * from the mapped bytes, or with `{ raw: true }` zero-copy Buffers. A line ends at `\n`
   * (a `\r` before it is dropped); the last line needs no newline. Iterate with `for...of`,
   * or `for await...of` to let the event loop run between batches. A `start` inside a line
   * skips to the next one, so ranges that tile the mapping see each line once (parallel
   * scans). Mappings larger than a Buffer are read in windows.
   * @throws ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE / ERR_OUT_OF_RANGE for bad options;
   * MemmapError ERR_MEMMAP_OUT_OF_RANGE (range outside the mapping, or a line longer than a
   * Buffer), ERR_MEMMAP_CLOSED, ERR_MEMMAP_TRUNCATED (also from the iterator, when the
   * mapping is closed or its file shrinks during the iteration).
   * @example
   * using log = mapFile('app.log');
   * let errors = 0;
   * for (const line of log.lines()) if (line.includes('ERROR')) errors++;
   */
  lines(options: LinesOptions & { raw: true }): MappingIterator<Buffer>;
  lines(options?: LinesOptions & { raw?: false }): MappingIterator<string>;
  lines(options?: LinesOptions): MappingIterator<string | Buffer>;
  lines(options?: LinesOptions): MappingIterator<string | Buffer> {
    return scanLines(this, options);
  }

  /**
   * Fixed-size records of the mapping as zero-copy Buffers of `size` bytes, at multiples of
   * `size` from the mapping's start (a `start` inside a record skips it). When the range is
   * not a whole number of records, the last one is shorter: check its length.
   * @throws as {@link Mapping.lines}.
   */
  records(size: number, options?: ScanRange): MappingIterator<Buffer> {
    return scanRecords(this, size, options);
  }

  /**
   * The pieces of the mapping between occurrences of `delimiter` (a string, encoded as
   * UTF-8, or bytes), as zero-copy Buffers without the delimiter. A delimiter at the very end
   * yields no empty last piece; `start` and `end` work as in {@link Mapping.lines}.
   * @throws as {@link Mapping.lines}; ERR_INVALID_ARG_VALUE for an empty delimiter.
   */
  split(delimiter: string | Uint8Array, options?: ScanRange): MappingIterator<Buffer> {
    return scanSplit(this, delimiter, options);
  }

  /**
   * A Readable over the mapping (or bytes `start` to `end`, inclusive as in
   * fs.createReadStream) whose chunks are subarrays of the mapped memory: no copy, so
   * `pipeline(m.createReadStream(), zlib.createGzip(), out)` reads the file once. The stream
   * does not close the mapping; closing the mapping (or the file shrinking) during the
   * stream destroys it with ERR_MEMMAP_CLOSED / ERR_MEMMAP_TRUNCATED.
   * @throws as {@link Mapping.lines}.
   */
  createReadStream(options?: ReadStreamOptions): Readable {
    return streamOf(this, options);
  }

  /**
   * @internal Throws what the next call would (closed, faulted), naming `what`; returns how
   * many times the views were dropped (close, remap, resize), so a scan knows to take new ones.
   */
  [kCheck](what: string): number {
    this.#check(what);
    return this.#viewsDropped;
  }

  /**
   * What `util.inspect` and `console.log` show: where the mapping comes from and its state,
   * never its bytes (a mapping may be gigabytes; a closed one has none).
   */
  [inspect.custom](depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    const state = {
      path: this.path,
      mode: this.mode,
      offset: this.offset,
      length: this.#length,
      closed: this.#closed,
      faulted: this.#closed ? this.#fault !== null : this.faulted,
    };
    if (depth < 0) return options.stylize(`[${this.constructor.name}]`, 'special');
    return `${this.constructor.name} ${show(state, { ...options, depth: options.depth === null ? null : (options.depth ?? 2) - 1 })}`;
  }

  /** @internal */
  [kFd](): number {
    return this.#handle === null ? -1 : addon.fd(this.#handle);
  }

  /** Same as {@link Mapping.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Makes `fresh` (a region mapped anew) the mapping's own. The native side closed the old
   * region; its range stays a stand-in until the views of it are collected.
   */
  #adopt(fresh: Handle): void {
    this.#handle = fresh;
    this.#epoch = faultEpoch();
  }

  #dropViews(): void {
    this.#viewsDropped++;
    if (this.#arrayBuffer !== null) addon.detach(this.#arrayBuffer);
    this.#arrayBuffer = null;
    this.#buffer = null;
    this.#shared = null;
  }

  /**
   * remap() and resize() map the file anew, so a Mutex this thread holds in the range would
   * have its record move from under the thread's robust list: refused until it is unlocked.
   */
  #refuseWhileLocked(call: string): void {
    if (this.#handle !== null && addon.lockHeldIn(this.#handle)) {
      throw new MemmapError(
        'ERR_MEMMAP_BUSY',
        `${call}: this thread holds a Mutex in the mapping; unlock it first (the lock's record would move with the memory), then attach the Mutex again over the new mapping`,
      );
    }
  }

  #check(what: string): void {
    if (this.#closed) throw closedError(what);
    if (this.#faultedSoFar()) throw this.#faultError(what);
  }

  #faultError(what: string): MemmapError {
    if (this.#first === null && this.#handle !== null) this.#first = addon.faultFirst(this.#handle) ?? null;
    const first = this.#first === null ? undefined : describeFault(this.#first, this.#delta, this.mode);
    return this.#fault === 'protection'
      ? protectionError(what, this.path, first)
      : truncatedError(what, this.path, first);
  }

  /** Turns a flush's result into an error, if it is one. */
  /**
   * Turns a flush's result into an error, if it is one. `end` is where the flushed range
   * ends, relative to the region. A range that now reaches past the end of the file is
   * reported too: bytes written there (into the last page, which stays mapped) were written
   * to no file, and msync cannot say so.
   */
  #settle(rc: number, what: string, end: number, durable: boolean): void {
    if (this.faulted) throw this.#faultError(what);
    if (rc < 0) throw systemError(rc, 'msync', this.path);
    if (!this.#anonymous && this.#handle !== null) {
      const info = addon.fileInfo(addon.fd(this.#handle));
      if (typeof info === 'number') throw systemError(info, 'fstat', this.path);
      if (info[1] < this.offset - this.#delta + end) {
        this.#fault = 'truncated';
        throw truncatedError(what, this.path);
      }
    }
    if (durable) this.#grew = false;
  }

  /**
   * Validates a range of this mapping (and that `options` has no keys but the range's and
   * `extra`) and returns it page-aligned, relative to the region.
   */
  #range(options: unknown, what: string, extra: readonly string[] = []): [number, number] {
    const opts = validateOptions(options, 'options', [...RANGE_OPTIONS, ...extra]) as RangeOptions;
    const offset = opts.offset === undefined ? 0 : validateInteger(opts.offset, 'options.offset');
    const end = opts.length === undefined ? this.#length : offset + validateInteger(opts.length, 'options.length');
    this.#check(what);
    if (offset > this.#length || end > this.#length) {
      throw new MemmapError(
        'ERR_MEMMAP_OUT_OF_RANGE',
        `${what}: range [${offset}, ${end}) lies outside the mapping of ${this.#length} bytes`,
      );
    }
    const start = this.#delta + offset;
    const aligned = start - (start % pageSize);
    return [aligned, end === offset ? 0 : this.#delta + end - aligned];
  }
}

/**
 * @internal The most pages one residency() or fileResidency() call answers for: its map is
 * one byte a page, and 2^26 of them (64 MiB, for 256 GiB of 4 KiB pages) is already more than
 * a caller wants at once. Beyond 2^32 a typed array cannot be made at all.
 */
export const RESIDENCY_MAX_PAGES = 2 ** 26;

/** @internal Refuses a residency query over more than RESIDENCY_MAX_PAGES pages. */
export function checkResidencyPages(what: string, length: number, whole: number): void {
  const pages = Math.ceil(length / pageSize);
  if (pages <= RESIDENCY_MAX_PAGES) return;
  const window = RESIDENCY_MAX_PAGES * pageSize;
  throw new MemmapError(
    'ERR_MEMMAP_OUT_OF_RANGE',
    `${what}: the range has ${pages} pages and one call answers for at most ${RESIDENCY_MAX_PAGES} (${window} bytes); ask in windows: { offset: k * ${window}, length: ${window} } for k = 0 to ${Math.ceil(whole / window) - 1}`,
  );
}

/** @internal A residency answer from the addon's page map. */
export function residencyOf(map: Uint8Array): Residency {
  let resident = 0;
  for (let i = 0; i < map.length; i++) resident += map[i] as number;
  return { pageSize, pages: map.length, resident, map };
}

/**
 * The guard's epoch word (native guard.h): it grows by one after every fault the guard
 * absorbs anywhere in the process, so a mapping asks about itself only when it changed. Read
 * through a view of the native word where the runtime hands one out that is really that word
 * (checked with a probe at load); elsewhere every read asks the addon.
 */
const epochView: Uint32Array | null = (() => {
  const buffer = addon.faultEpoch();
  if (buffer === undefined) return null;
  const view = new Uint32Array(buffer);
  addon.probeEpoch(0x5eed);
  const live = view[1] === 0x5eed;
  addon.probeEpoch(0);
  return live && view[1] === 0 ? view : null;
})();

/** The epoch now, or NaN where it cannot be read cheaply (every check then asks). */
function faultEpoch(): number {
  return epochView === null ? Number.NaN : (epochView[0] as number);
}

// libuv installs a handler of its own for a JavaScript listener of SIGBUS or SIGSEGV, which
// would take the guard's place, and sets the default action back when the last listener
// goes, which would remove the guard. Node starts and stops listening in 'newListener' and
// 'removeListener' listeners of its own, registered before any module loads, so by the time
// these run libuv has done its part, and the guard goes back in front, chaining to libuv's
// handler for faults that are not memmap's.
function reinstallGuard(event: string | symbol): void {
  if (event === 'SIGBUS' || event === 'SIGSEGV') addon.guardInstall();
}
process.on('newListener', reinstallGuard);
process.on('removeListener', reinstallGuard);

/**
 * Bytes to map for `length` bytes starting `delta` bytes into a page. An empty range still
 * maps one page, so that the mapping keeps its file open for remap().
 */
function regionLength(delta: number, length: number): number {
  return length === 0 ? pageSize : delta + length;
}

/**
 * Resolves the file argument to a descriptor this call owns, and the path for messages.
 * memmap opens files itself (native openFile) rather than through fs: the descriptor must be
 * the process's own, and some runtimes' fs hands out resource ids instead.
 */
/** @internal Opens what mapFile accepts; the descriptor returned is the caller's to close. */
export function openTarget(target: unknown, mode: MapMode, create: boolean): { fd: number; path: string | null } {
  if (typeof target === 'number') {
    validateInteger(target, 'file', 0, 0x7fffffff);
    // A duplicate, so that the mapping's lifetime does not depend on the caller's descriptor.
    const fd = addon.dupFd(target);
    if (fd < 0) throw systemError(fd, 'dup');
    return { fd, path: null };
  }
  if (isFileHandle(target)) {
    if (target.fd < 0) throw systemError(-9 /* EBADF */, 'dup');
    return openTarget(target.fd, mode, create);
  }
  let path: string;
  if (typeof target === 'string') path = target;
  else if (target instanceof URL) path = fileURLToPath(target);
  else throw invalidArgType('file', 'a path string, a file: URL, a file descriptor or a FileHandle', target);
  if (path.includes('\0')) throw invalidArgValue('file', path, 'must be a string without null bytes');
  const fd = addon.openFile(path, mode === 'write', create);
  if (fd < 0) throw systemError(fd, 'open', path, OPEN_HINTS[fd]);
  return { fd, path };
}

function isFileHandle(value: unknown): value is FileHandle {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as FileHandle).fd === 'number' &&
    typeof (value as FileHandle).readFile === 'function'
  );
}

/** @internal The size of the open file, after checking that it can be mapped. */
export function mappableSize(fd: number, path: string | null): number {
  const info = addon.fileInfo(fd);
  if (typeof info === 'number') throw systemError(info, 'fstat', path);
  const [kind, size] = info;
  if (kind === FileKind.Directory) throw systemError(-21 /* EISDIR */, 'mmap', path, 'a directory cannot be mapped');
  if (kind !== FileKind.Regular) {
    throw systemError(
      -19 /* ENODEV */,
      'mmap',
      path,
      'only regular files can be mapped, not FIFOs, sockets or devices',
    );
  }
  return size;
}

const SEAL_SHRINK = 2;
const SEAL_GROW = 4;

/**
 * @internal Sets the size of a file of `size` bytes to `newSize`. Growth reserves the new
 * blocks (fallocate) unless `sparse`, so a full file system answers ENOSPC now rather than at
 * a write through the mapping; where the file system cannot reserve ahead (EOPNOTSUPP) the
 * file grows sparsely. A failed reservation sets the size back (it may have grown part-way).
 */
export function setFileSize(fd: number, size: number, newSize: number, sparse: boolean, path: string | null): void {
  if (!sparse && newSize > size) {
    const rc = addon.reserveFile(fd, size, newSize);
    if (rc === 0) return;
    if (rc !== -95 /* EOPNOTSUPP */) {
      addon.resizeFile(fd, size);
      throw systemError(rc, 'fallocate', path, rc === -28 /* ENOSPC */ ? NO_SPACE_HINT : undefined);
    }
  }
  const rc = addon.resizeFile(fd, newSize);
  if (rc < 0) throw systemError(rc, 'ftruncate', path);
}

const NO_SPACE_HINT =
  'the file system has no room for the new size; the file keeps its size. Free some space, or map with sparse: true to grow it without reserving blocks (writes into it may then fault later)';

const DESCRIPTORS_HINT =
  'close() mappings you no longer need: each keeps a file descriptor, and a forgotten one keeps it until it is garbage collected';
const OPEN_HINTS: Record<number, string> = {
  [-24 /* EMFILE */]: DESCRIPTORS_HINT,
  [-23 /* ENFILE */]: DESCRIPTORS_HINT,
};

const HUGE_PAGES = ['2MB', '1GB'] as const;

/**
 * A bit mask of NUMA node ids, each checked against the nodes this machine has. A node named
 * twice is one bit: the bits are or-ed (added only once each), never summed into the next.
 */
function nodeMask(nodes: unknown, name: string): number {
  if (!Array.isArray(nodes) || nodes.length === 0) throw invalidArgType(name, 'a non-empty array of node ids', nodes);
  const known = numaNodes().map((node) => node.id);
  const seen = new Set<number>();
  let mask = 0;
  for (const [i, node] of nodes.entries()) {
    validateInteger(node, `${name}[${i}]`, 0, 52);
    if (!known.includes(node)) {
      throw invalidArgValue(
        `${name}[${i}]`,
        node,
        `is not a NUMA node of this machine, which has ${known.map((n) => `node ${n}`).join(', ')}`,
      );
    }
    // Node ids reach 52, past the 32 bits of JavaScript's | operator: add each bit once.
    if (!seen.has(node)) mask += 2 ** node;
    seen.add(node);
  }
  return mask;
}

/** Checks a placement hint: a positive, page-aligned address; 0 when there is none. */
function validateHint(hint: unknown): number {
  if (hint === undefined) return 0;
  const value = typeof hint === 'bigint' ? Number(hint) : hint;
  if (typeof value !== 'number') throw invalidArgType('options.hint', 'a number or a bigint', hint);
  validateInteger(value, 'options.hint', 1);
  if (value % pageSize !== 0)
    throw invalidArgValue('options.hint', hint, `must be a multiple of the page size (${pageSize})`);
  return value;
}

/** A count from /proc or /sys, or '?' when it cannot be read. */
function readCount(path: string, pattern?: RegExp): string {
  try {
    const text = readFileSync(path, 'utf8');
    return pattern ? (pattern.exec(text)?.[1] ?? '?') : text.trim();
  } catch {
    return '?';
  }
}

/** The sentence a failed mmap appends, given what was asked of it. */
function mapHint(errno: number, flags: number, hint: number): string | undefined {
  if (hint !== 0 && errno === -17 /* EEXIST */) {
    return `the range at 0x${hint.toString(16)} is taken; memmap never replaces an existing mapping (it does not use MAP_FIXED): leave out hint, or choose a free range`;
  }
  if (flags & (FLAG_HUGE_2M | FLAG_HUGE_1G) && (errno === -12 /* ENOMEM */ || errno === -22) /* EINVAL */) {
    if (flags & FLAG_HUGE_1G) {
      const dir = '/sys/kernel/mm/hugepages/hugepages-1048576kB';
      return `not enough free 1 GB huge pages (free now: ${readCount(`${dir}/free_hugepages`)}); reserve some as root with \`echo 4 > ${dir}/nr_hugepages\` (best at boot: hugepagesz=1G hugepages=4), or use transparentHugePages`;
    }
    return `not enough free 2 MB huge pages (HugePages_Free: ${readCount('/proc/meminfo', /^HugePages_Free:\s+(\d+)/m)}); reserve some as root with \`echo 512 > /proc/sys/vm/nr_hugepages\` (sysctl vm.nr_hugepages), or use transparentHugePages, which needs no reservation`;
  }
  if (flags & FLAG_SYNC && (errno === -95 /* EOPNOTSUPP */ || errno === -22) /* EINVAL */) {
    return 'syncMapping (MAP_SYNC) needs a file on a DAX file system (persistent memory mounted with -o dax); this file goes through the page cache: use flush() for durability';
  }
  if (errno === -12 /* ENOMEM */) {
    const refusal = mappingCountRefusal();
    if (refusal !== null) {
      return `the process holds ${refusal.mappings} kernel mappings of the ${refusal.cap} that vm.max_map_count allows, and memmap keeps the rest for V8 and threads (at that cap the process would end); ${refusal.standing} of memmap's are stand-ins for closed mappings whose Buffers or SharedArrayBuffers are not yet collected (code may still hold their address): let the event loop turn between large batches of mapFile and close, read through sharedBuffer(), keep fewer mappings open, or raise vm.max_map_count`;
    }
    const standing = addon.regionCounts()[2];
    if (standing > 0) {
      return `${MMAP_HINTS[errno]}; ${standing} bytes of closed mappings stay reserved while Buffers or SharedArrayBuffers of them are alive (code may still hold their address): drop those views and let the garbage collector run (let the event loop turn) between large batches of mapFile and close`;
    }
  }
  return MMAP_HINTS[errno];
}

const MMAP_HINTS: Record<number, string> = {
  [-13 /* EACCES */]:
    "the file descriptor does not allow this mode: 'write' needs it opened for reading and writing, 'read' and 'copy' for reading",
  [-19 /* ENODEV */]: 'this file system does not support memory mapping',
  [-12 /* ENOMEM */]: 'out of address space, or the process reached vm.max_map_count mappings',
  [-1 /* EPERM */]: 'the file is sealed against this kind of mapping, or its file system is mounted noexec',
};

/**
 * Maps a file, or part of one, into memory.
 *
 * The mapping starts at any byte `offset` (memmap maps from the page below and hands out
 * exactly the bytes asked for) and is `length` bytes long, by default to the end of the file.
 * A range past the end of the file is refused unless `grow` extends the file. An empty range
 * (an empty file, or `length: 0`) gives an empty mapping, not an error.
 *
 * Safety: if another process truncates the file, pages past its new end cannot be read; keep
 * files you map from shrinking while they are mapped.
 *
 * @throws TypeError ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE, RangeError ERR_OUT_OF_RANGE
 * for bad arguments; a SystemError (ENOENT, EACCES, EISDIR, ENODEV, EBADF, ...) when the file
 * cannot be opened or mapped; MemmapError ERR_MEMMAP_OUT_OF_RANGE when the range lies past
 * the end of the file.
 * @example
 * using m = mapFile('data.bin');
 * console.log(m.buffer.readUInt32LE(0));
 */
export function mapFile(file: FileTarget, options?: MapFileOptions): Mapping {
  const opts = validateOptions(options, 'options', FILE_OPTIONS, FILE_OPTIONS_MEANT);
  const mode = opts.mode === undefined ? 'read' : validateOneOf(opts.mode, 'options.mode', MODES);
  const offset = opts.offset === undefined ? 0 : validateInteger(opts.offset, 'options.offset');
  const wanted = opts.length === undefined ? undefined : validateInteger(opts.length, 'options.length');
  const grow = opts.grow === undefined ? false : validateBoolean(opts.grow, 'options.grow');
  const create = opts.create === undefined ? false : validateBoolean(opts.create, 'options.create');
  const sparse = opts.sparse === undefined ? false : validateBoolean(opts.sparse, 'options.sparse');
  const populate = opts.populate === undefined ? false : validateBoolean(opts.populate, 'options.populate');
  const advice = opts.advice === undefined ? undefined : validateOneOf(opts.advice, 'options.advice', ACCESS_ADVICES);
  if ((grow || create) && mode !== 'write') {
    throw invalidArgValue(grow ? 'options.grow' : 'options.create', true, "needs mode 'write'");
  }
  const noReserve = opts.noReserve === undefined ? false : validateBoolean(opts.noReserve, 'options.noReserve');
  const syncMapping = opts.syncMapping === undefined ? false : validateBoolean(opts.syncMapping, 'options.syncMapping');
  if (syncMapping && mode !== 'write') throw invalidArgValue('options.syncMapping', true, "needs mode 'write'");
  const hint = validateHint(opts.hint);
  const flags = (noReserve ? FLAG_NO_RESERVE : 0) | (syncMapping ? FLAG_SYNC : 0);
  if (wanted !== undefined && offset + wanted > Number.MAX_SAFE_INTEGER) {
    throw new RangeError('options.offset + options.length exceeds 2^53 - 1');
  }

  const { fd, path } = openTarget(file, mode, create);
  return new Mapping(
    kCreate,
    mapDescriptor(fd, path, { mode, offset, wanted, grow, populate, advice, flags, hint, sparse }),
  );
}

/** @internal What mapDescriptor needs beyond the descriptor; already validated. */
export interface DescriptorOptions {
  mode: MapMode;
  offset: number;
  /** Bytes to map; default to the end of the file. */
  wanted: number | undefined;
  grow: boolean;
  populate: boolean;
  advice: AccessAdvice | undefined;
  /** FLAG_NO_RESERVE, FLAG_SYNC. */
  flags?: number;
  /** Where the region must start, or 0. */
  hint?: number;
  /** Grow without reserving blocks. */
  sparse?: boolean;
}

/**
 * @internal Maps an open file descriptor this call owns: the region takes it on success, and it
 * is closed on failure. Shared by mapFile and SharedMemory.
 */
export function mapDescriptor(fd: number, path: string | null, options: DescriptorOptions): Parts {
  const { mode, offset, wanted, grow, populate, advice, flags = 0, hint = 0, sparse = false } = options;
  let owned = true;
  try {
    const size = mappableSize(fd, path);
    const length = wanted ?? Math.max(size - offset, 0);
    const end = offset + length;
    let grew = false;
    // Before the file grows: a refusal leaves the file as it was.
    if (!roomForMapping()) throw systemError(-12, 'mmap', path, mapHint(-12, flags, hint));
    if (end > size || offset > size) {
      if (!grow) {
        throw new MemmapError(
          'ERR_MEMMAP_OUT_OF_RANGE',
          `mapFile: range [${offset}, ${end}) lies past the end of ${path ?? 'the file'} (${size} bytes); pass grow: true to extend the file`,
        );
      }
      setFileSize(fd, size, end, sparse, path);
      grew = true;
    }
    const delta = offset % pageSize;
    const handle = addon.mapFile(
      fd,
      offset - delta,
      regionLength(delta, length),
      ACCESS[mode],
      flags | (populate && length > 0 ? FLAG_POPULATE : 0),
      hint,
    );
    if (typeof handle === 'number') throw systemError(handle, 'mmap', path, mapHint(handle, flags, hint));
    owned = false; // the region owns fd now and closes it when it is released
    if (advice !== undefined && length > 0) {
      const rc = addon.advise(handle, 0, delta + length, ADVICE[advice]);
      if (rc < 0) {
        addon.close(handle);
        throw systemError(rc, 'madvise', path);
      }
    }
    const mapped = flags | (populate ? FLAG_POPULATE : 0);
    return { handle, delta, length, offset, mode, path, grew, anonymous: false, sparse, flags: mapped };
  } finally {
    if (owned) addon.closeFd(fd);
  }
}

/**
 * Maps `length` bytes of zero-filled memory that belongs to no file. Shared memory
 * (`shared: true`) is shared with forked children; to share memory with unrelated processes
 * use a named or memfd shared memory object.
 *
 * @throws RangeError ERR_OUT_OF_RANGE if length is not a positive integer; ENOMEM when the
 * memory cannot be reserved.
 * @example
 * using scratch = mapAnonymous(1 << 20);
 * scratch.buffer.fill(7);
 */
export function mapAnonymous(length: number, options?: MapAnonymousOptions): Mapping {
  validateInteger(length, 'length', 1);
  const opts = validateOptions(options, 'options', ANON_OPTIONS);
  const shared = opts.shared === undefined ? false : validateBoolean(opts.shared, 'options.shared');
  const populate = opts.populate === undefined ? false : validateBoolean(opts.populate, 'options.populate');
  const noReserve = opts.noReserve === undefined ? false : validateBoolean(opts.noReserve, 'options.noReserve');
  const huge =
    opts.hugePages === undefined ? undefined : validateOneOf(opts.hugePages, 'options.hugePages', HUGE_PAGES);
  const thp =
    opts.transparentHugePages === undefined
      ? false
      : validateBoolean(opts.transparentHugePages, 'options.transparentHugePages');
  if (huge !== undefined && thp) {
    throw invalidArgValue(
      'options.transparentHugePages',
      true,
      'cannot be combined with hugePages: choose reserved huge pages (hugePages) or transparent ones',
    );
  }
  const hint = validateHint(opts.hint);
  const flags =
    (populate ? FLAG_POPULATE : 0) |
    (noReserve ? FLAG_NO_RESERVE : 0) |
    (huge === '2MB' ? FLAG_HUGE_2M : huge === '1GB' ? FLAG_HUGE_1G : 0) |
    (thp ? FLAG_ALIGN_HUGE : 0);
  if (!roomForMapping()) throw systemError(-12, 'mmap', null, mapHint(-12, flags, hint));
  const handle = addon.mapAnonymous(length, shared, flags, hint);
  if (typeof handle === 'number') throw systemError(handle, 'mmap', null, mapHint(handle, flags, hint));
  if (thp) {
    const rc = addon.advise(handle, 0, length, ADVICE.hugepage);
    if (rc < 0) {
      addon.close(handle);
      throw systemError(rc, 'madvise', null, adviceHint('hugepage', rc));
    }
  }
  return new Mapping(kCreate, {
    handle,
    delta: 0,
    length,
    offset: 0,
    mode: shared ? 'write' : 'copy',
    path: null,
    grew: false,
    anonymous: true,
    flags,
  });
}
