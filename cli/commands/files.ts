/**
 * The page-cache subcommands, each over a list of files (directories walked with -r):
 * `residency`, `touch`, `evict` and `lock`, and `stat` for one file.
 */
import { statfsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { evict, fileResidency, type Mapping, mapFile, pageSize } from '../../src/index.js';
import {
  collectFiles,
  directoryError,
  Failures,
  formatBytes,
  percent,
  printJson,
  progressBar,
  UsageError,
  withFile,
} from '../common.js';

const FILE_OPTIONS = {
  recursive: { type: 'boolean', short: 'r' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const SHARED_OPTIONS = `Options:
  -r, --recursive   walk directories given as FILE
  --json            print one JSON object instead
  -h, --help        show this help`;

export const usage = {
  residency: `Usage: memmap residency [-r] [--json] FILE...

How much of each FILE is in the page cache, without reading any of it (mincore on a mapping
that is never touched): pages resident and in all, the percentage, and a picture of where the
cached parts are, one character per stretch of the file: 'O' all cached, 'o' part, ' ' none.

${SHARED_OPTIONS}
`,
  touch: `Usage: memmap touch [-r] [--json] FILE...

Reads every page of each FILE into the page cache (MADV_POPULATE_READ on a read-only
mapping, or one read per page on kernels before 5.14), with a progress bar on a terminal and
the throughput at the end.

${SHARED_OPTIONS}
`,
  evict: `Usage: memmap evict [-r] [--json] FILE...

Drops each FILE's pages from the page cache: writes its dirty pages first (fdatasync), then
asks the kernel to let the clean ones go (posix_fadvise DONTNEED), and shows what is left.
Pages another process has mapped and touched stay.

${SHARED_OPTIONS}
`,
  lock: `Usage: memmap lock [-r] [--json] FILE...

Maps each FILE, locks it in RAM (mlock: every page is read in and stays), prints what is
locked, and holds it until interrupted (Ctrl-C, SIGINT or SIGTERM), then releases it. Locked
memory counts against \`ulimit -l\` unless the process has CAP_IPC_LOCK.

${SHARED_OPTIONS}
`,
  stat: `Usage: memmap stat [--json] FILE

One FILE's size, pages, how much of it is in the page cache, the disk space it takes (and so
whether it is sparse), and its file system.

Options:
  --json       print one JSON object instead
  -h, --help   show this help
`,
};

type Command = keyof typeof usage;

/** Parses the shared options; null when --help was asked (and shown). */
function parse(command: Command, args: string[]) {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: FILE_OPTIONS });
  if (values.help) {
    process.stdout.write(usage[command]);
    return null;
  }
  if (positionals.length === 0) throw new UsageError(`${command} needs at least one FILE`);
  return { json: values.json === true, recursive: values.recursive === true, paths: positionals };
}

/** Bytes asked about per fileResidency() call: a file of any size is counted in windows. */
const RESIDENCY_WINDOW = 2 ** 24 * pageSize;

/** What of one file is in the page cache, with a picture of where. */
interface Cached {
  pages: number;
  resident: number;
  /** `width` characters, each standing for a stretch of pages: 'O' all cached, 'o' part, ' ' none. */
  picture: string;
}

/**
 * Counts the cached pages of a file of `size` bytes in windows (one call answers for a
 * bounded number of pages), adding each window's pages into the picture's cells.
 */
export function cachedPages(path: string | number, size: number, width = 60): Cached {
  const pages = Math.ceil(size / pageSize);
  const cells = Math.min(width, pages);
  const cellStart = (c: number) => Math.floor((c * pages) / cells);
  const counts = new Array<number>(cells).fill(0);
  let resident = 0;
  for (let offset = 0; offset < size; offset += RESIDENCY_WINDOW) {
    const r = fileResidency(path, { offset, length: Math.min(RESIDENCY_WINDOW, size - offset) });
    const first = offset / pageSize;
    const last = first + r.map.length;
    resident += r.resident;
    for (let c = 0; c < cells; c++) {
      const from = Math.max(cellStart(c), first);
      const to = Math.min(cellStart(c + 1), last);
      let n = 0;
      for (let i = from; i < to; i++) n += r.map[i - first] as number;
      counts[c] = (counts[c] as number) + n;
    }
  }
  let line = '';
  for (let c = 0; c < cells; c++) {
    const count = counts[c] as number;
    line += count === 0 ? ' ' : count === cellStart(c + 1) - cellStart(c) ? 'O' : 'o';
  }
  return { pages, resident, picture: `[${line}]` };
}

export function residency(args: string[]): number {
  const options = parse('residency', args);
  if (options === null) return 0;
  const failures = new Failures();
  const rows: { path: string; size: number; pages: number; resident: number; picture: string }[] = [];
  for (const file of collectFiles(options.paths, options.recursive, failures.add)) {
    try {
      rows.push(withFile(file, (target, size) => ({ path: file.path, size, ...cachedPages(target, size) })));
    } catch (error) {
      failures.add(file.path, error as Error);
    }
  }
  const pages = rows.reduce((n, r) => n + r.pages, 0);
  const resident = rows.reduce((n, r) => n + r.resident, 0);
  if (options.json) {
    printJson({
      files: rows.map(({ picture: _, ...row }) => ({
        ...row,
        percent: Number(percent(row.resident, row.pages).slice(0, -1)),
      })),
      pages,
      resident,
      percent: Number(percent(resident, pages).slice(0, -1)),
      pageSize,
      failed: failures.list,
    });
  } else {
    for (const r of rows) {
      process.stdout.write(
        `${r.path}\n  ${r.picture} ${r.resident.toLocaleString('en')}/${r.pages.toLocaleString('en')} pages ${percent(r.resident, r.pages)} (${formatBytes(r.resident * pageSize)} of ${formatBytes(r.size)})\n`,
      );
    }
    if (rows.length > 1) {
      process.stdout.write(
        `total: ${rows.length} files, ${resident.toLocaleString('en')}/${pages.toLocaleString('en')} pages ${percent(resident, pages)} (${formatBytes(resident * pageSize)} of ${formatBytes(pages * pageSize)})\n`,
      );
    }
  }
  return failures.code;
}

/** Bytes read in per mapping when touching, so that any file size fits in a Buffer. */
const WINDOW = 256 * 1024 * 1024;

/** Brings one window of a file into the page cache. */
function touchWindow(m: Mapping): void {
  try {
    m.advise('populate-read');
  } catch {
    // Kernels before 5.14: one read per page does the same.
    const b = m.buffer;
    let sink = 0;
    for (let i = 0; i < b.length; i += pageSize) sink ^= b[i] as number;
    if (sink === 256) process.stdout.write('');
  }
}

export function touch(args: string[]): number {
  const options = parse('touch', args);
  if (options === null) return 0;
  const failures = new Failures();
  const files = collectFiles(options.paths, options.recursive, failures.add).flatMap((file) => {
    try {
      return [{ file, size: withFile(file, (_, size) => size) }];
    } catch (error) {
      failures.add(file.path, error as Error);
      return [];
    }
  });
  const total = files.reduce((n, f) => n + f.size, 0);
  const bar = process.stderr.isTTY && !options.json && total > WINDOW ? progressBar('touch') : null;
  const started = process.hrtime.bigint();
  let done = 0;
  const touched: { path: string; bytes: number }[] = [];
  for (const { file, size } of files) {
    try {
      withFile(file, (target) => {
        for (let offset = 0; offset < size; offset += WINDOW) {
          const m = mapFile(target, { offset, length: Math.min(WINDOW, size - offset) });
          try {
            touchWindow(m);
          } finally {
            m.close();
          }
          done += Math.min(WINDOW, size - offset);
          bar?.update(done, total);
        }
      });
      touched.push({ path: file.path, bytes: size });
    } catch (error) {
      failures.add(file.path, error as Error);
    }
  }
  bar?.end();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const bytes = touched.reduce((n, f) => n + f.bytes, 0);
  const rate = seconds > 0 ? bytes / seconds : 0;
  if (touched.length === 0 && failures.code !== 0) {
    // Every file failed: the errors said so; no summary of nothing touched.
  } else if (options.json) {
    printJson({ files: touched, bytes, seconds: Number(seconds.toFixed(6)), bytesPerSecond: Math.round(rate) });
  } else {
    process.stdout.write(
      `touched ${touched.length} file${touched.length === 1 ? '' : 's'}, ${formatBytes(bytes)} in ${seconds.toFixed(2)} s (${formatBytes(rate)}/s)\n`,
    );
  }
  return failures.code;
}

export function evictCommand(args: string[]): number {
  const options = parse('evict', args);
  if (options === null) return 0;
  const failures = new Failures();
  const rows: { path: string; pages: number; resident: number }[] = [];
  for (const file of collectFiles(options.paths, options.recursive, failures.add)) {
    try {
      const r = withFile(file, (target, size) => {
        evict(target);
        return cachedPages(target, size);
      });
      rows.push({ path: file.path, pages: r.pages, resident: r.resident });
    } catch (error) {
      failures.add(file.path, error as Error);
    }
  }
  if (options.json) printJson({ files: rows });
  else {
    for (const r of rows) {
      process.stdout.write(
        `${r.path}: evicted, ${r.resident.toLocaleString('en')}/${r.pages.toLocaleString('en')} pages left ${percent(r.resident, r.pages)}\n`,
      );
    }
  }
  return failures.code;
}

export async function lock(args: string[]): Promise<number> {
  const options = parse('lock', args);
  if (options === null) return 0;
  const failures = new Failures();
  const held: Mapping[] = [];
  const files: { path: string; bytes: number }[] = [];
  for (const file of collectFiles(options.paths, options.recursive, failures.add)) {
    let m: Mapping | null = null;
    try {
      m = withFile(file, (target) => mapFile(target));
      m.lock();
      held.push(m);
      files.push({ path: file.path, bytes: m.length });
    } catch (error) {
      m?.close();
      failures.add(file.path, error as Error);
    }
  }
  const release = () => {
    for (const m of held) m.close();
  };
  if (failures.code !== 0) {
    // Locking is all or nothing: a partial lock is not what was asked for.
    release();
    return 1;
  }
  // Listen for the signals before saying that the files are held: whoever reads that line may
  // send SIGTERM at once.
  const interrupted = new Promise<NodeJS.Signals>((done) => {
    const keepAlive = setInterval(() => {}, 1 << 30);
    for (const name of ['SIGINT', 'SIGTERM'] as const) {
      process.once(name, () => {
        clearInterval(keepAlive);
        done(name);
      });
    }
  });
  const bytes = files.reduce((n, f) => n + f.bytes, 0);
  if (options.json) printJson({ files, bytes, pid: process.pid });
  else {
    process.stdout.write(
      `locked ${files.length} file${files.length === 1 ? '' : 's'}, ${formatBytes(bytes)} in RAM (pid ${process.pid}); holding until Ctrl-C or SIGTERM\n`,
    );
  }
  const signal = await interrupted;
  release();
  if (!options.json) process.stdout.write(`${signal}: released ${formatBytes(bytes)}\n`);
  return 0;
}

/** Names of common file systems by their statfs magic number. */
const FILE_SYSTEMS: Record<number, string> = {
  61267: 'ext2/ext3/ext4',
  16914836: 'tmpfs',
  1481003842: 'xfs',
  2435016766: 'btrfs',
  801189825: 'zfs',
  26985: 'nfs',
  4283649346: 'cifs',
  4266872130: 'smb2',
  1702057286: 'fuse',
  2035054128: 'overlayfs',
  1936814952: 'squashfs',
  40864: 'proc',
  1650812274: 'sysfs',
  2240043254: 'ramfs',
  19780: 'vfat',
  1397118030: 'ntfs',
  4076150800: 'f2fs',
  18225520: 'gfs2',
  1952539503: 'ocfs2',
  12805120: 'ceph',
  198183888: 'lustre',
};

export function stat(args: string[]): number {
  const options = parse('stat', args);
  if (options === null) return 0;
  if (options.paths.length !== 1) throw new UsageError('stat takes exactly one FILE');
  const path = options.paths[0] as string;
  const info = statSync(path);
  if (info.isDirectory()) throw directoryError(path, false);
  const fs = statfsSync(path);
  const r = cachedPages(path, info.size, 40);
  const allocated = info.blocks * 512;
  const fsName = FILE_SYSTEMS[fs.type] ?? `unknown (type 0x${fs.type.toString(16)})`;
  const sparse = allocated < info.size;
  if (options.json) {
    printJson({
      path,
      size: info.size,
      pageSize,
      pages: r.pages,
      resident: r.resident,
      percent: Number(percent(r.resident, r.pages).slice(0, -1)),
      allocated,
      sparse,
      filesystem: fsName,
      blockSize: fs.bsize,
    });
    return 0;
  }
  const lines = [
    ['path', path],
    ['size', `${formatBytes(info.size)} (${info.size.toLocaleString('en')} bytes)`],
    ['pages', `${r.pages.toLocaleString('en')} of ${formatBytes(pageSize)}`],
    ['resident', `${r.resident.toLocaleString('en')} pages, ${percent(r.resident, r.pages)}  ${r.picture}`],
    [
      'allocated',
      `${formatBytes(allocated)}${sparse ? ' (sparse: holes read as zeros and take disk space when written)' : ''}`,
    ],
    ['filesystem', `${fsName}, block size ${fs.bsize}`],
  ];
  for (const [name, value] of lines) process.stdout.write(`${`${name}:`.padEnd(12)}${value}\n`);
  return 0;
}
