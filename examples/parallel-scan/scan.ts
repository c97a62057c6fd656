/**
 * Count the ERROR lines of a big log and print the last five, on every core:
 *
 *   npm run example:parallel-scan -- /var/log/big.log     (or no path: a sample log is made)
 *
 * The main thread maps the file once and hands its SharedArrayBuffer to the workers: shared,
 * not copied, so four workers on a 1 GiB log use the page cache's copy of it and a few MiB of
 * their own. Each worker takes one range; a line belongs to the range it starts in, so every
 * line is counted once. The same split works with `mapping.lines({ start, end })` in each
 * worker (each maps the file itself; the kernel shares the pages).
 */
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { mapFile } from '../../src/index.js';

export interface ScanResult {
  count: number;
  last: string[];
}

function scanRange(shared: SharedArrayBuffer, start: number, end: number): Promise<ScanResult> {
  return new Promise((done, fail) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { shared, start, end } });
    worker.once('message', done);
    worker.once('error', fail);
    worker.once('exit', (code) => {
      if (code !== 0) fail(new Error(`a scan worker exited with ${code}`));
    });
  });
}

/** Counts the lines of `path` that contain ERROR, with `threads` workers, and the last five. */
export async function scanErrors(path: string, threads = availableParallelism()): Promise<ScanResult> {
  const log = mapFile(path, { advice: 'sequential' });
  try {
    const shared = log.sharedBuffer();
    const parts = Math.max(1, threads, Math.ceil(log.length / 2 ** 30));
    const size = Math.ceil(log.length / parts);
    const results = await Promise.all(
      Array.from({ length: parts }, (_, i) =>
        scanRange(shared, Math.min(log.length, i * size), Math.min(log.length, (i + 1) * size)),
      ),
    );
    return {
      count: results.reduce((n, r) => n + r.count, 0),
      last: results.flatMap((r) => r.last).slice(-5),
    };
  } finally {
    log.close(); // after every worker finished: the views they had read zeros from now on
  }
}

async function main(): Promise<void> {
  let path = process.argv[2];
  if (path === undefined) {
    const { writeFileSync } = await import('node:fs');
    path = join(tmpdir(), `memmap-parallel-scan-${process.pid}.log`);
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++) lines.push(`${i} ${i % 97 === 0 ? 'ERROR upstream timed out' : 'INFO served'}\n`);
    writeFileSync(path, lines.join(''));
  }
  const started = performance.now();
  const { count, last } = await scanErrors(path);
  console.log(`${count} ERROR lines in ${(performance.now() - started).toFixed(0)} ms; the last five:`);
  for (const line of last) console.log(`  ${line}`);
  if (process.argv[2] === undefined) (await import('node:fs')).rmSync(path);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
