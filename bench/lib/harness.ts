/**
 * What every benchmark case shares: where things live, the machine it ran on, timing and
 * statistics, the C references, child processes, and the data files.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package root (this file runs from dist/bench/lib/). */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const benchDir = join(root, 'bench');
export const resultsDir = join(benchDir, 'results');
export const entry = pathToFileURL(join(root, 'dist', 'src', 'index.js')).href;
/** Data files and compiled C references: outside the repository, removed at the end. */
export const scratch = join(tmpdir(), 'memmap-bench');

export interface Stats {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median: how much the repetitions disagreed. */
  spread: number;
  samples: number[];
}

export function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  const min = sorted[0] ?? Number.NaN;
  const max = sorted[sorted.length - 1] ?? Number.NaN;
  return { median, min, max, spread: median > 0 ? (max - min) / median : 0, samples };
}

/** One measured subject of a case: a median over repetitions and what it is. */
export interface Row {
  subject: string;
  kind: 'memmap' | 'node' | 'peer' | 'c';
  value: Stats | null;
  unit: string;
  /** Why there is no figure, or anything else a reader should know about this row. */
  note?: string;
}

export interface Goal {
  text: string;
  /** The measured ratio (or figure) the goal is about. */
  measured: number;
  target: number;
  /** 'min': measured must be at least target; 'max': at most. */
  bound: 'min' | 'max';
  met: boolean;
}

export interface CaseResult {
  id: string;
  title: string;
  /** What was measured, in one paragraph. */
  method: string;
  lowerIsBetter: boolean;
  rows: Row[];
  goals: Goal[];
  notes: string[];
}

export interface Context {
  quick: boolean;
  /** Repetitions per subject. */
  reps: number;
  log(line: string): void;
}

export function goal(text: string, measured: number, bound: 'min' | 'max', target: number): Goal {
  return { text, measured, target, bound, met: bound === 'min' ? measured >= target : measured <= target };
}

/** Adds a sample to `table[name]`. */
export function record(table: Record<string, number[]>, name: string, value: number): void {
  const samples = table[name] ?? [];
  samples.push(value);
  table[name] = samples;
}

/** The npm peers' names, as subjects start with them. */
const PEERS = ['@riaskov/mmap-io', 'shm-typed-array'];

/** The kind of a subject, from how its name starts: memmap, an npm peer, C, or Node. */
export function kindOf(subject: string): Row['kind'] {
  if (subject.startsWith('memmap')) return 'memmap';
  if (PEERS.some((peer) => subject.startsWith(peer))) return 'peer';
  if (subject.startsWith('C ')) return 'c';
  return 'node';
}

/** The median of a row, or NaN when it has none. */
export function median(row: Row | undefined): number {
  return row?.value?.median ?? Number.NaN;
}

/** The machine, for the record next to every figure. */
export function machine(): Record<string, string | number> {
  const fsType = spawnSync('stat', ['-f', '-c', '%T', tmpdir()], { encoding: 'utf8' }).stdout.trim();
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    kernel: release(),
    filesystem: `${fsType} (${tmpdir()})`,
    node: process.version,
    date: new Date().toISOString(),
  };
}

/** A pseudo-random sequence identical to the C references' (xorshift32). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Compiles bench/c/NAME.c with gcc at -O2 (or the given flags) into the scratch folder, once. */
export function compileC(name: string, flags: string[] = ['-O2']): string {
  mkdirSync(scratch, { recursive: true });
  const output = join(scratch, `${name}${flags.join('').replace(/[^a-zA-Z0-9]/g, '')}`);
  if (!existsSync(output)) {
    execFileSync('gcc', [...flags, '-Wall', '-o', output, join(benchDir, 'c', `${name}.c`)]);
  }
  return output;
}

/** Runs a C reference and parses the JSON line it prints. */
export function runC<T>(binary: string, args: string[]): T {
  return JSON.parse(execFileSync(binary, args, { encoding: 'utf8' })) as T;
}

/** Runs bench/children/NAME.mjs and parses the JSON it prints last. */
export function runChild<T>(name: string, args: string[]): T {
  const output = execFileSync(process.execPath, ['--expose-gc', join(benchDir, 'children', `${name}.mjs`), ...args], {
    encoding: 'utf8',
    env: { ...process.env, MEMMAP: entry },
    maxBuffer: 64 * 1024 * 1024,
  });
  const last = output.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as T;
}

/** Starts bench/children/NAME.mjs with a pipe on stdin, for cases that hold children alive. */
export function startChild(name: string, args: string[]) {
  return spawn(process.execPath, [join(benchDir, 'children', `${name}.mjs`), ...args], {
    env: { ...process.env, MEMMAP: entry },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

/**
 * A data file of `size` bytes in the scratch folder, made once per run: pseudo-random bytes
 * written through fs, which also leaves the file in the page cache ("cached" in the cases).
 */
export function dataFile(name: string, size: number): string {
  mkdirSync(scratch, { recursive: true });
  const path = join(scratch, name);
  if (existsSync(path) && statSync(path).size === size) return path;
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024 * 1024);
  const next = xorshift32(12345);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(next(), i);
  for (let written = 0; written < size; written += chunk.length) {
    writeSync(fd, chunk, 0, Math.min(chunk.length, size - written), written);
  }
  closeSync(fd);
  return path;
}

/** Reads a file once through fs so that every page is in the page cache. */
export function warm(path: string): void {
  const fd = openSync(path, 'r');
  const chunk = Buffer.alloc(16 * 1024 * 1024);
  for (let position = 0, n = 1; n > 0; position += n) n = readSync(fd, chunk, 0, chunk.length, position);
  closeSync(fd);
}

/** Removes the scratch folder. */
export function cleanUp(): void {
  rmSync(scratch, { recursive: true, force: true });
}

/** Reads a figure in kB from /proc/PID/status or smaps_rollup, as bytes. */
export function procFigure(pid: number | 'self', file: 'status' | 'smaps_rollup', field: string): number {
  const text = readFileSync(`/proc/${pid}/${file}`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/**
 * A log of at least `size` bytes in the scratch folder, made once per run: lines of 60 to 90
 * bytes, one in 64 (pseudo-randomly) at level ERROR; the same bytes on every machine.
 */
export function logFile(name: string, size: number): string {
  mkdirSync(scratch, { recursive: true });
  const path = join(scratch, name);
  if (existsSync(path) && statSync(path).size >= size) return path;
  const fd = openSync(path, 'w');
  const next = xorshift32(4242);
  const levels = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN'];
  let written = 0;
  for (let n = 0; written < size; ) {
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++, n++) {
      const r = next();
      const error = r % 64 === 0;
      const stamp = `2026-12-01 ${String(Math.floor(n / 1000) % 86_400).padStart(5, '0')}.${String(n % 1000).padStart(3, '0')}`;
      lines.push(
        `${stamp} ${error ? 'ERROR' : levels[r % 5]} [worker ${r % 16}] request ${n} ${error ? 'failed: upstream timed out after' : 'served in'} ${r % 1000} ms\n`,
      );
    }
    const chunk = Buffer.from(lines.join(''));
    writeSync(fd, chunk, 0, chunk.length, written);
    written += chunk.length;
  }
  closeSync(fd);
  return path;
}
