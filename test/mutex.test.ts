import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Condition, Event, Mutex, mapAnonymous, mapFile, Semaphore, SharedMemory } from '../src/index.js';
import {
  assertExitedCleanly,
  assertRejectsCode,
  assertThrowsCode,
  entry,
  runFixture,
  runModule,
  tempDir,
} from './helpers/index.js';

const dir = tempDir();

function counterFile(): string {
  const path = join(dir, `counter-${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(path, Buffer.alloc(4096));
  using m = mapFile(path, { mode: 'write' });
  Mutex.create(m, 0);
  return path;
}

describe('Mutex between processes', () => {
  it('4 processes x 100,000 lock/increment/unlock on a file mapping count exactly 400,000', async () => {
    const path = counterFile();
    const results = await Promise.all(
      Array.from({ length: 4 }, () => runFixture('mutex-child.mjs', { FILE: path, ROUNDS: '100000' })),
    );
    for (const result of results) assertExitedCleanly(result);
    using m = mapFile(path);
    assert.equal(m.buffer.readUInt32LE(64), 400_000);
  });

  it('2 processes x 2 worker threads (lock and lockAsync), with each main thread on lockAsync, count exactly', async () => {
    const path = counterFile();
    const results = await Promise.all(
      Array.from({ length: 2 }, () => runFixture('mutex-child.mjs', { FILE: path, ROUNDS: '20000', WORKERS: '2' })),
    );
    for (const result of results) assertExitedCleanly(result);
    using m = mapFile(path);
    assert.equal(m.buffer.readUInt32LE(64), 2 * 3 * 20_000);
  });

  it('kill -9 of the holder while a waiter sleeps: the waiter gets owner-died at once, 200 rounds', async () => {
    const path = counterFile();
    using m = mapFile(path, { mode: 'write' });
    const mutex = Mutex.attach(m, 0);
    let slowest = 0;
    // Each holder starts ahead of its round (starting Node is the slow part) and locks when
    // told to on stdin.
    const startHolder = () => {
      const child = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { Mutex, mapFile } = await import(process.env.MEMMAP);
           const m = mapFile(process.env.FILE, { mode: 'write' });
           const mutex = Mutex.attach(m, 0);
           process.stdin.once('data', () => {
             mutex.lock();
             process.stdout.write('locked');
           });`,
        ],
        { env: { ...process.env, MEMMAP: entry, FILE: path }, stdio: ['pipe', 'pipe', 'inherit'] },
      );
      const locked = new Promise<void>((done) => child.stdout?.once('data', () => done()));
      return { child, locked };
    };
    let next = startHolder();
    for (let round = 0; round < 200; round++) {
      const { child, locked } = next;
      if (round < 199) next = startHolder();
      child.stdin?.write('lock');
      await locked;
      assert.equal(mutex.tryLock(), false, 'held by the child');
      // The waiter is asleep in the kernel when the holder dies: nothing will ever unlock, so
      // only the liveness check can wake it.
      const waiting = mutex.lockAsync({ timeout: 5000 });
      const exited = new Promise((done) => child.once('exit', done));
      const killedAt = performance.now();
      child.kill('SIGKILL');
      assert.equal(await waiting, 'owner-died', `round ${round}`);
      slowest = Math.max(slowest, performance.now() - killedAt);
      mutex.unlock();
      await exited;
    }
    // The liveness check runs every 50 ms; allow for a loaded machine.
    assert.ok(slowest < 1000, `the slowest round took ${slowest.toFixed(0)} ms`);
  });

  it('unlock by a process that does not hold it: ERR_MEMMAP_NOT_OWNER', async () => {
    const name = `/memmap-mutex-${process.pid}`;
    using shm = SharedMemory.create(name, 4096);
    try {
      const mutex = Mutex.create(shm, 128);
      mutex.lock();
      const child = await runModule(
        `const { Mutex, SharedMemory } = await import(process.env.MEMMAP);
         const shm = SharedMemory.open(process.env.NAME);
         const mutex = Mutex.attach(shm, 128);
         let code = 'none';
         try { mutex.unlock(); } catch (e) { code = e.code; }
         process.stdout.write(code + ' ' + mutex.tryLock());
         shm.close();`,
        { NAME: name },
      );
      assertExitedCleanly(child);
      assert.equal(child.stdout, 'ERR_MEMMAP_NOT_OWNER false');
      mutex.unlock();
    } finally {
      SharedMemory.unlink(name);
    }
  });
});

