/**
 * Shared memory between processes: named objects (shm_open) and anonymous memory files
 * (memfd_create) whose descriptor is handed to a child process.
 *
 * @module
 */
import { lstatSync, readdirSync } from 'node:fs';
import { MemmapError, systemError } from './errors.js';
import {
  type AdoptRequest,
  checkAdoptable,
  type Found,
  infoOf,
  refuseOrThrow,
  type SharedObjectInfo,
  statFd,
  validateTrustOwner,
} from './internal/ownership.js';
import {
  validateBoolean,
  validateInteger,
  validateOneOf,
  validateOptions,
  validatePosixName,
} from './internal/validate.js';
import { kFd, kMappingToken, type MapMode, Mapping, mapDescriptor } from './mapping.js';
import { addon } from './native.js';

/** What a memory file can be sealed against; see {@link SharedMemory.seal}. */
export type Seal = 'shrink' | 'grow' | 'write' | 'seal';

/** Options of {@link SharedMemory.create}. */
export interface SharedMemoryCreateOptions {
  /** Permission bits of a new object. Default 0o600: only this user. */
  mode?: number;
  /** Fail with EEXIST if the name exists, instead of opening it. Default false. */
  exclusive?: boolean;
  /**
   * Without `exclusive`, also adopt an existing object owned by this uid (one of this
   * process's own user is always adopted, if it is no more open than `mode`). For an object
   * deliberately shared by another user you trust.
   */
  trustOwner?: number;
}

/** Options of {@link SharedMemory.open} and {@link SharedMemory.fromFd}. */
export interface SharedMemoryOpenOptions {
  /** Map read-only. Default false. */
  readOnly?: boolean;
}

/** One named object, from {@link SharedMemory.list}. */
export interface SharedMemoryInfo {
  name: string;
  size: number;
  mode: number;
}

const SEALS: Record<Seal, number> = { seal: 1, shrink: 2, grow: 4, write: 8 };
const SEAL_NAMES = Object.keys(SEALS) as Seal[];
const SHM_DIR = '/dev/shm';
const EEXIST = -17;
const ENOENT = -2;
const EACCES = -13;
const ELOOP = -40;
/** What glibc's shm_open answers for a folder under the name (it turns EISDIR into EINVAL). */
const EINVAL = -22;
/** How often create() tries again when the name vanishes between two of its calls. */
const ATTEMPTS = 8;

function validateName(name: unknown): string {
  return validatePosixName(name, 255);
}

/**
 * Maps a descriptor this call owns as shared memory: `wanted` bytes, or all of it. `info` is
 * what fstat found of it, if the caller has it already. It grows sparsely (resize() reserves
 * nothing), as create() makes it: its pages are memory, taken as they are written, and
 * reserving them would commit that memory at once (a memory file has no size limit to refuse
 * it, so a large resize could bring the OOM killer instead of ENOSPC).
 */
function mapShared(
  fd: number,
  name: string | null,
  mode: MapMode,
  memoryFile: boolean,
  wanted?: number,
  info?: SharedObjectInfo,
  created = false,
): SharedMemory {
  let owner = info;
  if (owner === undefined) {
    try {
      owner = infoOf(statFd(fd, name), created);
    } catch (error) {
      addon.closeFd(fd);
      throw error;
    }
  }
  const parts = mapDescriptor(fd, name, {
    mode,
    offset: 0,
    wanted,
    grow: false,
    populate: false,
    advice: undefined,
    sparse: true,
  });
  return new SharedMemory(kMappingToken, parts, name, memoryFile, owner);
}

/**
 * Opens `name` read-write for create(): creates it exclusively (and sets its mode exactly,
 * whatever the umask), or, unless `exclusive`, adopts the object that exists if
 * checkAdoptable allows it. The checks read the descriptor that was opened (shm_open with
 * O_NOFOLLOW), so nothing can change between check and use. When the name is removed between
 * the exclusive create and the open of the existing object, it starts again.
 */
function openForCreate(request: AdoptRequest, exclusive: boolean): { fd: number; found: Found; created: boolean } {
  const { name, mode } = request;
  for (let attempt = 1; ; attempt++) {
    let fd = addon.openShared(name, true, true, true, mode);
    if (fd >= 0) {
      try {
        const rc = addon.changeMode(fd, mode);
        if (rc < 0) throw systemError(rc, 'fchmod', name);
        return { fd, found: statFd(fd, name), created: true };
      } catch (error) {
        addon.closeFd(fd);
        throw error;
      }
    }
    if (fd !== EEXIST || exclusive) throw systemError(fd, 'shm_open', name);
    fd = addon.openShared(name, true, false, false, 0);
    if (fd === ENOENT && attempt < ATTEMPTS) continue;
    if (fd === ELOOP || fd === EACCES || fd === EINVAL) refuseOrThrow(fd, `${SHM_DIR}${name}`, request);
    if (fd < 0) throw systemError(fd, 'shm_open', name);
    try {
      const found = statFd(fd, name);
      checkAdoptable(found, request);
      return { fd, found, created: false };
    } catch (error) {
      addon.closeFd(fd);
      throw error;
    }
  }
}

