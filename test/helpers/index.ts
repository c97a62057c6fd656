/**
 * Shared test helpers: temporary folders, child processes, error checks.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, type TestContext } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package root (the tests run from dist/test/). */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The built entry point, for child processes to import. */
export const entry = pathToFileURL(join(root, 'dist', 'src', 'index.js')).href;

/** The core addon as built here, for tests that read memmap's internal counters. */
export const coreAddon = join(root, 'build', 'Release', 'memmap.node');

/** The built command line. */
export const cli = join(root, 'dist', 'cli', 'memmap.js');

/** A fresh folder under the OS temp folder, removed when the test file ends. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'memmap-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** How long a child process started by runNode may run before it is killed. */
export const CHILD_LIMIT_MS = 100_000;

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs node with `args` and the memmap entry point in MEMMAP, collecting its output. */
export function runNode(args: string[], env: Record<string, string> = {}): Promise<ChildResult> {
  return runCommand(process.execPath, args, env);
}

/** Runs `command` with `args` and the memmap entry point in MEMMAP, collecting its output. */
export function runCommand(command: string, args: string[], env: Record<string, string> = {}): Promise<ChildResult> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, {
      env: { ...process.env, MEMMAP: entry, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // A child that hangs (a lost wake-up, a fault loop) is killed, so it fails its test
      // instead of outliving the run.
      timeout: CHILD_LIMIT_MS,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', fail);
    child.on('close', (status, signal) => done({ status, signal, stdout, stderr }));
  });
}

/**
 * Runs `source` as an ES module in a new Node process. memmap's entry point is in the
 * environment: `const { mapFile } = await import(process.env.MEMMAP)`.
 */
export function runModule(
  source: string,
  env: Record<string, string> = {},
  execArgv: string[] = [],
): Promise<ChildResult> {
  return runNode([...execArgv, '--input-type=module', '-e', source], env);
}

/** Runs a program from test/fixtures/ in a new Node process, as runModule does. */
export function runFixture(name: string, env: Record<string, string> = {}): Promise<ChildResult> {
  return runNode([join(root, 'test', 'fixtures', name)], env);
}

/** Runs the memmap command with `args` and returns what it printed and its exit status. */
export function runCli(args: string[]): ChildResult {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** Asserts that a child process ended normally with status 0, showing its output if not. */
export function assertExitedCleanly(result: ChildResult): void {
  assert.equal(result.signal, null, `child died by ${result.signal}\n${result.stderr}`);
  assert.equal(result.status, 0, `child exited ${result.status}\n${result.stderr}`);
}

/** Asserts that `fn` throws an error whose `code` is `code` (and, if given, of class `type`). */
export function assertThrowsCode(
  fn: () => unknown,
  code: string,
  type?: abstract new (...args: never[]) => Error,
): void {
  assert.throws(fn, (error: unknown) => {
    const err = error as NodeJS.ErrnoException;
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    if (type) assert.ok(err instanceof type, `expected a ${type.name}, got ${err.constructor.name}`);
    return true;
  });
}

/** Asserts that `promise` rejects with an error whose `code` is `code`. */
export async function assertRejectsCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    const err = error as NodeJS.ErrnoException;
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

/**
 * Compiles test/fixtures/sigbus.c (an addon that raises SIGBUS and SIGSEGV at addresses memmap
 * does not own, and installs handlers of its own) against this Node, into `dir`.
 */
export function signalFixture(dir: string): string {
  const output = join(dir, 'sigbus.node');
  if (existsSync(output)) return output;
  const include = join(dirname(process.execPath), '..', 'include', 'node');
  execFileSync('gcc', [
    '-shared',
    '-fPIC',
    '-O1',
    `-I${include}`,
    join(root, 'test', 'fixtures', 'sigbus.c'),
    '-o',
    output,
  ]);
  return output;
}

/** What each process watched by saidBy has printed so far. */
const printed = new WeakMap<ChildProcess, { out: string }>();

/**
 * Resolves once `text` appears on a spawned process's stdout (including what it printed before
 * this call, once any saidBy call watches it); rejects if it exits first.
 */
export function saidBy(proc: ChildProcess, text: string): Promise<void> {
  let seen = printed.get(proc);
  if (seen === undefined) {
    const record = { out: '' };
    seen = record;
    printed.set(proc, record);
    proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
      record.out += d;
    });
  }
  const state = seen;
  return new Promise((done, fail) => {
    if (state.out.includes(text)) return done();
    const check = () => {
      if (state.out.includes(text)) {
        proc.stdout?.off('data', check);
        done();
      }
    };
    proc.stdout?.on('data', check);
    proc.once('exit', (code, signal) => {
      setImmediate(() => {
        if (!state.out.includes(text)) fail(new Error(`the child exited (${code ?? signal}) before saying ${text}`));
      });
    });
  });
}

let mounts = 0;

/**
 * Mounts a file system of `type` (with mount's `options`) on a fresh folder under `parent` for
 * `body`, and unmounts it after; skips the test, with the reason, where mounting is not
 * allowed (it needs root).
 */
export async function withMount(
  t: TestContext,
  parent: string,
  type: string,
  options: string,
  body: (dir: string) => Promise<void> | void,
): Promise<void> {
  const at = join(parent, `mnt${process.pid}-${mounts++}`);
  mkdirSync(at);
  try {
    execFileSync('mount', ['-t', type, '-o', options, type, at], { stdio: 'pipe' });
  } catch (error) {
    t.skip(`cannot mount a ${type} here (needs root): ${String((error as Error).message).split('\n')[0]}`);
    return;
  }
  try {
    await body(at);
  } finally {
    execFileSync('umount', ['-l', at]);
  }
}
