/**
 * No lost wake-up: waits with no timeout, which nothing but the right wake can end (async waits
 * sleep on the waiter thread with no slice to rescue them), while an aborted waiter had the
 * wake spent on it. And every blocking wait lets worker.terminate() and process.exit() finish.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Condition, futex, Mutex, Semaphore, SharedMemory } from '../src/index.js';
import { entry, saidBy } from './helpers/index.js';

/** A child process that opens NAME and runs `body` (an async module body). */
function child(name: string, body: string): ChildProcess {
  return spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { Condition, futex, Mutex, Semaphore, SharedMemory } = await import(process.env.MEMMAP);
       const shm = SharedMemory.open(process.env.NAME);
       const words = new Int32Array(shm.sharedBuffer());
       ${body}`,
    ],
    { env: { ...process.env, MEMMAP: entry, NAME: name }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
}

const said = saidBy;

const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function withShm(fn: (shm: SharedMemory, name: string) => Promise<void>): Promise<void> {
  const name = `/memmap-wakes-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const shm = SharedMemory.create(name, 4096);
  try {
    await fn(shm, name);
  } finally {
    shm.close();
    SharedMemory.unlink(name);
  }
}

// Layout of the page: Mutex at 0, Condition at 64, Semaphore at 80, a futex word at 96.
describe('an aborted async wait passes on the wake it consumed', () => {
  it('futex.waitAsync: wake(1) then abort; the waiter of another process still wakes', async () =>
    withShm(async (shm, name) => {
      const words = new Int32Array(shm.sharedBuffer());
      for (let round = 0; round < 5; round++) {
        const controller = new AbortController();
        const first = futex.waitAsync(words, 24, 0, { signal: controller.signal });
        await pause(50);
        const other = child(
          name,
          `process.stdout.write('waiting'); await futex.waitAsync(words, 24, 0); process.stdout.write('woken');`,
        );
        await said(other, 'waiting');
        await pause(200);
        futex.wake(words, 24, 1);
        controller.abort();
        await assert.rejects(first, { name: 'AbortError' });
        await said(other, 'woken');
      }
    }));

  it('Condition.waitAsync: notify(1) then abort; the waiter of another process still wakes', async () =>
    withShm(async (shm, name) => {
      const mutex = Mutex.create(shm, 0);
      const condition = Condition.create(shm, 64);
      const words = new Int32Array(shm.sharedBuffer());
      for (let round = 0; round < 5; round++) {
        mutex.lock();
        const controller = new AbortController();
        const first = condition.waitAsync(mutex, { signal: controller.signal });
        const other = child(
          name,
          `const mutex = Mutex.attach(shm, 0); const condition = Condition.attach(shm, 64);
           await mutex.lockAsync(); process.stdout.write('waiting');
           await condition.waitAsync(mutex); mutex.unlock(); process.stdout.write('woken');`,
        );
        await said(other, 'waiting');
        while (Atomics.load(words, 17) < 2) await pause(5);
        await pause(200);
        condition.notify(1);
        controller.abort();
        await assert.rejects(first, { name: 'AbortError' });
        mutex.unlock();
        await said(other, 'woken');
      }
    }));

  it('Semaphore.waitAsync: post then abort; the waiter of another process still takes it', async () =>
    withShm(async (shm, name) => {
      const sem = Semaphore.create(shm, 80, 0);
      for (let round = 0; round < 5; round++) {
        const controller = new AbortController();
        const first = sem.waitAsync({ signal: controller.signal });
        await pause(50);
        const other = child(
          name,
          `const sem = Semaphore.attach(shm, 80); process.stdout.write('waiting'); await sem.waitAsync(); process.stdout.write('woken');`,
        );
        await said(other, 'waiting');
        await pause(200);
        sem.post();
        controller.abort();
        const outcome = await first.then(
          () => 'took it',
          (e: Error) => e.name,
        );
        if (outcome === 'took it') sem.post(); // the abort came after the take: give it back
        await said(other, 'woken');
        assert.equal(sem.value, 0);
      }
    }));

  it('Mutex.lockAsync: aborted as the lock is handed over; the waiter of another process still gets it', async () =>
    withShm(async (shm, name) => {
      const mutex = Mutex.create(shm, 0);
      for (let round = 0; round < 5; round++) {
        // The holder is a worker of this process, so that the unlock and the abort are close.
        const sab = new SharedArrayBuffer(8);
        const go = new Int32Array(sab);
        const holder = new Worker(
          `const { workerData, parentPort } = require('node:worker_threads');
           import(workerData.entry).then(({ Mutex, SharedMemory }) => {
             const shm = SharedMemory.open(workerData.name);
             const mutex = Mutex.attach(shm, 0);
             mutex.lock();
             parentPort.postMessage('locked');
             Atomics.wait(workerData.go, 0, 0);
             mutex.unlock();
             shm.close();
           });`,
          { eval: true, workerData: { entry, name, go } },
        );
        const ended = new Promise((done) => holder.once('exit', done));
        await new Promise((done) => holder.once('message', done));
        const controller = new AbortController();
        const first = mutex.lockAsync({ signal: controller.signal });
        await pause(50);
        const other = child(
          name,
          `const mutex = Mutex.attach(shm, 0); process.stdout.write('waiting'); await mutex.lockAsync(); mutex.unlock(); process.stdout.write('woken');`,
        );
        await said(other, 'waiting');
        await pause(200);
        Atomics.store(go, 0, 1);
        Atomics.notify(go, 0);
        await pause(round % 3);
        controller.abort();
        const outcome = await first.then(
          () => 'got it',
          (e: Error) => e.name,
        );
        if (outcome === 'got it') mutex.unlock();
        await said(other, 'woken');
        await ended;
      }
    }));
});

