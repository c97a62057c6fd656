/**
 * memmap on kernels without the newer system calls: a launcher compiled here (from
 * test/fixtures/enosys.c) installs a seccomp filter that answers ENOSYS for chosen calls, as
 * a kernel that lacks them would, and runs node under it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type ChildResult, root, runCommand, tempDir } from './helpers/index.js';

const dir = tempDir();
const launcher = join(dir, 'enosys');
const built = spawnSync('gcc', ['-O2', '-o', launcher, join(root, 'test', 'fixtures', 'enosys.c')], {
  encoding: 'utf8',
});
const why = built.status === 0 ? undefined : `gcc could not build the launcher: ${built.stderr ?? built.error}`;

/** System call numbers: futex_waitv (Linux 5.16) has one number on every architecture. */
const NR = {
  futexWaitv: 449,
  getRobustList: process.arch === 'arm64' ? 100 : 274,
};

function underLauncher(calls: number[], args: string[]): Promise<ChildResult> {
  return runCommand(launcher, [calls.join(','), process.execPath, ...args]);
}

describe('without futex_waitv (Linux < 5.16)', () => {
  it('an async wait sleeps (no CPU burnt) and wakes at once; errors still reach JavaScript', async (t) => {
    if (why !== undefined) return t.skip(why);
    const result = await underLauncher(
      [NR.futexWaitv],
      [
        '--input-type=module',
        '-e',
        `const { futex } = await import(process.env.MEMMAP);
         const w = new Int32Array(new SharedArrayBuffer(64));
         const before = process.cpuUsage();
         setTimeout(() => { Atomics.store(w, 0, 1); futex.wake(w, 0); }, 1000);
         const started = performance.now();
         const waits = Array.from({ length: 5 }, (_, i) => futex.waitAsync(w, 0, 0));
         await Promise.all(waits);
         const cpu = process.cpuUsage(before);
         const aborted = new AbortController();
         const gone = futex.waitAsync(w, 0, 1, { signal: aborted.signal });
         setTimeout(() => aborted.abort(), 20);
         // The timeout on another word: cancelling a wait here wakes its word's other waiters
         // once (documented), which could end a wait on the same word early.
         const codes = [await gone.catch((e) => e.name), await futex.waitAsync(w, 1, 0, { timeout: 20 }).catch((e) => e.code)];
         process.stdout.write(JSON.stringify({ cpu: (cpu.user + cpu.system) / 1000, took: performance.now() - started, codes }));`,
      ],
    );
    assert.equal(result.status, 0, result.stderr);
    const { cpu, took, codes } = JSON.parse(result.stdout);
    // One second asleep: a spinning waiter would burn most of it.
    assert.ok(cpu < 400, `${cpu} ms of CPU while asleep`);
    assert.ok(took >= 900 && took < 5000, `woken after ${took} ms`);
    assert.deepEqual(codes, ['AbortError', 'ERR_MEMMAP_TIMEOUT']);
  });

  it('the synchronisation tests pass under it', async (t) => {
    if (why !== undefined) return t.skip(why);
    const files = ['futex', 'condition-event', 'semaphore', 'wakes'].map((f) =>
      join(root, 'dist', 'test', `${f}.test.js`),
    );
    const result = await underLauncher([NR.futexWaitv], ['--test', '--test-reporter=dot', ...files]);
    assert.equal(result.status, 0, result.stdout.slice(-4000) + result.stderr.slice(-2000));
  });
});

describe('without a robust futex list (get_robust_list refused)', () => {
  it('Mutex.create throws ERR_MEMMAP_UNSUPPORTED; the other primitives work', async (t) => {
    if (why !== undefined) return t.skip(why);
    const result = await underLauncher(
      [NR.getRobustList],
      [
        '--input-type=module',
        '-e',
        `const { Mutex, Semaphore } = await import(process.env.MEMMAP);
         const sab = new SharedArrayBuffer(128);
         let code = 'none';
         try { Mutex.create(sab, 0); } catch (e) { code = e.code; }
         const sem = Semaphore.create(sab, 64, 1);
         process.stdout.write(code + ' ' + sem.tryWait());`,
      ],
    );
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'ERR_MEMMAP_UNSUPPORTED true');
  });
});
