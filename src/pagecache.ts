/**
 * The page cache of files, whether or not they are mapped: which pages are cached, reading a
 * range in ahead of use, and dropping a file's pages; and the process's page-fault counters.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { MemmapError, systemError } from './errors.js';
import { validateInteger, validateOptions } from './internal/validate.js';
import {
  checkResidencyPages,
  type FileTarget,
  mappableSize,
  openTarget,
  type RangeOptions,
  type Residency,
  residencyOf,
} from './mapping.js';
import { addon } from './native.js';

/** Page faults of this process since it started, from {@link faultCounters}. */
export interface FaultCounters {
  /** Served from memory (the page was in the page cache, or was a fresh zero page). */
  minor: number;
  /** Needed a read from storage. */
  major: number;
}

/**
 * Opens `file` read-only, works out the page-aligned range asked for, and runs `body` on it;
 * the descriptor is closed afterwards.
 */
function withFileRange<T>(
  file: FileTarget,
  range: RangeOptions | undefined,
  what: string,
  body: (fd: number, offset: number, length: number, path: string | null) => T,
): T {
  const opts = validateOptions(range, 'options', ['offset', 'length'] as const);
  const offset = opts.offset === undefined ? 0 : validateInteger(opts.offset, 'options.offset');
  const wanted = opts.length === undefined ? undefined : validateInteger(opts.length, 'options.length');
  const { fd, path } = openTarget(file, 'read', false);
  try {
    const size = mappableSize(fd, path);
    const end = wanted === undefined ? size : offset + wanted;
    if (offset > size || end > size) {
      throw new MemmapError(
        'ERR_MEMMAP_OUT_OF_RANGE',
        `${what}: range [${offset}, ${end}) lies past the end of ${path ?? 'the file'} (${size} bytes)`,
      );
    }
    const aligned = offset - (offset % addon.pageSize);
    return body(fd, aligned, end > offset ? end - aligned : 0, path);
  } finally {
    addon.closeFd(fd);
  }
}

/**
 * Which pages of a file (or of a range of it) are in the page cache, without reading any of
 * them: the same answer as `vmtouch` or `fincore`. The file is mapped for a moment and
 * unmapped; nothing is faulted in. One call answers for at most 2^26 pages (256 GiB of 4
 * KiB pages); ask about a larger file in windows of `offset` and `length`.
 * @throws ENOENT, EACCES, EISDIR as mapFile does; ERR_MEMMAP_OUT_OF_RANGE past the end, or for
 * a range of more than 2^26 pages.
 * @example
 * const { resident, pages } = fileResidency('big.db');
 */
export function fileResidency(file: FileTarget, range?: RangeOptions): Residency {
  return withFileRange(file, range, 'fileResidency', (fd, offset, length, path) => {
    checkResidencyPages('fileResidency', length, mappableSize(fd, path));
    const map = addon.fileResidency(fd, offset, length);
    if (typeof map === 'number') throw systemError(map, 'mincore', path);
    return residencyOf(map);
  });
}

/**
 * Starts reading a file range (by default all of it) into the page cache and returns at once
 * (posix_fadvise WILLNEED and readahead): later reads and mappings find it in memory.
 * @example
 * prefetch('model.bin');
 */
export function prefetch(file: FileTarget, range?: RangeOptions): void {
  withFileRange(file, range, 'prefetch', (fd, offset, length, path) => {
    if (length === 0) return;
    const rc = addon.prefetchFile(fd, offset, length);
    if (rc < 0) throw systemError(rc, 'readahead', path);
  });
}

/**
 * Drops a file's pages (or a range's) from the page cache: writes its dirty pages first
 * (fdatasync), then asks the kernel to let go of the clean ones (posix_fadvise DONTNEED).
 * Pages that some process has mapped and touched stay. For cold-cache measurements and for
 * making room.
 * @example
 * evict('big.db');
 * console.log(fileResidency('big.db').resident); // near 0
 */
export function evict(file: FileTarget, range?: RangeOptions): void {
  withFileRange(file, range, 'evict', (fd, offset, length, path) => {
    const rc = addon.evictFile(fd, offset, length);
    if (rc < 0) throw systemError(rc, 'posix_fadvise', path);
  });
}

/**
 * This process's page faults since it started (getrusage): minor ones were served from
 * memory, major ones read from storage. Take the difference around a piece of work to see
 * what its accesses cost.
 * @example
 * const before = faultCounters();
 * scan(m.buffer);
 * console.log(faultCounters().major - before.major, 'pages read from disk');
 */
export function faultCounters(): FaultCounters {
  if (typeof process.resourceUsage === 'function') {
    const usage = process.resourceUsage();
    return { minor: usage.minorPageFault, major: usage.majorPageFault };
  }
  // Runtimes without resourceUsage: the same counters from /proc (fields 10 and 12 of stat,
  // after the command name in parentheses, which may itself hold spaces).
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { minor: Number(fields[7]), major: Number(fields[9]) };
}
