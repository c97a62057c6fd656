/**
 * Loads the addon and types its raw surface. Nothing else imports a .node file.
 *
 * The core addon (native/napi, native/os) is pure Node-API and loads wherever Node-API does.
 * SharedArrayBuffers over external memory need more than stable Node-API offers, so they are
 * made by the first of these that the running runtime has:
 * 1. Node-API's `node_api_create_external_sharedarraybuffer` (Node 24.16+, 26.1+), which the
 *    core looks up at run time;
 * 2. the V8-API helper addon (native/v8/sab.cc), built beside the core and loaded on first use,
 *    only on Node itself;
 * 3. nothing: ERR_MEMMAP_UNSUPPORTED naming the runtime.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemmapError } from './errors.js';

/** An opaque reference to a mapped region, owned by the addon. */
export type Handle = { readonly __memmapHandle: unique symbol };

/** An opaque reference to a Mutex's lock word (native/napi/lock.cc). */
export type LockHandle = { readonly __memmapLock: unique symbol };

/** An opaque reference to an open named semaphore, owned by the addon. */
export type SemHandle = { readonly __memmapSemaphore: unique symbol };

/** A handle on success, a negative errno on failure. */
type Result<T> = T | number;

export interface Addon {
  readonly pageSize: number;
  mapFile(fd: number, offset: number, length: number, access: number, flags: number, hint: number): Result<Handle>;
  mapAnonymous(length: number, shared: boolean, flags: number, hint: number): Result<Handle>;
  resizeRegion(handle: Handle, length: number): number;
  remapFile(handle: Handle, offset: number, length: number, access: number, flags: number): Result<Handle>;
  /** 0: no fault absorbed; 1: a file that shrank (SIGBUS); 2: a protection fault (SIGSEGV). */
  faultKind(handle: Handle): 0 | 1 | 2;
  /** The guard's epoch word and a probe word, or undefined where external memory is refused. */
  faultEpoch(): ArrayBuffer | undefined;
  probeEpoch(value: number): void;
  /** Puts the guard's signal handlers back in front if something replaced them. */
  guardInstall(): number;
  /**
   * [regions alive, bytes mapped, bytes of those that are stand-ins under views of closed
   * ranges, how many stand-ins, regions and stand-ins made and stand-ins unmapped ever].
   */
  regionCounts(): [number, number, number, number, number];
  /** [kind bits, region offset, time in ms, faults so far] of a region's first fault, or undefined. */
  faultFirst(handle: Handle): [number, number, number, number] | undefined;
  /** Has the guard wake this thread's event loop and call `callback` after faults; false if it cannot. */
  faultNotify(callback: () => void): boolean;
  /** The process's kernel mappings (what vm.max_map_count caps), or -errno. */
  mappingCount(): number;
  /** How many kernel mappings unmapping gone stand-ins from the middle of a run may add. */
  setSplitRoom(room: number): void;
  lockHeldIn(handle: Handle): boolean;
  violationsAbsorbed(): number;
  protect(handle: Handle, start: number, length: number, protection: number): number;
  faultsAbsorbed(): number;
  fd(handle: Handle): number;
  view(handle: Handle, start: number, length: number): ArrayBuffer;
  detach(buffer: ArrayBuffer): void;
  sharedView(handle: Handle, start: number, length: number): SharedArrayBuffer | undefined;
  sharedViewParts(handle: Handle, start: number, length: number): [bigint, bigint, bigint];
  releaseSharedViewParts(handle: Handle): void;
  close(handle: Handle): number;
  flush(handle: Handle, start: number, length: number, syncFile: boolean, how: number): number;
  flushAsync(handle: Handle, start: number, length: number, syncFile: boolean, how: number): Promise<number>;
  advise(handle: Handle, start: number, length: number, advice: number): number;
  byteSum(bytes: Uint8Array): bigint;
  openFile(path: string, write: boolean, create: boolean): number;
  fileInfo(
    fd: number,
  ): Result<[kind: FileKind, size: number, mode: number, uid: number, gid: number, device: bigint, inode: bigint]>;
  openShared(name: string, write: boolean, create: boolean, exclusive: boolean, mode: number): number;
  openPath(path: string): number;
  changeMode(fd: number, mode: number): number;
  unlinkShared(name: string): number;
  createMemoryFile(debugName: string): number;
  addSeals(fd: number, seals: number): number;
  getSeals(fd: number): number;
  resizeFile(fd: number, size: number): number;
  reserveFile(fd: number, size: number, newSize: number): number;
  closeFd(fd: number): number;
  dupFd(fd: number): number;
  waiterInit(dispatch: (id: number, status: number) => void): void;
  futexWait(array: Int32Array, index: number, expected: number, timeoutNs: number): number;
  futexWake(array: Int32Array, index: number, count: number): number;
  futexWaitAsync(array: Int32Array, index: number, expected: number, timeoutNs: number, id: number): number;
  futexCancel(id: number): number;
  waiterThreads(): number;
  threadIds(): [pid: number, tid: number];
  /** 0, or -EINVAL (the record is not 8-aligned in memory), or why this thread cannot lock (-ENOTSUP, -ERANGE, -errno). */
  lockCheck(record: Int32Array): number;
  /** The handle of a checked record (lockCheck answered 0), which the calls below take. */
  lockRecord(record: Int32Array): LockHandle;
  /** 0 acquired, 1 taken over from a dead owner, 2 busy, or -errno (-EDEADLK: this thread holds it). */
  lockTry(record: LockHandle, waited: boolean): number;
  /** lockTry, sleeping up to timeoutNs (< 0: no limit); -ETIMEDOUT. */
  lockWait(record: LockHandle, timeoutNs: number): number;
  lockWaitEnd(): void;
  /** 0, or -EPERM when this thread does not hold it. */
  lockRelease(record: LockHandle): number;
  lockHeld(record: LockHandle): boolean;
  lockAddress(record: LockHandle): number;
  /** Tests only: SIGSTOP the process at step `step` of lock or unlock (0: never). */
  lockTestStop(step: number): void;
  bindRange(handle: Handle, start: number, length: number, policy: number, nodeMask: number, move: boolean): number;
  lockRange(handle: Handle, start: number, length: number, onFault: boolean): number;
  unlockRange(handle: Handle, start: number, length: number): number;
  residency(handle: Handle, start: number, length: number): Uint8Array | number;
  fileResidency(fd: number, offset: number, length: number): Uint8Array | number;
  prefetchFile(fd: number, offset: number, length: number): number;
  evictFile(fd: number, offset: number, length: number): number;
  memlockLimit(): [soft: number, hard: number] | number;
  regionAddress(handle: Handle): bigint;
  semOpen(name: string, create: boolean, exclusive: boolean, mode: number, value: number): Result<SemHandle>;
  semClose(handle: SemHandle): number;
  semUnlink(name: string): number;
  semPost(handle: SemHandle): number;
  semWait(handle: SemHandle, timeoutNs: number): number;
  semTryWait(handle: SemHandle): number;
  semValue(handle: SemHandle): number;
  semState(handle: SemHandle): ArrayBuffer | null | number;
  semSize(): number;
}