/**
 * Memory shared with other processes: a {@link Mapping} (every member works: buffer,
 * sharedBuffer, flush, close, the truncation guard) over a named POSIX shared memory object or
 * an anonymous memory file. The layout is raw: exactly the bytes asked for, no header, so a C
 * program that calls shm_open with the same name sees the same bytes.
 *
 * Safety: every process that maps the object can change it at any time; agree on a lock or a
 * protocol. A peer that truncates a named object makes the lost pages read as zeros here
 * (ERR_MEMMAP_TRUNCATED); an anonymous memory file can be sealed against that.
 */
export class SharedMemory extends Mapping {
  /** The object's name ('/jobs'), or null for an anonymous memory file. */
  readonly name: string | null;
  readonly #memoryFile: boolean;
  readonly #info: SharedObjectInfo;

  /** @internal Use the static methods. */
  constructor(
    token: symbol,
    parts: ConstructorParameters<typeof Mapping>[1],
    name: string | null,
    memoryFile: boolean,
    info: SharedObjectInfo,
  ) {
    super(token, parts);
    this.name = name;
    this.#memoryFile = memoryFile;
    this.#info = info;
  }

  /**
   * The owner, group and permission bits the object had when this handle opened it (read
   * from the opened descriptor), and whether create() made it. After {@link SharedMemory.open}
   * of a name another user could have planted, check `uid` before trusting the contents.
   * @example
   * using peer = SharedMemory.open('/jobs');
   * if (peer.info().uid !== process.geteuid()) throw new Error('not ours');
   */
  info(): SharedObjectInfo {
    return { ...this.#info };
  }

  /**
   * The file descriptor this mapping owns (-1 once closed): pass it to a child process in
   * spawn's `stdio`, where {@link SharedMemory.fromFd} maps it again.
   */
  get fd(): number {
    return this[kFd]();
  }

  /**
   * Creates (or, unless `exclusive`, opens) a named object of at least `size` bytes and maps
   * `size` bytes of it read-write. A new object holds zeros and has exactly `mode`, whatever
   * the umask; an existing smaller one is grown, a larger one is never shrunk.
   *
   * Safety: without `exclusive`, an existing object is adopted only if it is a regular file
   * (not a symbolic link), owned by this process's user (or by `trustOwner`), and no more open
   * to group and others than `mode`: anything else may have been planted by another user to
   * read what this process writes. New code should pass `exclusive: true` with a random or
   * per-user name.
   * @throws ERR_INVALID_ARG_VALUE for a bad name, ERR_OUT_OF_RANGE for a size that is not a
   * positive integer, EEXIST with `exclusive`, ERR_MEMMAP_UNSAFE_OBJECT for an existing object
   * it may not adopt, EACCES without permission.
   * @example
   * using jobs = SharedMemory.create('/jobs', 1 << 20, { exclusive: true });
   */
  static create(name: string, size: number, options?: SharedMemoryCreateOptions): SharedMemory {
    validateName(name);
    validateInteger(size, 'size', 1);
    const opts = validateOptions(options, 'options', ['mode', 'exclusive', 'trustOwner'] as const);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o7777);
    const exclusive = opts.exclusive === undefined ? false : validateBoolean(opts.exclusive, 'options.exclusive');
    const trustOwner = validateTrustOwner(opts.trustOwner, exclusive);
    const request = { syscall: 'shm_open', what: 'shared memory object', name, mode, trustOwner };
    const { fd, found, created } = openForCreate(request, exclusive);
    if (found.size < size) {
      const rc = addon.resizeFile(fd, size);
      if (rc < 0) {
        addon.closeFd(fd);
        throw systemError(rc, 'ftruncate', name);
      }
    }
    return mapShared(fd, name, 'write', false, size, infoOf(found, created));
  }

  /**
   * Opens an existing named object and maps all of it, read-write or `readOnly`. A symbolic
   * link under the name is refused (ELOOP). {@link SharedMemory.info} tells who owns it.
   * @throws ELOOP for a symbolic link, ENOENT if there is no such object, EACCES without permission.
   * @example
   * using peer = SharedMemory.open('/jobs', { readOnly: true });
   */
  static open(name: string, options?: SharedMemoryOpenOptions): SharedMemory {
    validateName(name);
    const opts = validateOptions(options, 'options', ['readOnly'] as const);
    const readOnly = opts.readOnly === undefined ? false : validateBoolean(opts.readOnly, 'options.readOnly');
    const fd = addon.openShared(name, !readOnly, false, false, 0);
    if (fd < 0) throw systemError(fd, 'shm_open', name);
    return mapShared(fd, name, readOnly ? 'read' : 'write', false);
  }

  /**
   * Removes a name. Processes that have the object mapped keep it until they close it; the
   * name can be created anew at once.
   * @throws ENOENT if there is no such object.
   */
  static unlink(name: string): void {
    validateName(name);
    const rc = addon.unlinkShared(name);
    if (rc < 0) throw systemError(rc, 'shm_unlink', name);
  }

