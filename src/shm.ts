/**
 * Shared memory between processes: named objects (shm_open) and anonymous memory files
 * (memfd_create) whose descriptor is handed to a child process.
 *
 * @module
 */
import { readdirSync, statSync } from 'node:fs';
import { MemmapError, systemError } from './errors.js';
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

function validateName(name: unknown): string {
  return validatePosixName(name, 255);
}

/**
 * Maps a descriptor this call owns as shared memory: `wanted` bytes, or all of it. It grows
 * sparsely (resize() reserves nothing), as create() makes it: its pages are memory, taken as
 * they are written, and reserving them would commit that memory at once (a memory file has
 * no size limit to refuse it, so a large resize could bring the OOM killer instead of ENOSPC).
 */
function mapShared(fd: number, name: string | null, mode: MapMode, memoryFile: boolean, wanted?: number): SharedMemory {
  const parts = mapDescriptor(fd, name, {
    mode,
    offset: 0,
    wanted,
    grow: false,
    populate: false,
    advice: undefined,
    sparse: true,
  });
  return new SharedMemory(kMappingToken, parts, name, memoryFile);
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

  /** @internal Use the static methods. */
  constructor(
    token: symbol,
    parts: ConstructorParameters<typeof Mapping>[1],
    name: string | null,
    memoryFile: boolean,
  ) {
    super(token, parts);
    this.name = name;
    this.#memoryFile = memoryFile;
  }

  /**
   * The file descriptor this mapping owns (-1 once closed): pass it to a child process in
   * spawn's `stdio`, where {@link SharedMemory.fromFd} maps it again.
   */
  get fd(): number {
    return this[kFd]();
  }

  /**
   * Creates (or, unless `exclusive`, opens) a named object of at least `size` bytes and maps it
   * read-write. A new object holds zeros; an existing smaller one is grown.
   * @throws ERR_INVALID_ARG_VALUE for a bad name, ERR_OUT_OF_RANGE for a size that is not a
   * positive integer, EEXIST with `exclusive`, EACCES without permission.
   * @example
   * using jobs = SharedMemory.create('/jobs', 1 << 20, { exclusive: true });
   */
  static create(name: string, size: number, options?: SharedMemoryCreateOptions): SharedMemory {
    validateName(name);
    validateInteger(size, 'size', 1);
    const opts = validateOptions(options, 'options', ['mode', 'exclusive'] as const);
    const mode = opts.mode === undefined ? 0o600 : validateInteger(opts.mode, 'options.mode', 0, 0o7777);
    const exclusive = opts.exclusive === undefined ? false : validateBoolean(opts.exclusive, 'options.exclusive');
    const fd = addon.openShared(name, true, true, exclusive, mode);
    if (fd < 0) throw systemError(fd, 'shm_open', name);
    const info = addon.fileInfo(fd);
    const current = typeof info === 'number' ? 0 : info[1];
    if (current < size) {
      const rc = addon.resizeFile(fd, size);
      if (rc < 0) {
        addon.closeFd(fd);
        throw systemError(rc, 'ftruncate', name);
      }
    }
    return mapShared(fd, name, 'write', false, size);
  }

  /**
   * Opens an existing named object and maps all of it, read-write or `readOnly`.
   * @throws ENOENT if there is no such object, EACCES without permission.
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
    return mapShared(fd, null, 'write', true);
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
    for (const entry of readdirSync(SHM_DIR, { withFileTypes: true, encoding: 'buffer' })) {
      const name = entry.name.toString('utf8');
      // Named semaphores live beside shared memory objects as sem.NAME.
      if (!entry.isFile() || name.startsWith('sem.')) continue;
      const info = statSync(Buffer.concat([Buffer.from(`${SHM_DIR}/`), entry.name]), { throwIfNoEntry: false });
      if (info === undefined || (uid !== undefined && info.uid !== uid)) continue;
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
