/**
 * Case 7, array files: open a safetensors file of almost 2 GiB and read one tensor, and open a
 * 1 GiB .npy file, each in a fresh process: memmap against fs.readFileSync plus parsing,
 * against reading only the tensor's range with fs.read, and against numpy opening the same
 * file by mmap from Python (the reference). Time to the first element and the RssAnon it
 * costs; then summing a 256 MiB Float32 tensor through memmap's view against a heap copy.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createNpy, openSafetensors } from '../../src/index.js';
import {
  benchDir,
  type CaseResult,
  type Context,
  entry,
  goal,
  kindOf,
  median,
  type Row,
  record,
  scratch,
  stats,
  warm,
} from '../lib/harness.js';
import type { Peers } from '../lib/peers.js';

const MiB = 1024 ** 2;
/** A Float32 pattern to fill the files with: small integers, so that sums stay exact-ish and never NaN. */
function patternChunk(bytes: number): Buffer {
  const values = new Float32Array(bytes / 4);
  for (let i = 0; i < values.length; i++) values[i] = (i % 1000) * 0.25;
  return Buffer.from(values.buffer);
}

/**
 * A safetensors file of two F32 tensors, 'filler.weight' first and then 'layer.weight' of
 * `tensorBytes`, `total` bytes in all (less the header's rounding).
 */
function safetensorsFile(total: number, tensorBytes: number): string {
  mkdirSync(scratch, { recursive: true });
  const path = join(scratch, `model-${total}.safetensors`);
  const headerRoom = 256;
  const filler = Math.floor((total - 8 - headerRoom - tensorBytes) / 4) * 4;
  const json = JSON.stringify({
    __metadata__: { format: 'pt' },
    'filler.weight': { dtype: 'F32', shape: [filler / 4], data_offsets: [0, filler] },
    'layer.weight': { dtype: 'F32', shape: [tensorBytes / 4], data_offsets: [filler, filler + tensorBytes] },
  });
  const header = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  header.write(json);
  const size = 8 + header.length + filler + tensorBytes;
  if (existsSync(path) && statSync(path).size === size) return path;
  const fd = openSync(path, 'w');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  writeSync(fd, prefix, 0, 8, 0);
  writeSync(fd, header, 0, header.length, 8);
  const chunk = patternChunk(64 * MiB);
  const start = 8 + header.length;
  for (let done = 0; done < filler + tensorBytes; done += chunk.length) {
    writeSync(fd, chunk, 0, Math.min(chunk.length, filler + tensorBytes - done), start + done);
  }
  closeSync(fd);
  return path;
}

/** A 1-D float32 .npy file of `bytes` bytes of data, made by createNpy. */
function npyFile(bytes: number): string {
  mkdirSync(scratch, { recursive: true });
  const path = join(scratch, `array-${bytes}.npy`);
  if (existsSync(path)) return path;
  using array = createNpy(path, 'float32', [bytes / 4]);
  const chunk = new Float32Array(patternChunk(64 * MiB).buffer);
  const data = array.data as Float32Array;
  for (let i = 0; i < data.length; i += chunk.length)
    data.set(chunk.subarray(0, Math.min(chunk.length, data.length - i)), i);
  array.mapping.flush();
  return path;
}

interface Opened {
  ms: number;
  rssAnon: number;
  check: number;
}

function openInChild(how: string, path: string, name: string): Opened {
  const output = execFileSync(process.execPath, [join(benchDir, 'children', 'array-open.mjs'), how, path, name], {
    encoding: 'utf8',
    env: { ...process.env, MEMMAP: entry },
  });
  return JSON.parse(output.trim().split('\n').pop() ?? '{}') as Opened;
}

function openInPython(how: string, path: string, name: string): Opened | null {
  try {
    const output = execFileSync('python3', [join(benchDir, 'children', 'array-open.py'), how, path, name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return JSON.parse(output.trim()) as Opened;
  } catch {
    return null;
  }
}

// One loop per subject, so that neither pays for the other's shape at a shared call site.
function sumView(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] as number;
  return s;
}
function sumHeap(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] as number;
  return s;
}

function rowsOf(samples: Record<string, number[]>, unit: string, notes: Record<string, string> = {}): Row[] {
  return Object.entries(samples).map(([subject, values]) => ({
    subject,
    kind: subject.startsWith('Python') ? 'c' : kindOf(subject),
    value: values.every(Number.isFinite) ? stats(values) : null,
    unit,
    ...(notes[subject] && !values.every(Number.isFinite) ? { note: notes[subject] } : {}),
  }));
}