describe('blocking waits let worker.terminate() and process.exit() finish', () => {
  const sleepers: Array<[string, string]> = [
    ['Condition.wait', 'const m = Mutex.attach(sab, 0); m.lock(); Condition.attach(sab, 64).wait(m);'],
    ['Event.wait', 'Event.attach(sab, 80).wait();'],
    ['futex.wait', 'futex.wait(new Int32Array(sab), 24, 0);'],
    ['Semaphore.wait', 'Semaphore.attach(sab, 112).wait();'],
    ['Mutex.lock', 'Mutex.attach(sab, 128).lock();'],
  ];
  const setUp = async () => {
    const { Event } = await import('../src/index.js');
    const sab = new SharedArrayBuffer(256);
    Mutex.create(sab, 0);
    Condition.create(sab, 64);
    Event.create(sab, 80);
    Semaphore.create(sab, 112, 0);
    const held = Mutex.create(sab, 128);
    return { sab, held };
  };
  for (const [what, body] of sleepers) {
    it(`a worker asleep in ${what} (no timeout) is terminated promptly`, async () => {
      const { sab, held } = await setUp();
      held.lock();
      const worker = new Worker(
        `const { workerData, parentPort } = require('node:worker_threads');
         import(workerData.entry).then(({ Condition, Event, futex, Mutex, Semaphore }) => {
           const sab = workerData.sab;
           parentPort.postMessage('sleeping');
           ${body}
           parentPort.postMessage('woke up');
         });`,
        { eval: true, workerData: { entry, sab } },
      );
      const messages: unknown[] = [];
      worker.on('message', (m) => messages.push(m));
      while (messages.length === 0) await pause(5);
      await pause(300);
      const started = performance.now();
      await worker.terminate();
      const took = performance.now() - started;
      held.unlock();
      assert.deepEqual(messages, ['sleeping']);
      // 200 ms is the aim (a sleep lasts at most 100 ms); generous for a loaded machine.
      assert.ok(took < 2000, `terminate took ${took.toFixed(0)} ms`);
    });
  }

  it('process.exit() while a worker sleeps in Condition.wait, Event.wait and futex.wait', async () => {
    const proc = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { Worker } from 'node:worker_threads';
         const { Condition, Event, Mutex } = await import(process.env.MEMMAP);
         const sab = new SharedArrayBuffer(256);
         Mutex.create(sab, 0); Condition.create(sab, 64); Event.create(sab, 80);
         const bodies = [
           'const m = Mutex.attach(sab, 0); m.lock(); Condition.attach(sab, 64).wait(m);',
           'Event.attach(sab, 80).wait();',
           'futex.wait(new Int32Array(sab), 24, 0);',
         ];
         for (const body of bodies) {
           new Worker(\`const { workerData } = await import('node:worker_threads');
             const { Condition, Event, futex, Mutex } = await import(workerData.entry);
             const sab = workerData.sab; \${body}\`,
             { eval: true, workerData: { entry: process.env.MEMMAP, sab } });
         }
         setTimeout(() => { process.stdout.write('exiting'); process.exit(0); }, 500);`,
      ],
      { env: { ...process.env, MEMMAP: entry }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await said(proc, 'exiting');
    const started = performance.now();
    const code = await new Promise((done) => proc.once('exit', done));
    assert.equal(code, 0);
    const took = performance.now() - started;
    assert.ok(took < 3000, `exit took ${took.toFixed(0)} ms`);
  });
});
