import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { futex, SharedMemory } from '../src/index.js';
import { assertExitedCleanly, assertRejectsCode, assertThrowsCode, coreAddon, runModule } from './helpers/index.js';

const name = `/memmap-futex-${process.pid}`;

/** Polls until `words[index]` holds `value` (a child announcing it is about to wait). */
async function until(words: Int32Array, index: number, value: number): Promise<void> {
  for (let i = 0; i < 500 && Atomics.load(words, index) !== value; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(Atomics.load(words, index), value, 'the other side never got there');
}

describe('futex', () => {
  it('wait answers not-equal and timed-out; wake with nobody waiting wakes nobody', () => {
    using shm = SharedMemory.anonymous(4096);
    const words = new Int32Array(shm.sharedBuffer());
    assert.equal(futex.wait(words, 0, 1, 10), 'not-equal');
    assert.equal(futex.wait(words, 0, 0, 10), 'timed-out');
    assert.equal(futex.wake(words, 0), 0);
  });

  it('wakes a process blocked in wait, through a named SharedMemory object', async () => {
    using shm = SharedMemory.create(name, 4096);
    try {
      const words = new Int32Array(shm.sharedBuffer());
      const child = runModule(
        `
        const { futex, SharedMemory } = await import(process.env.MEMMAP);
        const shm = SharedMemory.open(process.env.NAME);
        const words = new Int32Array(shm.sharedBuffer());
        Atomics.store(words, 1, 1);                       // about to wait
        const result = futex.wait(words, 0, 0, 10000);
        process.stdout.write(result + ' ' + Atomics.load(words, 0));
        shm.close();
        `,
        { NAME: name },
      );
      await until(words, 1, 1);
      await new Promise((r) => setTimeout(r, 50));
      Atomics.store(words, 0, 7);
      futex.wake(words, 0);
      const result = await child;
      assertExitedCleanly(result);
      assert.match(result.stdout, /^(ok|not-equal) 7$/);
    } finally {
      SharedMemory.unlink(name);
    }
  });

  it('waitAsync in another process resolves when this one stores and wakes', async () => {
    using shm = SharedMemory.create(name, 4096);
    try {
      const words = new Int32Array(shm.sharedBuffer());
      const child = runModule(
        `
        const { futex, SharedMemory } = await import(process.env.MEMMAP);
        const shm = SharedMemory.open(process.env.NAME);
        const words = new Int32Array(shm.sharedBuffer());
        const waiting = futex.waitAsync(words, 0, 0, { timeout: 10000 });
        Atomics.store(words, 1, 1);
        process.stdout.write(await waiting);
        shm.close();
        `,
        { NAME: name },
      );
      await until(words, 1, 1);
      Atomics.store(words, 0, 1);
      futex.wake(words, 0);
      const result = await child;
      assertExitedCleanly(result);
      assert.equal(result.stdout, 'ok');
    } finally {
      SharedMemory.unlink(name);
    }
  });

  it('wakes a worker thread blocked in wait', async () => {
    using shm = SharedMemory.anonymous(4096);
    const words = new Int32Array(shm.sharedBuffer());
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.entry).then(({ futex }) => {
        const words = new Int32Array(workerData.shared);
        Atomics.store(words, 1, 1);
        parentPort.postMessage(futex.wait(words, 0, 0, 10000));
      });
      `,
      {
        eval: true,
        workerData: { shared: shm.sharedBuffer(), entry: new URL('../src/index.js', import.meta.url).href },
      },
    );
    await until(words, 1, 1);
    await new Promise((r) => setTimeout(r, 50));
    Atomics.store(words, 0, 1);
    futex.wake(words, 0);
    const result = await new Promise((done) => worker.once('message', done));
    assert.match(String(result), /^(ok|not-equal)$/);
    await worker.terminate();
  });

  it('1,000 pending waitAsync calls leave fs and timers running, then all resolve when woken', async () => {
    using shm = SharedMemory.anonymous(8192);
    const words = new Int32Array(shm.sharedBuffer());
    const waits = Array.from({ length: 1000 }, (_, i) => futex.waitAsync(words, i + 1, 0));
    // libuv's pool has four threads: had the waits taken them, this read would never finish.
    const started = Date.now();
    const data = await readFile(new URL(import.meta.url));
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(data.length > 0);
    assert.ok(Date.now() - started < 5000, 'fs and a timer completed while 1,000 waits were pending');
    const { createRequire } = await import('node:module');
    const threads = (createRequire(import.meta.url)(coreAddon) as { waiterThreads(): number }).waiterThreads();
    assert.ok(threads >= 8, `${threads} waiter threads of memmap's own serve 1,000 waits (127 each)`);
    for (let i = 1; i <= 1000; i++) {
      Atomics.store(words, i, 1);
      futex.wake(words, i);
    }
    const results = await Promise.all(waits);
    assert.equal(results.length, 1000);
    assert.ok(results.every((r) => r === 'ok'));
  });

  it('waitAsync: not-equal at once, ERR_MEMMAP_TIMEOUT, AbortError', async () => {
    using shm = SharedMemory.anonymous(4096);
    const words = new Int32Array(shm.sharedBuffer());
    assert.equal(await futex.waitAsync(words, 0, 3), 'not-equal');
    await assertRejectsCode(futex.waitAsync(words, 0, 0, { timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    const controller = new AbortController();
    const aborted = futex.waitAsync(words, 0, 0, { signal: controller.signal });
    setTimeout(() => controller.abort(), 10);
    await assert.rejects(aborted, { name: 'AbortError' });
    await assert.rejects(futex.waitAsync(words, 0, 0, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  });

  it('a pending waitAsync ends with ERR_MEMMAP_CLOSED when its memory is closed, at every moment (2,400 rounds)', async () => {
    // In a child: a wait that nothing can end would keep the process alive for ever. The close
    // comes at once (the waiter thread has not seen the wait yet), after a turn (it sleeps on
    // it), or from a worker; over shared anonymous memory, a file mapping and a worker's view.
    // The word holds 0, the value zero pages hold, so a wait left on a stand-in would sleep on.
    const result = await runModule(
      `const { futex, SharedMemory, mapFile } = await import(process.env.MEMMAP);
       const { writeFileSync, mkdtempSync } = await import('node:fs');
       const { join } = await import('node:path');
       const { tmpdir } = await import('node:os');
       const file = join(mkdtempSync(join(tmpdir(), 'memmap-wait-')), 'words');
       writeFileSync(file, Buffer.alloc(4096));
       const codes = new Map();
       const note = (e) => codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
       for (let round = 0; round < 2400; round++) {
         const memory = round % 3 === 2 ? mapFile(file, { mode: 'write' }) : SharedMemory.anonymous(4096);
         const words = new Int32Array(memory.sharedBuffer());
         const waits = [futex.waitAsync(words, 0, 0), futex.waitAsync(words, 5, 0, { timeout: 60000 })];
         const when = round % 4;
         if (when === 1) await new Promise((r) => setImmediate(r));
         else if (when === 2) await new Promise((r) => setTimeout(r, 1));
         else if (when === 3) for (let i = 0; i < (round % 50) * 20; i++) Math.sqrt(i);
         memory.close();
         for (const w of waits) await w.then(() => note({ code: 'resolved' }), note);
       }
       process.stdout.write(JSON.stringify(Object.fromEntries(codes)));`,
    );
    assertExitedCleanly(result);
    assert.deepEqual(JSON.parse(result.stdout), { ERR_MEMMAP_CLOSED: 4800 });
  });

  it("closing another thread's mapping of the same memory leaves this thread's wait pending", async () => {
    const result = await runModule(
      `const { futex, SharedMemory } = await import(process.env.MEMMAP);
       const { Worker } = await import('node:worker_threads');
       const shm = SharedMemory.anonymous(4096);
       const words = new Int32Array(shm.sharedBuffer());
       const worker = new Worker(
         'const { workerData } = require("node:worker_threads");' +
         'import(workerData.entry).then(({ SharedMemory }) => {' +
         '  const other = SharedMemory.fromFd(workerData.fd);' +
         '  const w = new Int32Array(other.sharedBuffer());' +
         '  Atomics.load(w, 0);' +
         '  setTimeout(() => other.close(), 50);' +
         '});',
         { eval: true, execArgv: [], workerData: { entry: process.env.MEMMAP, fd: shm.fd } },
       );
       const mine = futex.waitAsync(words, 0, 0, { timeout: 2000 });
       await new Promise((r) => worker.once('exit', r));
       // The worker's mapping is its own: closing it ends no wait of ours (ours times out).
       const code = await mine.then(() => 'resolved', (e) => e.code);
       process.stdout.write(code);`,
    );
    assertExitedCleanly(result);
    assert.equal(result.stdout, 'ERR_MEMMAP_TIMEOUT');
  });

  it('bad arguments have codes', () => {
    const words = new Int32Array(new SharedArrayBuffer(8));
    assertThrowsCode(() => futex.wait(new Uint8Array(4) as never, 0, 0), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => futex.wake(words, 2), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => futex.wait(words, 0, 2 ** 31), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => futex.wait(words, 0, 0, -1), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => futex.waitAsync(words, 0, 0, { timeot: 1 } as never), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => futex.waitAsync(words, 0, 0, { signal: {} as never }), 'ERR_INVALID_ARG_TYPE');
  });
});

describe('futex.waitAsync when the system refuses a thread', () => {
  it('rejects with EAGAIN from pthread_create (no abort), and waits again once threads are allowed', {
    timeout: 60_000,
  }, async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root: RLIMIT_NPROC binds only an unprivileged user');
    if (spawnSync('prlimit', ['--version']).error) return t.skip('needs the prlimit command (util-linux)');
    // The child starts its pool threads, then becomes nobody with RLIMIT_NPROC at 1, so that no
    // new thread of its user may start. A helper shell started before, as nobody (a process
    // may change the limits of another of its own user's), sets and lifts the limit on request;
    // its own limit stays as it was, so it can still run prlimit.
    const child = await runModule(
      `
      const { futex } = await import(process.env.MEMMAP);
      const { spawn } = await import('node:child_process');
      const { readFileSync } = await import('node:fs');
      const { stat } = await import('node:fs/promises');
      await stat('/');
      const soft = readFileSync('/proc/self/limits', 'utf8').match(/^Max processes\\s+(\\S+)/m)[1];
      const helper = spawn('sh', ['-c', 'while read what; do prlimit --pid ${'$'}0 --nproc=${'$'}what && echo done; done', String(process.pid)], {
        stdio: ['pipe', 'pipe', 'inherit'], uid: 65534, gid: 65534,
      });
      const ask = (what) => new Promise((r) => { helper.stdout.once('data', r); helper.stdin.write(what + '\\n'); });
      process.setgid(65534);
      process.setuid(65534);
      await ask('1:');
      const words = new Int32Array(new SharedArrayBuffer(8));
      let refused = null;
      try {
        await futex.waitAsync(words, 0, 0, { timeout: 5000 });
      } catch (e) {
        refused = { code: e.code, syscall: e.syscall, message: e.message };
      }
      await ask(soft + ':');
      const waiting = futex.waitAsync(words, 0, 0, { timeout: 10000 });
      setTimeout(() => { Atomics.store(words, 0, 1); futex.wake(words, 0, 1); }, 20);
      const after = await waiting;
      helper.stdin.end();
      process.stdout.write(JSON.stringify({ refused, after }));
      `,
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.equal(r.refused?.code, 'EAGAIN', JSON.stringify(r.refused));
    assert.equal(r.refused.syscall, 'pthread_create');
    assert.match(r.refused.message, /refused a new waiter thread/);
    assert.equal(r.after, 'ok', 'a later wait gets its thread and is woken');
  });
});