export async function arrayFiles(ctx: Context, _peers: Peers): Promise<CaseResult[]> {
  // Just under 2 GiB: fs.readFileSync refuses files of 2 GiB and more on Node 20 (ERR_FS_FILE_TOO_LARGE).
  const stTotal = ctx.quick ? 256 * MiB : 2048 * MiB - 4 * MiB;
  const tensorBytes = ctx.quick ? 64 * MiB : 256 * MiB;
  const npyBytes = ctx.quick ? 128 * MiB : 1024 * MiB;
  ctx.log('array files: writing the files...');
  const stPath = safetensorsFile(stTotal, tensorBytes);
  const npyPath = npyFile(npyBytes);
  warm(stPath);
  warm(npyPath);
  const name = 'layer.weight';

  ctx.log('array files: opening...');
  const stTime: Record<string, number[]> = {};
  const stRss: Record<string, number[]> = {};
  const npyTime: Record<string, number[]> = {};
  const npyRss: Record<string, number[]> = {};
  type Way = [time: Record<string, number[]>, rss: Record<string, number[]>, subject: string, run: () => Opened | null];
  const st = (how: string) => () => openInChild(how, stPath, name);
  const npy = (how: string) => () => openInChild(how, npyPath, '');
  const ways: Way[] = [
    [stTime, stRss, 'memmap openSafetensors + first element', st('memmap-safetensors')],
    [stTime, stRss, 'memmap openSafetensors { shared: true } + first element', st('memmap-safetensors-shared')],
    [stTime, stRss, 'fs.readFileSync + JSON.parse + Float32Array', st('readFileSync-safetensors')],
    [stTime, stRss, "fs.read of the header and the tensor's range", st('fs.read-safetensors')],
    [stTime, stRss, 'Python json + np.memmap (reference)', () => openInPython('numpy-safetensors', stPath, name)],
    [npyTime, npyRss, 'memmap openNpy + first element', npy('memmap-npy')],
    [npyTime, npyRss, 'memmap openNpy { shared: true } + first element', npy('memmap-npy-shared')],
    [npyTime, npyRss, 'fs.readFileSync + header + Float32Array', npy('readFileSync-npy')],
    [npyTime, npyRss, "Python np.load(mmap_mode='r') (reference)", () => openInPython('numpy-npy', npyPath, '')],
  ];
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const [time, rss, subject, run] of ways) {
      const opened = run();
      record(time, subject, opened?.ms ?? Number.NaN);
      record(rss, subject, opened ? opened.rssAnon / MiB : Number.NaN);
    }
  }

  ctx.log('array files: summing a tensor...');
  const sums: Record<string, number[]> = {};
  {
    using model = openSafetensors(stPath);
    const view = model.get(name)?.data as Float32Array;
    const heap = new Float32Array(view); // a copy on the heap
    sumView(view); // fault every page in once, and warm both loops up
    sumHeap(heap);
    for (let rep = 0; rep < Math.max(3, ctx.reps); rep++) {
      let start = process.hrtime.bigint();
      const a = sumView(view);
      record(sums, 'memmap view (openSafetensors)', Number(process.hrtime.bigint() - start) / view.length);
      start = process.hrtime.bigint();
      const b = sumHeap(heap);
      record(sums, 'heap Float32Array', Number(process.hrtime.bigint() - start) / heap.length);
      if (a !== b) throw new Error(`the sums differ: ${a} and ${b}`);
    }
  }

  const find = (rows: Row[], prefix: string) => rows.find((r) => r.subject.startsWith(prefix));
  const pythonNote = 'python3 with numpy is not installed';
  const results: CaseResult[] = [];
  for (const [id, title, time, rss, memmapName, plainName, size] of [
    [
      'array-safetensors-open',
      'safetensors: open and read the first element of one tensor',
      stTime,
      stRss,
      'memmap',
      'fs.readFileSync',
      stTotal,
    ],
    ['array-npy-open', '.npy: open and read the first element', npyTime, npyRss, 'memmap', 'fs.readFileSync', npyBytes],
  ] as const) {
    const timeRows = rowsOf(time, 'ms to the first element', {
      'Python json + np.memmap (reference)': pythonNote,
      "Python np.load(mmap_mode='r') (reference)": pythonNote,
    });
    const rssRows = rowsOf(rss, 'MiB of RssAnon after');
    const speedup = median(find(timeRows, plainName)) / median(find(timeRows, memmapName));
    const rssShare = median(find(rssRows, memmapName)) / median(find(rssRows, plainName));
    const sizeText = `${(size / 1024 ** 3).toFixed(2)} GiB`;
    results.push({
      id,
      title: `${title} (${sizeText}, cached)`,
      method: `Each subject runs in a fresh process on a ${sizeText} file in the page cache; the time runs from before the open to after the first element is read (the Python reference is timed inside the interpreter, its start not counted). ${ctx.reps} runs, median.`,
      lowerIsBetter: true,
      rows: timeRows,
      goals: [goal(`time to the first element at least 100x faster than ${plainName}`, speedup, 'min', 100)],
      notes: [
        "The goal is measured on memmap's default, whose views are over the mapping's Buffer: V8 starts a garbage collection when a Buffer over more than 64 MiB is first made, a few milliseconds of the figure. `shared: true` views the SharedArrayBuffer instead (no collection; its views read zeros after close() instead of being detached).",
      ],
    });
    results.push({
      id: `${id}-rss`,
      title: `${title}: anonymous memory (RssAnon) it costs`,
      method:
        'RssAnon from /proc/self/status after the first element, less before the open, in the same fresh process.',
      lowerIsBetter: true,
      rows: rssRows,
      goals: [goal(`RssAnon under 5% of ${plainName}'s`, rssShare, 'max', 0.05)],
      notes: [],
    });
  }
  const sumRows = rowsOf(sums, 'ns per element');
  results.push({
    id: 'array-sum',
    title: `Summing a ${tensorBytes / MiB} MiB Float32 tensor (cached, pages faulted in)`,
    method:
      'A plain for loop over the Float32Array view openSafetensors returns, against the same loop over a heap copy; every page was touched once before timing.',
    lowerIsBetter: true,
    rows: sumRows,
    goals: [
      goal(
        'summing through the view within 1.5x of a heap Float32Array',
        median(find(sumRows, 'memmap')) / median(find(sumRows, 'heap')),
        'max',
        1.5,
      ),
    ],
    notes: [],
  });
  return results;
}
