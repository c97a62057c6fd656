/**
 * Every error memmap throws is made here.
 *
 * Three kinds, each shaped like Node's own so that callers test `code`, never `message`:
 * - a failed system call: an `Error` with `code` ('ENOENT', 'EACCES', ...), `errno` (negative,
 *   as in Node's fs errors), `syscall` and `path` where there is one;
 * - a condition of memmap's own: a {@link MemmapError} with a `code` of ERR_MEMMAP_*;
 * - a bad argument: a TypeError or RangeError with Node's ERR_INVALID_ARG_TYPE,
 *   ERR_INVALID_ARG_VALUE or ERR_OUT_OF_RANGE.
 *
 * @module
 */
import { getSystemErrorMap, inspect } from 'node:util';

/** The `code` values of {@link MemmapError}. */
export type MemmapErrorCode =
  /** The mapping was closed; its memory is gone. */
  | 'ERR_MEMMAP_CLOSED'
  /** A range lies outside the file or the mapping. */
  | 'ERR_MEMMAP_OUT_OF_RANGE'
  /** The file shrank under the mapping, or a page of it could not be read. */
  | 'ERR_MEMMAP_TRUNCATED'
  /** An access reached a page its protection forbids (a write to a read-only page). */
  | 'ERR_MEMMAP_PROTECTION'
  /** A wait did not end within its timeout. */
  | 'ERR_MEMMAP_TIMEOUT'
  /** unlock() by a thread that does not hold the lock. */
  | 'ERR_MEMMAP_NOT_OWNER'
  /** lock() by the thread that holds the lock already. */
  | 'ERR_MEMMAP_DEADLOCK'
  /** attach() over words that hold zeros: nobody has created the primitive there yet. */
  | 'ERR_MEMMAP_NOT_INITIALIZED'
  /** Mutex.create() over a Mutex a thread holds now (reset: true forces it); resize()/remap() while this thread holds a Mutex in the mapping. */
  | 'ERR_MEMMAP_BUSY'
  /** This runtime or platform cannot do what was asked. */
  | 'ERR_MEMMAP_UNSUPPORTED'
  /**
   * create() found an object of that name that it may not adopt: a symbolic link, not a
   * regular file, another user's, or more open than the mode asked for.
   */
  | 'ERR_MEMMAP_UNSAFE_OBJECT'
  /** A typed view's first byte is not a multiple of its element size (the file's, or the caller's, offset). */
  | 'ERR_MEMMAP_MISALIGNED'
  /** A file does not start with its format's magic bytes (not an .npy file). */
  | 'ERR_MEMMAP_FORMAT_MAGIC'
  /** A file's format version is not one memmap reads. */
  | 'ERR_MEMMAP_FORMAT_VERSION'
  /** A file is too short to hold its format's fixed header prefix. */
  | 'ERR_MEMMAP_HEADER_TOO_SMALL'
  /** A header's declared length is over the format's cap. */
  | 'ERR_MEMMAP_HEADER_TOO_LARGE'
  /** A header's declared length reaches past the end of the file. */
  | 'ERR_MEMMAP_HEADER_LENGTH'
  /** A header is not valid text of its syntax (a Python literal, JSON, UTF-8). */
  | 'ERR_MEMMAP_HEADER_SYNTAX'
  /** A header lacks a key the format requires, or has one it does not define. */
  | 'ERR_MEMMAP_HEADER_KEY'
  /** A header names the same key twice. */
  | 'ERR_MEMMAP_DUPLICATE_KEY'
  /** A header key's value has the wrong type. */
  | 'ERR_MEMMAP_HEADER_VALUE'
  /** A dtype memmap does not map: unknown, big-endian, object or structured. */
  | 'ERR_MEMMAP_DTYPE'
  /** A shape that is not a list of non-negative safe integers, or whose byte size overflows 2^53. */
  | 'ERR_MEMMAP_SHAPE'
  /** Tensor offsets outside the data section, unsorted, with a gap or an overlap. */
  | 'ERR_MEMMAP_TENSOR_OFFSETS'
  /** A tensor's byte range does not match its dtype and shape. */
  | 'ERR_MEMMAP_TENSOR_SIZE'
  /** The data does not end exactly at the end of the file (short, or bytes after it). */
  | 'ERR_MEMMAP_DATA_LENGTH'
  /** Shared memory opened as a Channel does not hold a channel's header (magic, sizes, length). */
  | 'ERR_MEMMAP_CHANNEL_LAYOUT'
  /** The channel was made by a memmap (or a peer) that speaks another layout version. */
  | 'ERR_MEMMAP_CHANNEL_VERSION'
  /** A record header or a position in the channel breaks a rule of the layout: a corrupt or hostile peer. */
  | 'ERR_MEMMAP_CHANNEL_CORRUPT'
  /** consumer() while another live consumer holds the channel (a channel has one consumer). */
  | 'ERR_MEMMAP_CHANNEL_BUSY'
  /** commit() or abort() of a claim the consumer already turned into padding (it took the producer for dead). */
  | 'ERR_MEMMAP_CHANNEL_UNBLOCKED';

