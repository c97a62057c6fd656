/**
 * What the subcommands of the `memmap` command share: usage errors, number formatting, the
 * progress bar, walking the FILE arguments, and reporting per-file failures.
 */
import { closeSync, type Dirent, fstatSync, openSync, readdirSync, type Stats, statSync } from 'node:fs';
import { sep } from 'node:path';

/** A mistake in the command line: exit code 2. */
export class UsageError extends Error {}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function percent(part: number, whole: number): string {
  // An empty file has no page to be resident: 0%, not 100%.
  return `${whole === 0 ? '0' : ((100 * part) / whole).toFixed(part === whole || part === 0 ? 0 : 1)}%`;
}

/** The one message for a directory given where a file is wanted; `walk` adds the -r hint. */
export function directoryError(path: string, walk: boolean): Error {
  return Object.assign(new Error(`${path} is a directory${walk ? ' (use -r to walk it)' : ''}`), {
    code: 'EISDIR',
    path,
  });
}

let jsonErrors = false;

/** With --json, errors are written as `{ "error": { code, message, path } }` lines on stderr. */
export function useJsonErrors(on: boolean): void {
  jsonErrors = on;
}

/** Writes one error to stderr, as text (`memmap: message`) or, with --json, as JSON. */
export function reportError(error: Error, path?: string): void {
  const err = error as NodeJS.ErrnoException;
  const where = path ?? err.path;
  // The path once: Node's own messages already name it ('..., stat 'x''), ours start with it.
  const named = where === undefined || err.message.includes(where);
  const message = named ? err.message : `${where}: ${err.message}`;
  if (jsonErrors) {
    process.stderr.write(`${JSON.stringify({ error: { code: err.code ?? 'ERROR', message, path: where ?? null } })}\n`);
  } else {
    process.stderr.write(`memmap: ${message}\n`);
  }
}

/** A one-line progress bar on stderr, redrawn in place. */
export function progressBar(label: string): { update(done: number, total: number): void; end(): void } {
  const started = process.hrtime.bigint();
  const width = 30;
  return {
    update(done, total) {
      const fraction = total === 0 ? 1 : done / total;
      const filled = Math.round(fraction * width);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const rate = seconds > 0 ? `${formatBytes(done / seconds)}/s` : '';
      process.stderr.write(
        `\r${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${rate}   `,
      );
    },
    end() {
      process.stderr.write('\r\x1b[K');
    },
  };
}

/** A regular file the FILE arguments reach. */
export interface FoundFile {
  /** The path as shown and printed; bytes that are not UTF-8 appear as \xNN. */
  path: string;
  /** What opens it: the path itself, or its bytes when they are not valid UTF-8. */
  target: string | Buffer;
}

/** A path as bytes, shown as a string: itself if it is UTF-8, else with \xNN for other bytes. */
function shown(path: Buffer): string | null {
  const text = path.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(path)) return null;
  let out = '';
  for (const byte of path)
    out += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  return out;
}

/**
 * The regular files the FILE arguments name: a directory is walked when `recursive`, and is an
 * error otherwise. Symbolic links to directories are not followed (no loops); links to files
 * are. Names are read as bytes, so that a name which is not valid UTF-8 is reached too.
 * Problems (a symbolic link loop, a folder that cannot be read) go to `failed`, entry by
 * entry, and the walk goes on.
 */
export function collectFiles(
  paths: string[],
  recursive: boolean,
  failed: (path: string, error: Error) => void,
): FoundFile[] {
  const files: FoundFile[] = [];
  const found = (path: string | Buffer): FoundFile => {
    if (typeof path === 'string') return { path, target: path };
    const odd = shown(path);
    return odd === null ? { path: path.toString('utf8'), target: path.toString('utf8') } : { path: odd, target: path };
  };
  const visit = (path: string | Buffer, top: boolean) => {
    const file = found(path);
    let info: Stats;
    try {
      info = statSync(file.target);
    } catch (error) {
      failed(file.path, error as Error);
      return;
    }
    if (info.isDirectory()) {
      if (!recursive) {
        failed(file.path, directoryError(file.path, true));
        return;
      }
      let entries: Dirent<Buffer>[];
      try {
        entries = readdirSync(file.target, { withFileTypes: true, encoding: 'buffer' });
      } catch (error) {
        failed(file.path, error as Error);
        return;
      }
      const base = typeof path === 'string' ? Buffer.from(path) : path;
      for (const entry of entries.sort((a, b) => Buffer.compare(a.name, b.name))) {
        const child = Buffer.concat([base, Buffer.from(sep), entry.name]);
        if (entry.isSymbolicLink()) {
          // Links to files are followed; links to directories are not, so a walk cannot loop.
          // A link that leads nowhere is passed over; one that cannot be followed (a loop,
          // an unreadable folder on its way) is reported.
          let target: Stats | undefined;
          try {
            target = statSync(child, { throwIfNoEntry: false });
          } catch (error) {
            failed(found(child).path, error as Error);
            continue;
          }
          if (!target?.isFile()) continue;
        }
        visit(child, false);
      }
    } else if (info.isFile()) {
      files.push(file);
    } else if (top) {
      failed(file.path, Object.assign(new Error(`${file.path} is not a regular file`), { path: file.path }));
    }
  };
  for (const path of paths) visit(path, true);
  return files;
}

/**
 * Runs `body` on what opens a found file: its path, or for a name that is not valid UTF-8 a
 * descriptor opened here (memmap takes paths as strings) and closed afterwards.
 */
export function withFile<T>(file: FoundFile, body: (target: string | number, size: number) => T): T {
  if (typeof file.target === 'string') return body(file.target, statSync(file.target).size);
  const fd = openSync(file.target, 'r');
  try {
    return body(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

/** Collects per-file failures: printed as they happen, and the exit code at the end. */
export class Failures {
  readonly list: { path: string; message: string }[] = [];

  constructor(private readonly quiet = false) {}

  add = (path: string, error: Error): void => {
    const message = error.message.includes(path) ? error.message : `${path}: ${error.message}`;
    this.list.push({ path, message });
    if (!this.quiet) reportError(error, path);
  };

  get code(): number {
    return this.list.length > 0 ? 1 : 0;
  }
}

/** Writes a value as one line of JSON. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
