/** `memmap shm ls | rm NAME... | cat NAME`: the named shared memory objects of this user. */
import { readSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SharedMemory } from '../../src/index.js';
import { Failures, formatBytes, printJson, UsageError } from '../common.js';

export const usage = `Usage: memmap shm ls [--json]
       memmap shm rm [--json] NAME...
       memmap shm cat [--json] NAME

The named POSIX shared memory objects (shm_open) this user owns, as memmap's SharedMemory and
C programs create them: list them with their sizes and permissions, remove names, or write an
object's bytes to standard output. NAME is '/name' (the leading '/' may be left out).

Options:
  --json       ls: an array of {"name", "size", "mode"}; rm: {"removed": [...]};
               cat: {"name", "size", "base64"} instead of the raw bytes
  -h, --help   show this help
`;

/** Bytes written per step: a multiple of 3, so that base64 pieces join into one string. */
const PIECE = 3 * 16 * 1024 * 1024;

/**
 * Writes the object's bytes to standard output, or one JSON line with them in base64, a piece
 * at a time: one Buffer holds at most 4 GiB on Node 20, and one string far less. The pieces
 * are read from the object's descriptor rather than through a mapping, so that the holes of a
 * sparse object read as zeros without memory being allocated for them.
 */
function cat(name: string, object: SharedMemory, json: boolean): void {
  const size = object.length;
  if (json) process.stdout.write(`{"name":${JSON.stringify(name)},"size":${size},"base64":"`);
  for (let offset = 0; offset < size; ) {
    // A fresh Buffer for each piece: the write may finish after the next piece is read.
    const piece = Buffer.allocUnsafe(Math.min(PIECE, size - offset));
    let filled = 0;
    while (filled < piece.length) {
      const n = readSync(object.fd, piece, filled, piece.length - filled, offset + filled);
      if (n === 0) throw new Error(`${name} shrank to ${offset + filled} bytes while it was read`);
      filled += n;
    }
    process.stdout.write(json ? piece.toString('base64') : piece);
    offset += piece.length;
  }
  if (json) process.stdout.write('"}\n');
}

function nameOf(arg: string): string {
  return arg.startsWith('/') ? arg : `/${arg}`;
}

export function shm(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  const [action, ...names] = positionals;
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  switch (action) {
    case 'ls': {
      if (names.length > 0) throw new UsageError('shm ls takes no NAME');
      const list = SharedMemory.list();
      if (values.json) printJson(list);
      else if (list.length === 0) process.stdout.write('no shared memory objects\n');
      else {
        const width = Math.max(...list.map((o) => o.name.length), 4);
        process.stdout.write(`${'NAME'.padEnd(width)}  ${'SIZE'.padStart(10)}  MODE\n`);
        for (const o of list) {
          process.stdout.write(
            `${o.name.padEnd(width)}  ${formatBytes(o.size).padStart(10)}  ${o.mode.toString(8).padStart(4, '0')}\n`,
          );
        }
      }
      return 0;
    }
    case 'rm': {
      if (names.length === 0) throw new UsageError('shm rm needs at least one NAME');
      const failures = new Failures();
      const removed: string[] = [];
      for (const arg of names) {
        try {
          SharedMemory.unlink(nameOf(arg));
          removed.push(nameOf(arg));
        } catch (error) {
          failures.add(nameOf(arg), error as Error);
        }
      }
      if (values.json) printJson({ removed });
      return failures.code;
    }
    case 'cat': {
      if (names.length !== 1) throw new UsageError('shm cat takes exactly one NAME');
      const name = nameOf(names[0] as string);
      const object = SharedMemory.open(name, { readOnly: true });
      try {
        cat(name, object, values.json === true);
      } finally {
        object.close();
      }
      return 0;
    }
    case undefined:
      throw new UsageError('shm needs an action: ls, rm or cat');
    default:
      throw new UsageError(`unknown shm action '${action}' (ls, rm or cat)`);
  }
}
