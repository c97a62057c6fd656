/**
 * What the subcommands of the `memmap` command share: usage errors, number formatting, the
 * progress bar, walking the FILE arguments, and reporting per-file failures.
 */
import { type Dirent, readdirSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';

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
  return `${whole === 0 ? '100' : ((100 * part) / whole).toFixed(part === whole || part === 0 ? 0 : 1)}%`;
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

/**
 * The regular files the FILE arguments name: a directory is walked when `recursive`, and is an
 * error otherwise. Symbolic links to directories are not followed (no loops); links to files
 * are. Problems go to `failed` and the walk goes on.
 */
export function collectFiles(
  paths: string[],
  recursive: boolean,
  failed: (path: string, error: Error) => void,
): string[] {
  const files: string[] = [];
  const visit = (path: string, top: boolean) => {
    let info: Stats;
    try {
      info = statSync(path);
    } catch (error) {
      failed(path, error as Error);
      return;
    }
    if (info.isDirectory()) {
      if (!recursive) {
        failed(path, new Error(`${path} is a directory (use -r to walk it)`));
        return;
      }
      let entries: Dirent[];
      try {
        entries = readdirSync(path, { withFileTypes: true });
      } catch (error) {
        failed(path, error as Error);
        return;
      }
      for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        // Links to files are followed; links to directories are not, so a walk cannot loop.
        if (entry.isSymbolicLink() && !statSync(join(path, entry.name), { throwIfNoEntry: false })?.isFile()) continue;
        visit(join(path, entry.name), false);
      }
    } else if (info.isFile()) {
      files.push(path);
    } else if (top) {
      failed(path, new Error(`${path} is not a regular file`));
    }
  };
  for (const path of paths) visit(path, true);
  return files;
}

/** Collects per-file failures: printed as they happen, and the exit code at the end. */
export class Failures {
  readonly list: { path: string; message: string }[] = [];

  constructor(private readonly quiet = false) {}

  add = (path: string, error: Error): void => {
    const message = error.message.startsWith(path) ? error.message : `${path}: ${error.message}`;
    this.list.push({ path, message });
    if (!this.quiet) process.stderr.write(`memmap: ${message}\n`);
  };

  get code(): number {
    return this.list.length > 0 ? 1 : 0;
  }
}

/** Writes a value as one line of JSON. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
