/**
 * Shared by the runtime matrix and the sanitizer run: commands with their output kept in log
 * files, scratch copies of the built package with the addon rebuilt in them, and a run of
 * the node:test suite that counts its results.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (this file runs from dist/test/runtimes/). */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Where fetched runtimes, scratch builds and logs live: outside the repository. */
export const cache = process.env.MEMMAP_RUNTIMES_CACHE ?? join(homedir(), '.cache', 'memmap-runtimes');
export const logs = join(cache, 'logs');

export interface Count {
  passed: number;
  failed: number;
  /** The failed tests' TAP entries with their errors (empty when none failed). */
  failures?: string[];
}

export function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Runs a command, saving its output to logs/<name>.log. Throws if it cannot start. */
export function run(
  name: string,
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): SpawnSyncReturns<string> {
  mkdirSync(logs, { recursive: true });
  const result = spawnSync(command, args, {
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: 15 * 60 * 1000,
  });
  // The log first, so that a run that timed out still shows how far it got.
  writeFileSync(join(logs, `${name}.log`), `$ ${command} ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
  if (result.error) throw new Error(`${name}: ${result.error.message}; log: ${join(logs, `${name}.log`)}`);
  return result;
}

/** The node-gyp that npm ships (npm sets npm_config_node_gyp for scripts). */
function nodeGyp(): string {
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp');
  const candidates = [process.env.npm_config_node_gyp, join(bundled, 'bin', 'node-gyp.js')];
  const found = candidates.find((c): c is string => c !== undefined && existsSync(c));
  if (!found) throw new Error("node-gyp not found: run this through 'npm run'");
  return found;
}

/**
 * A scratch copy of the built package (dist, the native sources, the test fixtures) under the
 * cache, with the addon rebuilt there against `nodeDir`'s headers and with `env` (compiler
 * flags, say). The repository's own build is left alone.
 */
export function scratchBuild(name: string, nodeDir: string, env: NodeJS.ProcessEnv = {}): string {
  const work = join(cache, `work-${name}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'test'), { recursive: true });
  for (const entry of [
    'package.json',
    'index.d.cts',
    'binding.gyp',
    'native',
    'dist',
    'docs',
    'test/fixtures',
    'test/runtimes/smoke.mjs',
  ]) {
    cpSync(join(root, entry), join(work, entry), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
  // npm passes its own nodedir setting (this machine's headers) to scripts as
  // npm_config_nodedir, which node-gyp prefers to --nodedir: override it too.
  const build = run(`build-${name}`, process.execPath, [nodeGyp(), 'rebuild', `--nodedir=${nodeDir}`], work, {
    ...env,
    npm_config_nodedir: nodeDir,
  });
  if (build.status !== 0) {
    throw new Error(`the addon did not build for ${name}:\n${tail(build.stdout + build.stderr)}`);
  }
  return work;
}

/** Runs the node:test suite with `node` in `cwd` and counts its results. */
export function fullSuite(name: string, node: string, cwd: string, env: NodeJS.ProcessEnv = {}): Count {
  const files = readdirSync(join(cwd, 'dist', 'test'))
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => join('dist', 'test', f));
  const result = run(`suite-${name}`, node, ['--test', '--test-reporter=tap', ...files], cwd, env);
  const passed = Number(/^# pass (\d+)/m.exec(result.stdout)?.[1] ?? Number.NaN);
  const failed = Number(/^# fail (\d+)/m.exec(result.stdout)?.[1] ?? Number.NaN);
  if (Number.isNaN(passed) || Number.isNaN(failed)) {
    throw new Error(`the test suite under ${name} printed no summary:\n${tail(result.stdout + result.stderr)}`);
  }
  // The summary, then each failure with its YAML block (error, expected, stack): a failure
  // sits far up a TAP stream, and a log that keeps only its end would not name it.
  if (failed > 0 || result.status !== 0) log(tail(result.stdout, 20));
  const found = failures(result.stdout);
  for (const block of found) log(block);
  return { passed, failed: result.status !== 0 && failed === 0 ? 1 : failed, failures: found };
}

/**
 * The `not ok` entries of a TAP stream, each with its YAML block, innermost first (a failed
 * subtest also fails its suite; the suite's entry then follows it).
 */
export function failures(tap: string): string[] {
  const lines = tap.split('\n');
  const blocks: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const head = /^(\s*)not ok /.exec(line);
    if (!head) continue;
    const indent = head[1] ?? '';
    const block = [line];
    if (lines[i + 1]?.trimEnd() === `${indent}  ---`) {
      for (let j = i + 1; j < lines.length; j++) {
        const next = lines[j] ?? '';
        block.push(next);
        if (next.trimEnd() === `${indent}  ...`) break;
        if (block.length > 60) {
          block.push(`${indent}  (cut)`);
          break;
        }
      }
    }
    blocks.push(block.join('\n'));
  }
  return blocks;
}