/** What fileInfo reports a descriptor refers to. */
export enum FileKind {
  Regular = 0,
  Directory = 1,
  Other = 2,
  Symlink = 3,
}

interface SabHelper {
  create(address: bigint, length: number, deleter: bigint, hint: bigint): SharedArrayBuffer;
  collect(): void;
}

/** The package root: dist/src/native.js sits two folders below it. */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;

export const addon = nodeGypBuild(root) as Addon;

/** The name of the JavaScript runtime, for messages. */
export function runtimeName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun) return `Bun ${versions.bun}`;
  if (versions.deno) return `Deno ${versions.deno}`;
  return `Node.js ${process.versions.node}`;
}

let helper: SabHelper | null | undefined;

function loadHelper(): SabHelper | null {
  if (helper !== undefined) return helper;
  helper = null;
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun || versions.deno) return helper;
  for (const build of ['Release', 'Debug']) {
    const file = join(root, 'build', build, 'memmap_sab.v8addon');
    if (!existsSync(file)) continue;
    const module = { exports: {} as SabHelper };
    process.dlopen(module, file);
    helper = module.exports;
    break;
  }
  return helper;
}

/**
 * Address space that closed mappings may keep reserved (zero-page stand-ins under views not yet
 * collected) before a new mapping first asks for a full collection (where memmap's V8 helper
 * loads: Node 20 to 26, not Bun or Deno), and the amount past which it is refused with ENOMEM. A
 * synchronous loop that maps, views and closes large files never lets Node-API finalizers run,
 * and V8 sees no memory pressure from mapped memory: without a limit the stand-ins would take
 * the whole address space, and V8's own next allocation would end the process.
 */
export const STANDING_COLLECT = 2 ** 43; // 8 TiB
export const STANDING_LIMIT = 2 ** 45; // 32 TiB

/**
 * Before a new mapping: whether the stand-ins of closed mappings leave room for it. Asks for a
 * collection when they hold more than STANDING_COLLECT; returns false when they still hold
 * more than STANDING_LIMIT (the caller refuses the mapping with ENOMEM).
 */
export function roomForMapping(): boolean {
  mappingRefusal = null;
  return roomInAddressSpace() && roomInMappingCount();
}

function roomInAddressSpace(): boolean {
  let standing = addon.regionCounts()[2];
  // The lowest figure seen since the last collection: views freed meanwhile count as freed.
  standingAfterCollect = Math.min(standingAfterCollect, standing);
  if (standing <= STANDING_COLLECT) return true;
  // Again only once another eighth of the limit stands: views that are still reachable keep
  // their stand-ins through any collection, and a full one per mapping would be paid for nothing.
  if (standing > standingAfterCollect + STANDING_LIMIT / 8) {
    const v8 = loadHelperQuietly();
    if (v8 !== null && typeof v8.collect === 'function') {
      v8.collect();
      standing = addon.regionCounts()[2];
    }
    standingAfterCollect = standing;
  }
  return standing <= STANDING_LIMIT;
}

