import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Condition, Event, Mutex, mapAnonymous, SharedMemory } from '../src/index.js';
import { assertExitedCleanly, assertRejectsCode, assertThrowsCode, entry, runModule } from './helpers/index.js';

describe('Event', () => {
  it('set lets every wait through until reset; timeouts and abort', async () => {
    const sab = new SharedArrayBuffer(64);
    const event = Event.create(sab, 16);
    assert.equal(event.isSet, false);
    assertThrowsCode(() => event.wait({ timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    await assertRejectsCode(event.waitAsync({ timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    await assert.rejects(event.waitAsync({ signal: AbortSignal.timeout(20) }), { name: 'AbortError' });
    setTimeout(() => event.set(), 20);
    await event.waitAsync({ timeout: 5000 });
    event.wait();
    event.wait({ timeout: 0 });
    await event.waitAsync();
    assert.equal(event.isSet, true);
    event.reset();
    assert.equal(event.isSet, false);
    assert.equal(Event.create(sab, 32, true).isSet, true);
    assert.equal(Event.attach(sab, 16).isSet, false);
  });

  it('placement errors: no event there, a private mapping, too small, misaligned, bad initial', () => {
    const sab = new SharedArrayBuffer(32);
    assertThrowsCode(() => Event.attach(sab, 0), 'ERR_MEMMAP_NOT_INITIALIZED');
    assertThrowsCode(() => Event.create(sab, 2), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => Event.create(sab, 24), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => Event.create(sab, 0, 1 as unknown as boolean), 'ERR_INVALID_ARG_TYPE');
    using priv = mapAnonymous(4096);
    assertThrowsCode(() => Event.create(priv, 0), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => Event.create({} as SharedArrayBuffer, 0), 'ERR_INVALID_ARG_TYPE');
    const shared = mapAnonymous(4096, { shared: true });
    const event = Event.create(shared, 0);
    shared.close();
    assertThrowsCode(() => event.set(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => event.wait(), 'ERR_MEMMAP_CLOSED');
  });

  it('one set releases waiters in two other processes, one sync and one async', async () => {
    const name = `/memmap-event-${process.pid}`;
    using shm = SharedMemory.create(name, 4096);
    try {
      const event = Event.create(shm, 0);
      const arrived = Event.create(shm, 64);
      const waiter = (sync: boolean) =>
        runModule(
          `const { SharedMemory, Event } = await import(process.env.MEMMAP);
           const shm = SharedMemory.open(process.env.NAME);
           const event = Event.attach(shm, 0);
           Atomics.add(new Int32Array(shm.sharedBuffer(), 128, 1), 0, 1);
           Event.attach(shm, 64).set();
           if (${sync}) event.wait({ timeout: 10000 }); else await event.waitAsync({ timeout: 10000 });
           process.stdout.write('released');
           shm.close();`,
          { NAME: name },
        );
      const children = [waiter(true), waiter(false)];
      const count = new Int32Array(shm.sharedBuffer(), 128, 1);
      while (Atomics.load(count, 0) < 2) {
        arrived.reset();
        if (Atomics.load(count, 0) < 2) await arrived.waitAsync({ timeout: 10_000 });
      }
      event.set();
      for (const child of await Promise.all(children)) {
        assertExitedCleanly(child);
        assert.equal(child.stdout, 'released');
      }
    } finally {
      SharedMemory.unlink(name);
    }
  });
});

describe('Condition', () => {
  it('wait releases the mutex, sleeps until notify, and holds the mutex again', async () => {
    const sab = new SharedArrayBuffer(128);
    const mutex = Mutex.create(sab, 0);
    const condition = Condition.create(sab, 64);
    const state = new Int32Array(sab, 96, 1);
    mutex.lock();
    const notifier = setInterval(() => {
      // Runs while waitAsync sleeps: the mutex must be free to take.
      if (mutex.tryLock() === false) return;
      state[0] = 1;
      condition.notify();
      mutex.unlock();
      clearInterval(notifier);
    }, 5);
    while (state[0] === 0) assert.equal(await condition.waitAsync(mutex, { timeout: 5000 }), 'acquired');
    assert.equal(mutex.locked, true);
    mutex.unlock();
  });

  it('errors: not holding the mutex, timeouts and abort leave the mutex held', async () => {
    const sab = new SharedArrayBuffer(128);
    const mutex = Mutex.create(sab, 0);
    const condition = Condition.create(sab, 64);
    assertThrowsCode(() => condition.wait(mutex), 'ERR_MEMMAP_NOT_OWNER');
    await assertRejectsCode(condition.waitAsync(mutex), 'ERR_MEMMAP_NOT_OWNER');
    mutex.lock();
    assertThrowsCode(() => condition.wait(mutex, { timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    assert.equal(mutex.locked, true);
    await assertRejectsCode(condition.waitAsync(mutex, { timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    assert.equal(mutex.locked, true);
    await assert.rejects(condition.waitAsync(mutex, { signal: AbortSignal.timeout(20) }), { name: 'AbortError' });
    mutex.unlock(); // held again after the abort, by this thread
    assertThrowsCode(() => condition.notify(-1), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => Condition.attach(sab, 96), 'ERR_MEMMAP_NOT_INITIALIZED');
    condition.notifyAll(); // nobody waits: nothing happens
  });

  it('a queue between a process and two worker threads: notifyAll wakes every consumer', async () => {
    // Layout of the shared page: Mutex at 0, Condition at 64, the number of items at 128, the
    // number taken at 132. The parent produces 3 items; two workers here and one child process
    // each take one, waiting on the condition while the queue is empty.
    const name = `/memmap-cond-${process.pid}`;
    using shm = SharedMemory.create(name, 4096);
    try {
      const mutex = Mutex.create(shm, 0);
      const condition = Condition.create(shm, 64);
      const consumer = `
        const shm = SharedMemory.open(NAME);
        const mutex = Mutex.attach(shm, 0);
        const condition = Condition.attach(shm, 64);
        const words = new Int32Array(shm.sharedBuffer(), 128, 2);
        mutex.lock();
        while (words[0] === 0) condition.wait(mutex, { timeout: 10000 });
        words[0]--;
        words[1]++;
        mutex.unlock();
        shm.close();`;
      const workers = [0, 1].map((): Promise<number> => {
        const worker = new Worker(
          `const { workerData } = require('node:worker_threads');
             import(workerData.entry).then(({ SharedMemory, Mutex, Condition }) => {
               const NAME = workerData.name;
               ${consumer}
             });`,
          { eval: true, workerData: { entry, name } },
        );
        return new Promise((done, fail) => worker.once('exit', done).once('error', fail));
      });
      const child = runModule(
        `const { SharedMemory, Mutex, Condition } = await import(process.env.MEMMAP);
         const NAME = process.env.NAME;
         ${consumer}
         process.stdout.write('took one');`,
        { NAME: name },
      );
      await new Promise((done) => setTimeout(done, 100));
      await mutex.withLock(() => {
        new Int32Array(shm.sharedBuffer(), 128, 1)[0] = 3;
        condition.notifyAll();
      });
      const result = await child;
      assertExitedCleanly(result);
      assert.equal(result.stdout, 'took one');
      assert.deepEqual(await Promise.all(workers), [0, 0]);
      const words = new Int32Array(shm.sharedBuffer(), 128, 2);
      assert.deepEqual([...words], [0, 3]);
    } finally {
      SharedMemory.unlink(name);
    }
  });
});