describe('Mutex errors and options', () => {
  it('timeouts, aborts, misuse', async () => {
    using shm = SharedMemory.anonymous(4096);
    const mutex = Mutex.create(shm, 0);
    assert.equal(mutex.lock(), 'acquired');
    assertThrowsCode(() => mutex.lock(), 'ERR_MEMMAP_DEADLOCK');
    const other = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(workerData.entry).then(async ({ Mutex }) => {
         const mutex = Mutex.attach(workerData.shared, 0);
         const codes = [];
         try { mutex.lock({ timeout: 30 }); } catch (e) { codes.push(e.code); }
         await mutex.lockAsync({ timeout: 30 }).catch((e) => codes.push(e.code));
         await mutex.lockAsync({ signal: AbortSignal.timeout(30) }).catch((e) => codes.push(e.name));
         try { mutex.unlock(); } catch (e) { codes.push(e.code); }
         parentPort.postMessage(codes);
       });`,
      { eval: true, workerData: { shared: shm.sharedBuffer(), entry } },
    );
    const codes = await new Promise((done) => other.once('message', done));
    await other.terminate();
    assert.deepEqual(codes, ['ERR_MEMMAP_TIMEOUT', 'ERR_MEMMAP_TIMEOUT', 'AbortError', 'ERR_MEMMAP_NOT_OWNER']);
    mutex.unlock();
    assert.equal(await mutex.withLock((result) => result), 'acquired');
    assert.equal(mutex.locked, false);
  });

  it('async callers on one thread queue in order; a sync lock by the holding thread still throws', async () => {
    const sab = new SharedArrayBuffer(128);
    const mutex = Mutex.create(sab, 0);
    const order: number[] = [];
    const tasks = [0, 1, 2, 3].map((i) =>
      mutex.withLock(async () => {
        order.push(i);
        assertThrowsCode(() => mutex.lock(), 'ERR_MEMMAP_DEADLOCK');
        await new Promise((done) => setTimeout(done, 5));
        order.push(i);
      }),
    );
    // A second Mutex object over the same bytes shares the queue.
    const late = Mutex.attach(sab, 0).withLock(() => order.push(9));
    await Promise.all([...tasks, late]);
    assert.deepEqual(order, [0, 0, 1, 1, 2, 2, 3, 3, 9]);
    // Held with lock(): lockAsync waits for the unlock, and a timed-out or aborted turn leaves.
    mutex.lock();
    const waiting = mutex.lockAsync();
    await assert.rejects(mutex.lockAsync({ timeout: 20 }), { code: 'ERR_MEMMAP_TIMEOUT' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(mutex.lockAsync({ signal: controller.signal }), { name: 'AbortError' });
    mutex.unlock();
    assert.equal(await waiting, 'acquired');
    mutex.unlock();
    assert.equal(mutex.locked, false);
  });

  it('a worker that ends holding the lock (exit or terminate) hands it on as owner-died', async () => {
    const sab = new SharedArrayBuffer(64);
    const mutex = Mutex.create(sab, 0);
    for (const end of ['exit', 'terminate']) {
      const worker = new Worker(
        `const { workerData, parentPort } = require('node:worker_threads');
         import(workerData.entry).then(({ Mutex }) => {
           Mutex.attach(workerData.sab, 0).lock();
           parentPort.postMessage('locked');
           if (workerData.end === 'terminate') setInterval(() => {}, 1000);
         });`,
        { eval: true, workerData: { sab, entry, end } },
      );
      await new Promise((done) => worker.once('message', done));
      const waiting = mutex.lockAsync();
      if (end === 'terminate') await worker.terminate();
      assert.equal(await waiting, 'owner-died', end);
      mutex.unlock();
    }
  });

  it('a lock held across close(), resize() and withLock: refused or handed on, never leaked', async () => {
    const dir = tempDir();
    const file = join(dir, 'locks');
    writeFileSync(file, Buffer.alloc(8192));
    using m = mapFile(file, { mode: 'write' });
    using peer = mapFile(file, { mode: 'write' });
    const mutex = Mutex.create(m, 0);
    const other = Mutex.attach(peer, 0);
    assert.equal(mutex.lock(), 'acquired');
    // resize and remap would move the record from under the thread's robust list.
    assertThrowsCode(() => m.resize(16384), 'ERR_MEMMAP_BUSY');
    assertThrowsCode(() => m.remap(), 'ERR_MEMMAP_BUSY');
    assert.equal(m.length, 8192, 'nothing changed');
    assert.equal(other.locked, true, 'the holder still holds it');
    mutex.unlock();
    m.resize(16384);
    // close() while holding: the lock is handed on at once; unlock then says the mapping is gone.
    const again = Mutex.attach(m, 0);
    assert.equal(again.lock(), 'acquired');
    const words = new Int32Array(peer.sharedBuffer());
    m.close();
    assert.equal(Atomics.load(words, 0) & 0x40000000, 0x40000000, 'FUTEX_OWNER_DIED set by the close');
    assertThrowsCode(() => again.unlock(), 'ERR_MEMMAP_CLOSED');
    assert.equal(await other.lockAsync({ timeout: 1000 }), 'owner-died');
    // withLock whose fn closes the mapping: fn's result, not ERR_MEMMAP_CLOSED.
    using third = mapFile(file, { mode: 'write' });
    other.unlock();
    const inThird = Mutex.attach(third, 0);
    assert.equal(
      await inThird.withLock(() => {
        third.close();
        return 'done';
      }),
      'done',
    );
    assert.equal(await other.lockAsync({ timeout: 1000 }), 'owner-died');
    other.unlock();
  });

  it('two Mutex objects over one word (a Mapping and its sharedBuffer()) are one lock: either unlocks what the other locked', async () => {
    using shm = SharedMemory.anonymous(4096);
    const viaMapping = Mutex.create(shm, 0);
    const viaShared = Mutex.attach(shm.sharedBuffer(), 0);
    assert.equal(viaMapping.lock(), 'acquired');
    assertThrowsCode(() => viaShared.lock(), 'ERR_MEMMAP_DEADLOCK');
    viaShared.unlock();
    // The first object's async callers are not left waiting for a turn that never comes.
    assert.equal(await viaMapping.lockAsync({ timeout: 1000 }), 'acquired');
    viaShared.unlock();
    assert.equal(await viaMapping.withLock(() => 'inside', { timeout: 1000 }), 'inside');
    assert.equal(viaMapping.locked, false);
  });

  it('an Event, Semaphore or Condition waitAsync on a mapping closed meanwhile rejects with ERR_MEMMAP_CLOSED', async () => {
    for (const kind of ['event', 'semaphore', 'condition'] as const) {
      const shm = SharedMemory.anonymous(4096);
      const lock = Mutex.create(shm, 64);
      if (kind === 'condition') lock.lock();
      const wait =
        kind === 'event'
          ? Event.create(shm, 0).waitAsync()
          : kind === 'semaphore'
            ? Semaphore.create(shm, 0).waitAsync()
            : Condition.create(shm, 0).waitAsync(lock);
      await new Promise((r) => setTimeout(r, 20));
      shm.close();
      await assertRejectsCode(wait, 'ERR_MEMMAP_CLOSED');
    }
  });

  it('placement errors have codes', () => {
    using file = mapFile(counterFile(), { mode: 'copy' });
    assertThrowsCode(() => Mutex.create(file, 0), 'ERR_INVALID_ARG_VALUE');
    using priv = mapAnonymous(4096);
    assertThrowsCode(() => Mutex.create(priv, 0), 'ERR_INVALID_ARG_VALUE');
    using shm = SharedMemory.anonymous(4096);
    assertThrowsCode(() => Mutex.create(shm, 2), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => Mutex.create(shm, 4), 'ERR_INVALID_ARG_VALUE');
    // A Mutex of the 16-byte layout of earlier versions (its marker in word 2).
    new Int32Array(shm.sharedBuffer(), 256, 4).set([0, 0, 0x6d6d7478, 0]);
    assertThrowsCode(() => Mutex.attach(shm, 256), 'ERR_MEMMAP_UNSUPPORTED');
    assertThrowsCode(() => Mutex.create(shm, 4088), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => Mutex.attach(shm, 64), 'ERR_MEMMAP_NOT_INITIALIZED');
    assertThrowsCode(() => Mutex.create(new ArrayBuffer(64) as never, 0), 'ERR_INVALID_ARG_TYPE');
    const mutex = Mutex.create(shm, 0);
    shm.close();
    assertThrowsCode(() => mutex.lock(), 'ERR_MEMMAP_CLOSED');
  });
});
