/** `memmap checksum FILE`: the unsigned 64-bit sum of a file's bytes, through a mapping. */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { sumFile } from '../../src/internal/checksum.js';
import { directoryError, progressBar, UsageError } from '../common.js';

const PROGRESS_ABOVE = 256 * 1024 * 1024;

export const usage = `Usage: memmap checksum [--json] FILE

Maps FILE read-only with sequential advice and adds every byte into an unsigned 64-bit
total, printed as "Checksum: N": the same number as a C program that maps the file and adds
its bytes. An empty file prints "Empty file". A progress bar is shown on a terminal for files
over 256 MiB.

Options:
  --json       print {"path", "bytes", "checksum", "seconds"} instead
  -h, --help   show this help
`;

export function checksum(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'checksum needs a FILE' : 'checksum takes exactly one FILE');
  }
  const path = positionals[0] as string;
  if (statSync(path).isDirectory()) throw directoryError(path, false);
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
  return 0;
}