let standingAfterCollect = 0;

/**
 * Kernel mappings that memmap leaves to everything else in the process when it decides whether
 * a new mapping may be made: an eighth of vm.max_map_count, or this many if that is more (up to
 * half the cap). At the cap mmap itself still succeeds, and the next thing to fail is V8
 * growing its heap or a thread mapping its stack, which ends the process.
 */
export const MAPPING_RESERVE = 4096;

/** Region events (see regionCounts) after which the mapping count is read again. */
let nextMappingCheck = 0;
/** Region events when the last refusal asked for a collection. */
let collectedAt = -1;
/** Why the last check refused, for the message of ENOMEM; null while there is room. */
let mappingRefusal: { mappings: number; cap: number; standing: number } | null = null;

function mapCountCap(): number {
  try {
    const cap = Number.parseInt(readFileSync('/proc/sys/vm/max_map_count', 'utf8'), 10);
    return Number.isSafeInteger(cap) && cap > 0 ? cap : 65530;
  } catch {
    return 65530;
  }
}

/**
 * Whether the process has kernel mappings to spare for one more. Closed ranges under views that
 * are not yet collected keep a stand-in each, and where the kernel cannot merge neighbouring
 * stand-ins, a synchronous loop that maps, views and closes would otherwise reach
 * vm.max_map_count, where V8's next allocation ends the process. Reading /proc/self/maps costs
 * milliseconds when it is long, so it is read again only after a quarter of the room left at
 * the last reading in region events: each event (a mapping made or unmapped, a stand-in made or
 * gone, a protect, advise, lock or bind of part of a range) adds at most two kernel mappings.
 * The same quarter is what the native side may spend on splitting merged stand-ins when their
 * views go in the middle of a run (beyond it, it holds them until their neighbours go).
 */
function roomInMappingCount(): boolean {
  const events = addon.regionCounts()[4];
  if (events < nextMappingCheck) return true;
  let mappings = addon.mappingCount();
  if (mappings < 0) {
    // ENOSYS: no such cap here; ENOENT, EACCES: no /proc to read it from. Anything else (a
    // passing EMFILE) is tried again later.
    const never = mappings === -38 || mappings === -2 || mappings === -13;
    nextMappingCheck = never ? Number.POSITIVE_INFINITY : events + 1024;
    return true;
  }
  const cap = mapCountCap();
  const limit = cap - Math.max(Math.floor(cap / 8), Math.min(MAPPING_RESERVE, Math.floor(cap / 2)));
  if (mappings >= limit && collectedAt !== events) {
    // Stand-ins of SharedArrayBuffers nothing reaches go at a collection; Buffers' only at the
    // next turn of the event loop. Once per refusal, not at every refused request.
    collectedAt = events;
    const v8 = loadHelperQuietly();
    if (v8 !== null && typeof v8.collect === 'function') {
      v8.collect();
      mappings = addon.mappingCount();
    }
  }
  const counts = addon.regionCounts();
  const quarter = Math.max(0, Math.floor((limit - mappings) / 4));
  addon.setSplitRoom(quarter);
  if (mappings >= limit) {
    mappingRefusal = { mappings, cap, standing: counts[3] };
    nextMappingCheck = counts[4]; // read again at the next request
    return false;
  }
  nextMappingCheck = counts[4] + Math.max(1, quarter);
  return true;
}

/** Why roomForMapping() last refused for want of kernel mappings, or null. */
export function mappingCountRefusal(): { mappings: number; cap: number; standing: number } | null {
  return mappingRefusal;
}

function loadHelperQuietly(): SabHelper | null {
  try {
    return loadHelper();
  } catch {
    // A helper that does not load (built for another Node) only means no collection here.
    return null;
  }
}

/** A SharedArrayBuffer over [start, start + length) of a region. */
export function createSharedArrayBuffer(handle: Handle, start: number, length: number): SharedArrayBuffer {
  const direct = addon.sharedView(handle, start, length);
  if (direct !== undefined) return direct;
  const v8 = loadHelper();
  if (v8 === null) {
    throw new MemmapError(
      'ERR_MEMMAP_UNSUPPORTED',
      `sharedBuffer() is not supported on ${runtimeName()}: it has no way to wrap mapped memory in a SharedArrayBuffer; use buffer instead`,
    );
  }
  const [address, deleter, hint] = addon.sharedViewParts(handle, start, length);
  try {
    return v8.create(address, length, deleter, hint);
  } catch (error) {
    addon.releaseSharedViewParts(handle);
    throw error;
  }
}
