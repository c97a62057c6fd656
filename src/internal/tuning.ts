/**
 * The policy behind the tuning calls: which advice exists and what a refusal means, what a
 * failed mlock should tell the user about their limit, and reading a mapping's figures out of
 * /proc/self/smaps. No mapping objects here, so both the Mapping class and the file-level
 * functions can use it.
 */
import { readFileSync } from 'node:fs';
import { addon } from '../native.js';

/** Advice about a mapped range, as {@link Mapping.advise} takes it (madvise(2)). */
export type Advice =
  | 'normal'
  | 'random'
  | 'sequential'
  | 'willneed'
  | 'dontneed'
  | 'free'
  | 'remove'
  | 'hugepage'
  | 'nohugepage'
  | 'dontfork'
  | 'dofork'
  | 'populate-read'
  | 'populate-write'
  | 'cold'
  | 'pageout';

/** The advice numbers of native/os/mm.h. */
export const ADVICE: Record<Advice, number> = {
  normal: 0,
  random: 1,
  sequential: 2,
  willneed: 3,
  dontneed: 4,
  free: 5,
  remove: 6,
  hugepage: 7,
  nohugepage: 8,
  dontfork: 9,
  dofork: 10,
  'populate-read': 11,
  'populate-write': 12,
  cold: 13,
  pageout: 14,
};
export const ADVICES = Object.keys(ADVICE) as Advice[];

const EINVAL = -22;
const EACCES = -13;
const EPERM = -1;
const ENOMEM = -12;
const EAGAIN = -11;
const EFAULT = -14;
const EIO = -5;

/** Why the kernel may refuse an advice: the sentence appended to the SystemError. */
export function adviceHint(advice: Advice, errno: number): string | undefined {
  if (errno === EINVAL) {
    switch (advice) {
      case 'remove':
        return "'remove' frees the pages and the file's blocks behind them: it needs a shared writable mapping ('write', SharedMemory, or shared anonymous memory) on a file system that can punch holes (tmpfs and shared memory, ext4, xfs, btrfs)";
      case 'free':
        return "'free' applies only to private anonymous memory (mapAnonymous without shared)";
      case 'hugepage':
      case 'nohugepage':
        return 'this kernel or this kind of mapping has no transparent huge pages (see /sys/kernel/mm/transparent_hugepage/enabled)';
      case 'populate-read':
      case 'populate-write':
        return `'${advice}' needs Linux 5.14 or later${advice === 'populate-write' ? ", and a writable mapping ('write' or 'copy')" : ''}`;
      case 'cold':
      case 'pageout':
        return `'${advice}' needs Linux 5.4 or later`;
      case 'dontneed':
        return "'dontneed' is refused on locked pages: unlock() them first";
      default:
        return undefined;
    }
  }
  if (errno === EACCES && advice === 'remove') return "'remove' writes to the file: it needs a 'write' mapping";
  if (errno === EPERM) return 'the range is locked or sealed against this advice';
  if (errno === EFAULT) return 'part of the range is not backed by the file any more (it was truncated)';
  if (errno === EIO) return 'a page could not be read from the file';
  if (errno === ENOMEM) return 'out of memory while populating the range';
  return undefined;
}

/** The KiB figure of a byte count, for messages about `ulimit -l`, which counts KiB. */
function kib(bytes: number): string {
  return `${Math.ceil(bytes / 1024).toLocaleString('en')} KiB`;
}

/** What this process has locked now (VmLck of /proc/self/status), in bytes; -1 if unknown. */
export function lockedBytes(): number {
  try {
    const match = /^VmLck:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}

/** The sentence a failed mlock appends: the limit in force, what is locked, how to raise it. */
export function lockHint(errno: number, length: number): string | undefined {
  if (errno !== ENOMEM && errno !== EPERM && errno !== EAGAIN) return undefined;
  if (errno === EAGAIN) return 'some pages of the range could not be locked (try again, or lock less)';
  const limit = addon.memlockLimit();
  const [soft, hard] = typeof limit === 'number' ? [-2, -2] : limit;
  const show = (n: number) => (n === -1 ? 'unlimited' : n === -2 ? 'unknown' : kib(n));
  const locked = lockedBytes();
  const raise =
    'raise it with `ulimit -l <KiB>` in the shell that starts the process (up to the hard limit; root can go higher), LimitMEMLOCK= in a systemd unit, memlock in /etc/security/limits.conf, or give the process CAP_IPC_LOCK';
  if (errno === EPERM || soft === 0) {
    return `locking memory is not permitted here: the limit on locked memory (RLIMIT_MEMLOCK, \`ulimit -l\`) is ${show(soft)} and the process lacks CAP_IPC_LOCK; ${raise}`;
  }
  return `locking ${kib(length)} would pass this process's limit on locked memory (RLIMIT_MEMLOCK, \`ulimit -l\`): soft ${show(soft)}, hard ${show(hard)}, ${locked >= 0 ? `${kib(locked)} locked already` : 'locked now unknown'}; ${raise}`;
}

/** The /proc/self/smaps figures of a mapping, in bytes; see {@link Mapping.memoryStats}. */
export interface MemoryStats {
  /** Resident: in RAM and mapped by this process. */
  rss: number;
  /** Proportional set size: resident bytes, each page divided by the processes sharing it. */
  pss: number;
  sharedClean: number;
  sharedDirty: number;
  privateClean: number;
  privateDirty: number;
  /** Bytes in transparent huge pages. */
  anonHugePages: number;
  /** Bytes locked in RAM (lock()). */
  locked: number;
  swap: number;
  /**
   * False when the kernel merged the mapping with a neighbouring one of the same kind (it does
   * so for anonymous memory), so that the figures include that neighbour too.
   */
  exact: boolean;
}

const SMAPS_FIELDS: Record<string, keyof Omit<MemoryStats, 'exact'>> = {
  Rss: 'rss',
  Pss: 'pss',
  Shared_Clean: 'sharedClean',
  Shared_Dirty: 'sharedDirty',
  Private_Clean: 'privateClean',
  Private_Dirty: 'privateDirty',
  AnonHugePages: 'anonHugePages',
  Locked: 'locked',
  Swap: 'swap',
};

/** Sums the smaps figures of the areas that overlap [start, end) of this process's memory. */
export function smapsFor(start: bigint, end: bigint): MemoryStats {
  const stats: MemoryStats = {
    rss: 0,
    pss: 0,
    sharedClean: 0,
    sharedDirty: 0,
    privateClean: 0,
    privateDirty: 0,
    anonHugePages: 0,
    locked: 0,
    swap: 0,
    exact: true,
  };
  let inside = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const area = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (area) {
      const from = BigInt(`0x${area[1]}`);
      const to = BigInt(`0x${area[2]}`);
      inside = from < end && to > start;
      if (inside && (from < start || to > end)) stats.exact = false;
      continue;
    }
    if (!inside) continue;
    const field = /^(\w+):\s+(\d+) kB/.exec(line);
    const key = field ? SMAPS_FIELDS[field[1] as string] : undefined;
    if (key) stats[key] += Number(field?.[2]) * 1024;
  }
  return stats;
}
