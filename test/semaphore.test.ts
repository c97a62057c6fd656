import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Semaphore, SharedMemory } from '../src/index.js';
import { assertExitedCleanly, assertRejectsCode, assertThrowsCode, entry, root, runModule } from './helpers/index.js';

describe('Semaphore', () => {
  it('counts: post adds, tryWait and wait take, value reads', async () => {
    using shm = SharedMemory.anonymous(4096);
    const sem = Semaphore.create(shm, 32, 2);
    assert.equal(sem.value, 2);
    assert.equal(sem.tryWait(), true);
    sem.wait();
    assert.equal(sem.tryWait(), false);
    sem.post();
    await sem.waitAsync();
    assert.equal(sem.value, 0);
    assertThrowsCode(() => sem.wait({ timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    await assertRejectsCode(sem.waitAsync({ timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    await assert.rejects(sem.waitAsync({ signal: AbortSignal.timeout(20) }), { name: 'AbortError' });
    assertThrowsCode(() => Semaphore.attach(shm, 64), 'ERR_MEMMAP_NOT_INITIALIZED');
    assertThrowsCode(() => Semaphore.create(shm, 0, -1), 'ERR_OUT_OF_RANGE');
  });

  it('spin: a wait that spins takes a post made meanwhile by a worker; the option is checked', async () => {
    const { Worker } = await import('node:worker_threads');
    const { Mutex, Condition } = await import('../src/index.js');
    const sab = new SharedArrayBuffer(256);
    const sem = Semaphore.create(sab, 0, 0);
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       import(workerData.entry).then(({ Semaphore }) => {
         const sem = Semaphore.attach(workerData.sab, 0);
         for (let i = 0; i < 50; i++) sem.post();
       });`,
      { eval: true, workerData: { entry, sab } },
    );
    for (let i = 0; i < 25; i++) sem.wait({ spin: 50_000, timeout: 10_000 });
    for (let i = 0; i < 25; i++) await sem.waitAsync({ spin: 1000, timeout: 10_000 });
    assert.equal(sem.value, 0);
    await new Promise((done) => worker.once('exit', done));
    assertThrowsCode(() => sem.wait({ spin: -1 }), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => sem.wait({ spin: 100_001 }), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => sem.wait({ spin: '5' as unknown as number }), 'ERR_INVALID_ARG_TYPE');
    const mutex = Mutex.create(sab, 64);
    assert.equal(mutex.lock({ spin: 10 }), 'acquired');
    assertThrowsCode(() => Condition.create(sab, 128).wait(mutex, { spin: 1 } as object), 'ERR_INVALID_ARG_VALUE');
    mutex.unlock();
  });

  it('a post in one process wakes a waitAsync in another', async () => {
    const name = `/memmap-sem-${process.pid}`;
    using shm = SharedMemory.create(name, 4096);
    try {
      const sem = Semaphore.create(shm, 0, 0);
      const started = Semaphore.create(shm, 16, 0);
      const child = runModule(
        `const { SharedMemory, Semaphore } = await import(process.env.MEMMAP);
         const shm = SharedMemory.open(process.env.NAME);
         const waiting = Semaphore.attach(shm, 0).waitAsync({ timeout: 10000 });
         Semaphore.attach(shm, 16).post();
         await waiting;
         process.stdout.write('woken');
         shm.close();`,
        { NAME: name },
      );
      await started.waitAsync({ timeout: 10000 });
      sem.post();
      const result = await child;
      assertExitedCleanly(result);
      assert.equal(result.stdout, 'woken');
    } finally {
      SharedMemory.unlink(name);
    }
  });

  it('the producer/consumer example runs with one command and passes every message', () => {
    const result = spawnSync(process.execPath, [join(root, 'dist', 'examples', 'producer-consumer', 'run.js')], {
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, result.stderr);
    assert.equal((result.stdout.match(/consumer \(pid \d+\) got: /g) ?? []).length, 4);
    assert.match(result.stdout, /got: zero copies\nboth processes finished\n$/);
  });
});
