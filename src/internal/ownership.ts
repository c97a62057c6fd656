/**
 * Who owns a named object, and whether `create` may adopt one that exists already.
 *
 * Every user of the machine shares one namespace of shared memory objects and named
 * semaphores (/dev/shm on Linux). Another user can plant an object under a name a program is
 * known to use before the program starts, world-readable and world-writable: a program that
 * then opens it instead of creating its own shares everything it writes with that user (the
 * /tmp squatting attack). So `create` without `exclusive` adopts an existing object only when
 * it is a regular file, owned by this process's user (or one the caller trusts by uid), and
 * no more open to group and others than the mode asked for; the checks read the descriptor
 * that was opened, never the name again. docs/guide.md, "Shared names and other users".
 */
import { invalidArgValue, MemmapError, systemError } from '../errors.js';
import { addon, FileKind } from '../native.js';
import { validateInteger } from './validate.js';

/** The owner, group and permission bits of a shared memory object or named semaphore. */
export interface SharedObjectInfo {
  /** The owner's user id. */
  uid: number;
  /** The group id. */
  gid: number;
  /** The permission bits: 0o600 lets only the owner in. */
  mode: number;
  /** Whether the call that made this handle created the object (false: it existed already). */
  created: boolean;
}

/** What fstat says of an open object. */
export interface Found {
  kind: FileKind;
  size: number;
  uid: number;
  gid: number;
  mode: number;
  device: bigint;
  inode: bigint;
}

/** What `create` asked for, against which an existing object is checked. */
export interface AdoptRequest {
  /** 'shm_open' or 'sem_open': the call the error names. */
  syscall: string;
  /** 'shared memory object' or 'semaphore'. */
  what: string;
  name: string;
  mode: number;
  trustOwner: number | undefined;
  /** For open(), which adopts nothing: any owner and mode, only the kind and size count. */
  anyOwner?: boolean;
  /** The least size an object of this kind holds (a semaphore's sem_t). */
  minSize?: number;
}

/** The largest uid: (uid_t)-1 means "no user" to the kernel. */
const UID_MAX = 2 ** 32 - 2;

/** fstat of `fd`; an fstat that fails is an error, never an empty object. */
export function statFd(fd: number, path: string | null): Found {
  const info = addon.fileInfo(fd);
  if (typeof info === 'number') throw systemError(info, 'fstat', path);
  const [kind, size, mode, uid, gid, device, inode] = info;
  return { kind, size, mode, uid, gid, device, inode };
}

/**
 * What the name `path` refers to now, without following a symbolic link and without opening
 * it (so a FIFO cannot block and no permission is needed); null if it cannot be seen. Only
 * for describing an object that is refused: a decision to adopt reads the opened descriptor.
 */
export function describePath(path: string): Found | null {
  const fd = addon.openPath(path);
  if (fd < 0) return null;
  try {
    return statFd(fd, path);
  } catch {
    return null;
  } finally {
    addon.closeFd(fd);
  }
}

/** The public view of what fstat found. */
export function infoOf(found: Found, created: boolean): SharedObjectInfo {
  return { uid: found.uid, gid: found.gid, mode: found.mode, created };
}

/** Checks `options.trustOwner`: a uid, and only where an existing object can be adopted. */
export function validateTrustOwner(value: unknown, exclusive: boolean): number | undefined {
  if (value === undefined) return undefined;
  const uid = validateInteger(value, 'options.trustOwner', 0, UID_MAX);
  if (exclusive) {
    throw invalidArgValue(
      'options.trustOwner',
      value,
      'applies only without options.exclusive: an exclusive create never adopts an existing object',
    );
  }
  return uid;
}

function octal(mode: number): string {
  return `0o${mode.toString(8).padStart(3, '0')}`;
}

/**
 * Throws ERR_MEMMAP_UNSAFE_OBJECT unless the existing object `found` may be adopted for
 * `request`: a regular file (of at least `minSize` bytes), owned by this process's effective
 * user or by `trustOwner`, whose group and other permission bits are all among those asked for.
 */
export function checkAdoptable(found: Found, request: AdoptRequest): void {
  const refusal = refusalOf(found, request);
  if (refusal === null) return;
  const verb = request.anyOwner ? 'opened' : 'adopted';
  throw new MemmapError(
    'ERR_MEMMAP_UNSAFE_OBJECT',
    `${request.syscall} '${request.name}': a ${request.what} of that name exists already and was not ${verb}: ${refusal.reason}. Another user may have planted it to read or change what this process shares; ${refusal.advice}`,
  );
}

/** Why `found` may not be adopted for `request`, and what to do instead; null if it may. */
function refusalOf(found: Found, request: AdoptRequest): { reason: string; advice: string } | null {
  const euid = process.geteuid?.() ?? process.getuid?.() ?? -1;
  const { uid } = found;
  const bits = found.mode & 0o777;
  const held = `owner uid ${uid}, mode ${octal(bits)}`;
  const elsewhere = request.anyOwner
    ? 'remove it if it is yours, or use another name'
    : 'pass exclusive: true and choose another name (a random or per-user one)';
  if (found.kind === FileKind.Symlink) {
    return { reason: `it is a symbolic link (${held}), which memmap never follows`, advice: elsewhere };
  }
  if (found.kind !== FileKind.Regular) return { reason: `it is not a regular file (${held})`, advice: elsewhere };
  if (!request.anyOwner && uid !== euid && uid !== request.trustOwner) {
    const trusted = request.trustOwner === undefined ? '' : ` nor by the trusted uid ${request.trustOwner}`;
    return {
      reason: `it is owned by uid ${uid} with mode ${octal(bits)}, not by this process's user (uid ${euid})${trusted}`,
      advice: `${elsewhere}; or, if uid ${uid} is a user you trust to share this object with, pass trustOwner: ${uid}`,
    };
  }
  if (!request.anyOwner && (bits & 0o077 & ~request.mode) !== 0) {
    const wider = (request.mode | (bits & 0o077)) & 0o7777;
    return {
      reason: `its mode ${octal(bits)} lets group or others in further than the mode ${octal(request.mode & 0o7777)} asked for (owner uid ${uid})`,
      advice: `${elsewhere}; or, if an object that open is meant, ask for mode: ${octal(wider)}`,
    };
  }
  if (request.minSize !== undefined && found.size < request.minSize) {
    return { reason: `it holds ${found.size} bytes, too few for a ${request.what} (${held})`, advice: elsewhere };
  }
  return null;
}

/**
 * After an open of an existing object failed with `errno` (ELOOP for a symbolic link, EACCES
 * for another user's object, EINVAL from shm_open for a folder): refuses it as unsafe when what `path` names now is, and
 * otherwise throws the system error.
 */
export function refuseOrThrow(errno: number, path: string, request: AdoptRequest): never {
  const seen = describePath(path);
  if (seen !== null) checkAdoptable(seen, request);
  throw systemError(errno, request.syscall, request.name);
}
