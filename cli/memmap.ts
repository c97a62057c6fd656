#!/usr/bin/env node
/**
 * The `memmap` command: one subcommand per file in cli/commands/.
 *
 * Exit codes: 0 success, 1 a runtime error (one line on stderr per problem), 2 a usage error.
 */
import { readFileSync } from 'node:fs';
import { checksum, usage as checksumUsage } from './commands/checksum.js';
import { evictCommand, usage as fileUsage, lock, residency, stat, touch } from './commands/files.js';
import { shm, usage as shmUsage } from './commands/shm.js';
import { reportError, UsageError, useJsonErrors } from './common.js';

const USAGE = `Usage: memmap <command> [options]

Commands:
  checksum FILE         sum every byte of FILE through a read-only mapping
  residency FILE...     how much of each file is in the page cache, and where
  touch FILE...         read files into the page cache
  evict FILE...         drop files from the page cache
  lock FILE...          lock files in RAM until interrupted
  stat FILE             size, pages, residency, disk use and file system of a file
  shm ls|rm|cat         list, remove or print named shared memory objects

Options:
  -h, --help      show help (also: memmap <command> --help)
  -v, --version   show the version

Directories are walked with -r; every command takes --json.
Exit codes: 0 success, 1 runtime error, 2 usage error.
`;

const COMMANDS: Record<string, { run(args: string[]): number | Promise<number>; usage: string }> = {
  checksum: { run: checksum, usage: checksumUsage },
  residency: { run: residency, usage: fileUsage.residency },
  touch: { run: touch, usage: fileUsage.touch },
  evict: { run: evictCommand, usage: fileUsage.evict },
  lock: { run: lock, usage: fileUsage.lock },
  stat: { run: stat, usage: fileUsage.stat },
  shm: { run: shm, usage: shmUsage },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Errors that mean the command line was wrong, not the world. */
function isUsageError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return error instanceof UsageError || code?.startsWith('ERR_PARSE_ARGS') === true || code === 'ERR_INVALID_ARG_VALUE';
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  useJsonErrors(argv.includes('--json'));
  try {
    switch (command) {
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(rest[0] && COMMANDS[rest[0]] ? (COMMANDS[rest[0]]?.usage as string) : USAGE);
        return 0;
      case '-v':
      case '--version':
        process.stdout.write(`${version()}\n`);
        return 0;
      default: {
        const found = COMMANDS[command];
        if (!found) throw new UsageError(`unknown command '${command}'`);
        return await found.run(rest);
      }
    }
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (isUsageError(error)) {
      const unknown = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'([^']+)'/.exec(err.message)?.[1] : undefined;
      const usage = Object.assign(
        new Error(unknown ? `unknown option '${unknown}' for memmap ${command}` : err.message),
        { code: err.code ?? 'ERR_USAGE' },
      );
      reportError(usage);
      if (!argv.includes('--json')) process.stderr.write("Run 'memmap --help' for usage.\n");
      return 2;
    }
    reportError(err);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