/** An error of memmap's own, with a stable `code` to test. */
export class MemmapError extends Error {
  override readonly name = 'MemmapError';
  readonly code: MemmapErrorCode;

  constructor(code: MemmapErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * The errno names a failed system call of memmap's can carry: those of the calls it makes
 * (open, fstat, mmap, msync, madvise, mlock, mbind, ftruncate, fallocate, fsync, shm_open,
 * memfd_create, sem_open, futex), and `UNKNOWN_ERRNO_<n>` for an errno Node has no name for.
 * ENOSYS never appears: it becomes ERR_MEMMAP_UNSUPPORTED.
 */
export type SystemErrorCode =
  | 'EACCES'
  | 'EAGAIN'
  | 'EBADF'
  | 'EBUSY'
  | 'EDEADLK'
  | 'EDQUOT'
  | 'EEXIST'
  | 'EFAULT'
  | 'EFBIG'
  | 'EINTR'
  | 'EINVAL'
  | 'EIO'
  | 'EISDIR'
  | 'ELOOP'
  | 'EMFILE'
  | 'ENAMETOOLONG'
  | 'ENFILE'
  | 'ENODEV'
  | 'ENOENT'
  | 'ENOMEM'
  | 'ENOSPC'
  | 'ENOTDIR'
  | 'ENOTRECOVERABLE'
  | 'ENOTSUP'
  | 'ENXIO'
  | 'EOPNOTSUPP'
  | 'EOVERFLOW'
  | 'EOWNERDEAD'
  | 'EPERM'
  | 'EROFS'
  | 'ESPIPE'
  | 'ESRCH'
  | 'ETIMEDOUT'
  | 'ETXTBSY'
  | `UNKNOWN_ERRNO_${number}`;

/** The shape of a failed system call, as Node's fs reports one. */
export interface SystemCallError extends Error {
  code: SystemErrorCode;
  errno: number;
  syscall: string;
  path?: string;
}

const systemErrors = getSystemErrorMap();

/**
 * The error for a system call that failed with `errno` (negative, as the addon returns it).
 * `hint` is a sentence on what to do, appended to the message. An operation the platform
 * lacks (ENOSYS) becomes ERR_MEMMAP_UNSUPPORTED.
 */
export function systemError(
  errno: number,
  syscall: string,
  path?: string | null,
  hint?: string,
): SystemCallError | MemmapError {
  if (errno === -38 /* ENOSYS: the platform layer has no such operation */) {
    return new MemmapError('ERR_MEMMAP_UNSUPPORTED', `${syscall} is not supported on ${process.platform}`);
  }
  const [code, description] = systemErrors.get(errno) ?? [`UNKNOWN_ERRNO_${-errno}`, 'unknown error'];
  let message = `${code}: ${description}, ${syscall}`;
  if (path != null) message += ` '${path}'`;
  if (hint) message += `; ${hint}`;
  const error = new Error(message) as SystemCallError;
  error.errno = errno;
  // An errno Node names but the list above lacks is still reported by its name, not hidden.
  error.code = code as SystemErrorCode;
  error.syscall = syscall;
  if (path != null) error.path = path;
  Error.captureStackTrace(error, systemError);
  return error;
}

/** The error a closed mapping answers every call with. */
export function closedError(what: string): MemmapError {
  return new MemmapError('ERR_MEMMAP_CLOSED', `${what}: the mapping is closed`);
}

/** The error a mapping whose file shrank under it answers every call with. */
export function truncatedError(what: string, path: string | null, first?: string): MemmapError {
  return new MemmapError(
    'ERR_MEMMAP_TRUNCATED',
    `${what}: ${path ?? 'the file'} shrank under the mapping or could not be read${first ? ` (${first})` : ''}; the pages that are gone read as zeros. ${
      what === 'close'
        ? 'The mapping is released all the same'
        : 'Call remap() to map the file at its current size, or close() the mapping'
    }`,
  );
}

/** The error a mapping answers every call with after a stray access the guard absorbed. */
export function protectionError(what: string, path: string | null, first?: string): MemmapError {
  return new MemmapError(
    'ERR_MEMMAP_PROTECTION',
    `${what}: an access reached a page of ${path ?? 'the mapping'} that its protection forbids (${first ?? "a write to a read-only page, or any access to a page protected 'none'"}); the page now holds a private copy, so ${path ? 'the file is unchanged' : 'nothing else sees the access'}. ${
      what === 'close'
        ? 'The mapping is released all the same'
        : `close() the mapping${path ? ', or remap() to map the file again' : ''}`
    }`,
  );
}

interface CodedError extends Error {
  code: string;
}

function withCode<E extends Error>(error: E, code: string): E & CodedError {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  return error as E & CodedError;
}

/** Describes a received value the way Node's argument errors do. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const name = value.constructor?.name;
    return name ? `an instance of ${name}` : inspect(value, { depth: -1 });
  }
  const shown = inspect(value, { colors: false, maxStringLength: 28 });
  return `type ${typeof value} (${shown})`;
}

/** TypeError ERR_INVALID_ARG_TYPE: `name` must be `expected`. */
export function invalidArgType(name: string, expected: string, actual: unknown): TypeError & CodedError {
  return withCode(
    new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(actual)}`),
    'ERR_INVALID_ARG_TYPE',
  );
}

/** TypeError ERR_INVALID_ARG_VALUE: `name` has a value that cannot work, and `reason` says why. */
export function invalidArgValue(name: string, value: unknown, reason: string): TypeError & CodedError {
  const shown = inspect(value, { colors: false, maxStringLength: 40 });
  return withCode(
    new TypeError(`The ${name.includes('.') ? 'property' : 'argument'} '${name}' ${reason}. Received ${shown}`),
    'ERR_INVALID_ARG_VALUE',
  );
}

/** RangeError ERR_OUT_OF_RANGE: `name` must lie in `range`. */
export function outOfRange(name: string, range: string, value: unknown): RangeError & CodedError {
  const shown = typeof value === 'bigint' ? `${value}n` : inspect(value, { colors: false });
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`),
    'ERR_OUT_OF_RANGE',
  );
}

/**
 * Whether `error` is a failed system call as memmap reports one (a `code`, a numeric `errno`
 * and a `syscall`), and, if `code` is given, one with that code. Narrows the type, so that
 * `error.syscall` and `error.path` can be read.
 * @example
 * try { mapFile(path); } catch (error) {
 *   if (isSystemCallError(error, 'ENOENT')) console.log(`${error.path} is missing`);
 *   else throw error;
 * }
 */
export function isSystemCallError(error: unknown, code?: SystemErrorCode): error is SystemCallError {
  if (!(error instanceof Error)) return false;
  const e = error as Partial<SystemCallError>;
  if (typeof e.code !== 'string' || typeof e.errno !== 'number' || typeof e.syscall !== 'string') return false;
  return code === undefined || e.code === code;
}
