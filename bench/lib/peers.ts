/**
 * The npm peers the cases compare with, from bench/package.json (installed on the first run,
 * apart from memmap's own dependencies). A peer that cannot be installed or loaded is reported
 * as such, with the reason, never left out silently.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchDir } from './harness.js';

/** The part of @riaskov/mmap-io the cases use. */
export interface MmapIo {
  PROT_READ: number;
  PROT_WRITE: number;
  MAP_SHARED: number;
  map(size: number, protection: number, flags: number, fd: number, offset?: number): Buffer;
  sync(buffer: Buffer, offset?: number, length?: number, blocking?: boolean): void;
}

export interface Peers {
  mmapIo: MmapIo | null;
  /** shm-typed-array: System V shared memory as typed arrays, with no locks or waits. */
  shmTypedArray: unknown;
  /** Why a peer is missing, by name, and what was found about the ones that failed to build. */
  status: Record<string, string>;
}

/** Installs bench/node_modules from bench/package-lock.json when it is missing. */
export function installPeers(log: (line: string) => void): void {
  if (existsSync(join(benchDir, 'node_modules', '.package-lock.json'))) return;
  log('installing the benchmark peers (bench/package.json)...');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: benchDir, encoding: 'utf8' });
  if (result.status !== 0) log(`npm ci in bench/ failed:\n${result.stderr}`);
}

export function loadPeers(): Peers {
  const require = createRequire(join(benchDir, 'package.json'));
  const status: Record<string, string> = {};
  let mmapIo: MmapIo | null = null;
  try {
    const loaded = require('@riaskov/mmap-io') as MmapIo & { default?: MmapIo };
    mmapIo = loaded.default ?? loaded;
    status['@riaskov/mmap-io'] = 'loaded';
  } catch (error) {
    status['@riaskov/mmap-io'] = `could not be loaded: ${(error as Error).message.split('\n')[0]}`;
  }
  let shmTypedArray: unknown = null;
  try {
    shmTypedArray = require('shm-typed-array');
    status['shm-typed-array'] = 'loaded';
  } catch (error) {
    status['shm-typed-array'] = `could not be loaded: ${(error as Error).message.split('\n')[0]}`;
  }
  return { mmapIo, shmTypedArray, status };
}

/**
 * Tries to install the original mmap-io in a scratch folder, as a user would, and reports
 * whether its native build succeeds on this Node.
 */
export function tryOriginalMmapIo(): string {
  const dir = mkdtempSync(join(tmpdir(), 'memmap-bench-mmap-io-'));
  try {
    writeFileSync(join(dir, 'package.json'), '{"name":"probe","private":true}');
    const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', 'mmap-io@1'], {
      cwd: dir,
      encoding: 'utf8',
    });
    if (result.status === 0) return `mmap-io installed and built on Node ${process.versions.node}`;
    const error = /error: (.*)/.exec(result.stderr)?.[1] ?? 'npm install failed';
    return `mmap-io does not build on Node ${process.versions.node}: ${error.trim()}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
