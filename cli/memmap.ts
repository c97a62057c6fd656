#!/usr/bin/env node
/**
 * The `memmap` command.
 *
 * Exit codes: 0 success, 1 a runtime error (one line on stderr), 2 a usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { sumFile } from '../src/internal/checksum.js';

const PROGRESS_ABOVE = 256 * 1024 * 1024;

const USAGE = `Usage: memmap <command> [options]

Commands:
  checksum FILE   sum every byte of FILE through a read-only mapping

Options:
  -h, --help      show help (also: memmap <command> --help)
  -v, --version   show the version

Exit codes: 0 success, 1 runtime error, 2 usage error.
`;

const CHECKSUM_USAGE = `Usage: memmap checksum [--json] FILE

Maps FILE read-only with sequential advice and adds every byte into an unsigned 64-bit
total, printed as "Checksum: N": the same number as a C program that maps the file and adds
its bytes. An empty file prints "Empty file". A progress bar is shown on a terminal for files
over 256 MiB.

Options:
  --json       print {"path", "bytes", "checksum", "seconds"} instead
  -h, --help   show this help
`;

class UsageError extends Error {}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A one-line progress bar on stderr, redrawn in place. */
function progressBar(label: string): { update(done: number, total: number): void; end(): void } {
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

function checksum(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(CHECKSUM_USAGE);
    return;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'checksum needs a FILE' : 'checksum takes exactly one FILE');
  }
  const path = positionals[0] as string;
  const started = process.hrtime.bigint();
  const bar = process.stderr.isTTY && !values.json ? progressBar(path) : null;
  let shown = false;
  const result = sumFile(path, (done, total) => {
    if (bar === null || total <= PROGRESS_ABOVE) return;
    shown = true;
    bar.update(done, total);
  });
  if (shown) bar?.end();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (values.json) {
    // The sum is an unsigned 64-bit integer: written as a JSON number with every digit.
    const json = JSON.stringify({ path, bytes: result.bytes, checksum: '@', seconds: Number(seconds.toFixed(6)) });
    process.stdout.write(`${json.replace('"@"', result.sum.toString())}\n`);
  } else if (result.bytes === 0) {
    process.stdout.write('Empty file\n');
  } else {
    process.stdout.write(`Checksum: ${result.sum}\n`);
  }
}

function main(argv: string[]): number {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return 0;
      case '-v':
      case '--version':
        process.stdout.write(`${version()}\n`);
        return 0;
      case 'checksum':
        checksum(rest);
        return 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (error instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`memmap: ${err.message}\nRun 'memmap --help' for usage.\n`);
      return 2;
    }
    process.stderr.write(`memmap: ${err.message}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
