/**
 * createOrAttach for Mutex, Semaphore, Condition and Event: processes started in any order
 * meet at one primitive, exactly one sets it up; attach before setup has its own code; create
 * over a held Mutex refuses.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Condition, Event, futex, Mutex, Semaphore, SharedMemory } from '../src/index.js';
import { assertExitedCleanly, assertThrowsCode, entry, runModule, saidBy } from './helpers/index.js';

const SLOTS = 20_000;

describe('createOrAttach', () => {
  it(`4 processes started together meet at ${SLOTS} fresh semaphores and mutexes: each set up once, no post lost`, {
    timeout: 120_000,
  }, async () => {
    const name = `/memmap-coa-${process.pid}`;
    // Semaphores at 0..SLOTS*16, then Mutexes (64 bytes, 8-aligned), then a count per Mutex
    // (incremented under it), then a start word, so that the processes race; all zeros.
    const counts = SLOTS * 16 + SLOTS * 64;
    const go = counts + SLOTS * 4;
    using shm = SharedMemory.create(name, go + 64);
    try {
      const body = `const { Mutex, Semaphore, SharedMemory, futex } = await import(process.env.MEMMAP);
        const shm = SharedMemory.open(process.env.NAME);
        const words = new Int32Array(shm.sharedBuffer());
        const go = ${go} / 4;
        while (Atomics.load(words, go) === 0) futex.wait(words, go, 0, 5);
        let made = 0;
        for (let i = 0; i < ${SLOTS}; i++) {
          const s = Semaphore.createOrAttach(shm, i * 16, 0);
          s.post();
          const m = Mutex.createOrAttach(shm, ${SLOTS * 16} + i * 64);
          if (m.lock() !== 'acquired') throw new Error('owner-died on a fresh mutex');
          words[${counts / 4} + i] += 1;
          m.unlock();
        }
        process.stdout.write('done');`;
      const runs = Array.from({ length: 4 }, () => runModule(body, { NAME: name }));
      await new Promise((r) => setTimeout(r, 300));
      const words = new Int32Array(shm.sharedBuffer());
      Atomics.store(words, go / 4, 1);
      futex.wake(words, go / 4);
      for (const result of await Promise.all(runs)) {
        assertExitedCleanly(result);
        assert.equal(result.stdout, 'done');
      }
      for (let i = 0; i < SLOTS; i++) {
        assert.equal(Semaphore.attach(shm, i * 16).value, 4, `semaphore ${i}: a setup after a post would lose it`);
        const at = SLOTS * 16 + i * 64;
        assert.equal(Atomics.load(words, counts / 4 + i), 4, `mutex ${i}: four increments under the lock`);
        assert.equal(Mutex.attach(shm, at).locked, false);
      }
    } finally {
      SharedMemory.unlink(name);
    }
  });

  it('joins what is there, sets up zeros, and refuses anything else', () => {
    const sab = new SharedArrayBuffer(4096);
    const made = Semaphore.create(sab, 0, 3);
    assert.equal(Semaphore.createOrAttach(sab, 0, 9).value, 3, 'an existing semaphore is joined, not reset');
    assert.equal(made.value, 3);
    assert.equal(Event.createOrAttach(sab, 16, true).isSet, true);
    assert.equal(Event.createOrAttach(sab, 16, false).isSet, true);
    Condition.createOrAttach(sab, 32);
    Condition.attach(sab, 32);
    const m = Mutex.createOrAttach(sab, 64);
    assert.equal(m.tryLock(), 'acquired');
    assert.equal(Mutex.createOrAttach(sab, 64).locked, true);
    m.unlock();
    // Data that is not zeros, nor the primitive: refused, never overwritten.
    const words = new Int32Array(sab);
    words[64] = 7;
    assertThrowsCode(() => Semaphore.createOrAttach(sab, 256), 'ERR_INVALID_ARG_VALUE');
    assert.equal(words[64], 7);
    assertThrowsCode(() => Mutex.createOrAttach(sab, 0), 'ERR_INVALID_ARG_VALUE'); // a Semaphore there
    assertThrowsCode(() => Event.createOrAttach(sab, 16, 1 as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => Semaphore.createOrAttach(sab, 512, -1), 'ERR_OUT_OF_RANGE');
  });

  it('waits for a setup in progress; a setup that never finishes ends in ERR_MEMMAP_TIMEOUT naming its process', () => {
    const sab = new SharedArrayBuffer(64);
    const words = new Int32Array(sab);
    // What a process killed between claiming the words and writing the marker leaves.
    Atomics.store(words, 2, 0x80000000 | 4242 | 0);
    const started = performance.now();
    assert.throws(
      () => Semaphore.createOrAttach(sab, 0),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ERR_MEMMAP_TIMEOUT');
        assert.match(e.message, /process 4242 began to set up the Semaphore/);
        return true;
      },
    );
    assert.ok(performance.now() - started >= 4900, 'it waited for the setup');
    // create() sets it up again, as the message says.
    Semaphore.create(sab, 0, 1);
    assert.equal(Semaphore.createOrAttach(sab, 0).value, 1);
  });

  it('a waiter sees the setup another thread finishes', async () => {
    const sab = new SharedArrayBuffer(64);
    const words = new Int32Array(sab);
    Atomics.store(words, 2, 0x80000000 | process.pid | 0);
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(workerData.entry).then(({ Semaphore }) => {
         const s = Semaphore.createOrAttach(workerData.sab, 0, 0);
         parentPort.postMessage(s.value);
       });`,
      { eval: true, execArgv: [], workerData: { sab, entry } },
    );
    await new Promise((r) => setTimeout(r, 200));
    // Finish the claimed setup as the claimer would: count, then the marker.
    Semaphore.create(sab, 0, 5);
    futex.wake(words, 2);
    const value = await new Promise((r) => worker.once('message', r));
    assert.equal(value, 5);
    await worker.terminate();
  });
});

describe('attach before setup, create over a held lock', () => {
  it('attach over zeros: ERR_MEMMAP_NOT_INITIALIZED; over other data: ERR_INVALID_ARG_VALUE', () => {
    const sab = new SharedArrayBuffer(256);
    assertThrowsCode(() => Mutex.attach(sab, 0), 'ERR_MEMMAP_NOT_INITIALIZED');
    assertThrowsCode(() => Semaphore.attach(sab, 64), 'ERR_MEMMAP_NOT_INITIALIZED');
    assertThrowsCode(() => Condition.attach(sab, 80), 'ERR_MEMMAP_NOT_INITIALIZED');
    assertThrowsCode(() => Event.attach(sab, 96), 'ERR_MEMMAP_NOT_INITIALIZED');
    new Int32Array(sab)[16] = 1;
    assertThrowsCode(() => Semaphore.attach(sab, 64), 'ERR_INVALID_ARG_VALUE');
  });

  it('Mutex.create over a Mutex another process holds: ERR_MEMMAP_BUSY; { reset: true } sets it up anyway', async () => {
    const name = `/memmap-coa-busy-${process.pid}`;
    using shm = SharedMemory.create(name, 4096);
    try {
      Mutex.create(shm, 0);
      const holder = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { Mutex, SharedMemory } = await import(process.env.MEMMAP);
           const shm = SharedMemory.open(process.env.NAME);
           const m = Mutex.attach(shm, 0);
           m.lock(); process.stdout.write('locked');
           process.stdin.once('data', () => process.exit(0));`,
        ],
        { env: { ...process.env, MEMMAP: entry, NAME: name }, stdio: ['pipe', 'pipe', 'inherit'] },
      );
      await saidBy(holder, 'locked');
      assertThrowsCode(() => Mutex.create(shm, 0), 'ERR_MEMMAP_BUSY');
      assert.equal(Mutex.attach(shm, 0).locked, true, 'the holder still holds it');
      assertThrowsCode(() => Mutex.create(shm, 0, { reset: 1 } as never), 'ERR_INVALID_ARG_TYPE');
      assertThrowsCode(() => Mutex.create(shm, 0, { force: true } as never), 'ERR_INVALID_ARG_VALUE');
      holder.stdin?.write('go');
      await new Promise((r) => holder.once('exit', r));
      const reset = Mutex.create(shm, 0, { reset: true });
      assert.equal(reset.tryLock(), 'acquired');
      reset.unlock();
    } finally {
      SharedMemory.unlink(name);
    }
  });
});
