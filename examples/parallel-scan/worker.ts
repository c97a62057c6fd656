/**
 * One worker of the parallel scan: counts the ERROR lines that start in its range of the
 * mapping's SharedArrayBuffer and keeps the last five. Nothing is copied: the worker's Buffer
 * is a view of the same mapped memory as the main thread's.
 */
import { parentPort, workerData } from 'node:worker_threads';

const { shared, start, end } = workerData as { shared: SharedArrayBuffer; start: number; end: number };
const NEWLINE = 0x0a;
const ERROR = Buffer.from('ERROR');

// Buffer#indexOf answers in 32 bits, so a view is at most 2 GiB (scan.ts makes ranges of at
// most 1 GiB; a line may run past the range's end, into the rest of the view).
const from = Math.max(0, start - 1);
const bytes = Buffer.from(shared, from, Math.min(shared.byteLength - from, 2 ** 31 - 1));
const limit = end - from; // lines that start before this offset of `bytes` are ours

// A line belongs to the range it starts in: skip the one that `start` cuts (lines() does too).
let pos = 0;
if (start > 0) {
  const newline = bytes.indexOf(NEWLINE);
  pos = newline < 0 ? bytes.length : newline + 1;
}
let count = 0;
const last: string[] = [];
while (pos < limit) {
  // Search for the word, not for every line: most lines are never looked at one by one.
  const hit = bytes.indexOf(ERROR, pos);
  if (hit < 0) break;
  const lineStart = bytes.lastIndexOf(NEWLINE, hit) + 1;
  if (lineStart >= limit) break;
  let lineEnd = bytes.indexOf(NEWLINE, hit);
  if (lineEnd < 0) lineEnd = bytes.length;
  count++;
  last.push(bytes.toString('utf8', lineStart, bytes[lineEnd - 1] === 0x0d ? lineEnd - 1 : lineEnd));
  if (last.length > 5) last.shift();
  pos = lineEnd + 1;
}
parentPort?.postMessage({ count, last });