  /**
   * Creates anonymous shared memory (a memory file, memfd_create) of `size` bytes, mapped
   * read-write. It has no name: share it by handing {@link SharedMemory.fd} to a child process
   * through spawn's `stdio`, where `SharedMemory.fromFd(3)` maps it.
   * @example
   * using shared = SharedMemory.anonymous(1 << 20);
   * spawn(process.execPath, ['child.js'], { stdio: ['inherit', 'inherit', 'inherit', shared.fd] });
   */
  static anonymous(size: number): SharedMemory {
    validateInteger(size, 'size', 1);
    const fd = addon.createMemoryFile('memmap');
    if (fd < 0) throw systemError(fd, 'memfd_create');
    const rc = addon.resizeFile(fd, size);
    if (rc < 0) {
      addon.closeFd(fd);
      throw systemError(rc, 'ftruncate');
    }
    return mapShared(fd, null, 'write', true, undefined, undefined, true);
  }

  /**
   * Maps the shared memory behind a descriptor: one passed down by a parent (for example fd 3
   * of spawn's `stdio`). memmap duplicates it, so you may close yours.
   * @throws EBADF for a closed descriptor; EACCES when the descriptor is read-only and
   * `readOnly` is not set.
   */
  static fromFd(fd: number, options?: SharedMemoryOpenOptions): SharedMemory {
    validateInteger(fd, 'fd', 0, 0x7fffffff);
    const opts = validateOptions(options, 'options', ['readOnly'] as const);
    const readOnly = opts.readOnly === undefined ? false : validateBoolean(opts.readOnly, 'options.readOnly');
    const own = addon.dupFd(fd);
    if (own < 0) throw systemError(own, 'dup');
    const seals = addon.getSeals(own);
    return mapShared(own, null, readOnly ? 'read' : 'write', seals >= 0);
  }

  /**
   * The named objects this user owns, with their sizes and permission bits: every one, also
   * those whose permissions let nobody open them (they are looked at, not opened). A name
   * that is not valid UTF-8 is listed with U+FFFD in place of the bytes that are not.
   */
  static list(): SharedMemoryInfo[] {
    const found: SharedMemoryInfo[] = [];
    const uid = process.getuid?.();
    // Names as bytes, so that one which is not UTF-8 can still be looked at. (Some runtimes
    // hand out strings even when asked for bytes, or lack Dirent names in bytes: take either.)
    for (const entry of readdirSync(SHM_DIR, { encoding: 'buffer' }) as (Buffer | string)[]) {
      const raw = typeof entry === 'string' ? Buffer.from(entry) : entry;
      const name = raw.toString('utf8');
      // Named semaphores live beside shared memory objects as sem.NAME.
      if (name.startsWith('sem.')) continue;
      const info = lstatSync(Buffer.concat([Buffer.from(`${SHM_DIR}/`), raw]), { throwIfNoEntry: false });
      if (info === undefined || !info.isFile() || (uid !== undefined && info.uid !== uid)) continue;
      found.push({ name: `/${name}`, size: info.size, mode: info.mode & 0o7777 });
    }
    return found.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Removes this object's name (see {@link SharedMemory.unlink}); the mapping stays usable. */
  unlink(): void {
    if (this.name === null) {
      throw new MemmapError('ERR_MEMMAP_UNSUPPORTED', 'unlink: anonymous shared memory has no name to remove');
    }
    SharedMemory.unlink(this.name);
  }

  /**
   * Seals an anonymous memory file: after seal('shrink') no process can make it smaller, so no
   * peer can truncate it under a mapping; 'grow' forbids growing it, 'write' forbids writing
   * (only possible while no writable mapping exists, so not on this one: EBUSY), and 'seal'
   * forbids further seals.
   * @throws ERR_MEMMAP_UNSUPPORTED for a named object; EPERM once sealed with 'seal'.
   * @example
   * using shared = SharedMemory.anonymous(4096);
   * shared.seal('shrink', 'grow');
   */
  seal(...seals: Seal[]): void {
    const fd = this[kFd]();
    if (!this.#memoryFile || fd < 0) {
      throw new MemmapError('ERR_MEMMAP_UNSUPPORTED', 'seal: only an open anonymous memory file can be sealed');
    }
    let bits = 0;
    for (const [i, seal] of seals.entries()) bits |= SEALS[validateOneOf(seal, `seals[${i}]`, SEAL_NAMES)];
    const rc = addon.addSeals(fd, bits);
    if (rc < 0) throw systemError(rc, 'fcntl');
  }

  /** The seals an anonymous memory file has (empty for a named object). */
  get seals(): Seal[] {
    const fd = this[kFd]();
    const bits = this.#memoryFile && fd >= 0 ? addon.getSeals(fd) : 0;
    return bits < 0 ? [] : SEAL_NAMES.filter((name) => bits & SEALS[name]);
  }
}
