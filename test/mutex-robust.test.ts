/**
 * The robust Mutex under kill -9: at each window between two stores of lock, unlock and
 * takeover (made certain by the addon's test hook, which stops the process at a named step),
 * at random moments of a lock/unlock loop, with several processes checking that no two ever
 * hold it at once, and with a holder in another pid namespace.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it, type TestContext } from 'node:test';
import { Mutex, SharedMemory } from '../src/index.js';
import { coreAddon, entry, saidBy } from './helpers/index.js';

/** The steps of native/os/lock_linux.cc a process can be stopped at. */
const STEP = {
  lockPending: 1,
  lockTaken: 2,
  lockLinked: 3,
  unlockPending: 4,
  unlockUnlinked: 5,
  unlockReleased: 6,
  unlockWoken: 7,
  takenOver: 8,
  waiterWoken: 9,
} as const;

/** A child that attaches the Mutex at 0 of NAME and runs `body`; `stop(step)` arms the hook. */
function child(
  name: string,
  body: string,
  prefix: string[] = [],
  nodeArgs: string[] = [],
  env: Record<string, string> = {},
): ChildProcess {
  const args = [
    ...nodeArgs,
    '--input-type=module',
    '-e',
    `const { Mutex, SharedMemory } = await import(process.env.MEMMAP);
         const native = { exports: {} };
         process.dlopen(native, process.env.ADDON);
         const stop = (step) => native.exports.lockTestStop(step);
         const shm = SharedMemory.open(process.env.NAME);
         const mutex = Mutex.attach(shm, 0);
         const words = new Int32Array(shm.sharedBuffer());
         ${body}`,
  ];
  const [command, ...rest] = [...prefix, process.execPath, ...args] as [string, ...string[]];
  return spawn(command, rest, {
    env: { ...process.env, MEMMAP: entry, ADDON: coreAddon, NAME: name, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

const said = saidBy;

/** Waits (bounded) until the process is stopped (state T in /proc/PID/stat). */
async function stopped(pid: number): Promise<void> {
  const end = performance.now() + 10_000;
  while (performance.now() < end) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'T') return;
    await new Promise((done) => setTimeout(done, 2));
  }
  throw new Error(`process ${pid} never reached its step`);
}

function killed(proc: ChildProcess): Promise<unknown> {
  const exited = new Promise((done) => proc.once('exit', done));
  proc.kill('SIGKILL');
  return exited;
}

function withShm<T>(fn: (shm: SharedMemory, name: string) => Promise<T>): Promise<T> {
  const name = `/memmap-robust-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const shm = SharedMemory.create(name, 4096);
  Mutex.create(shm, 0);
  return fn(shm, name).finally(() => {
    shm.close();
    SharedMemory.unlink(name);
  });
}

/** Waits (bounded) until FUTEX_WAITERS is set: a waiter announced itself and sleeps. */
async function announced(words: Int32Array): Promise<void> {
  const end = performance.now() + 10_000;
  while (Atomics.load(words, 0) >= 0 && performance.now() < end) await new Promise((d) => setTimeout(d, 2));
  assert.ok(Atomics.load(words, 0) < 0, 'FUTEX_WAITERS was never set');
  // The waiter set the bit just before going to sleep in the kernel: give it that moment.
  await new Promise((d) => setTimeout(d, 50));
}

describe('Mutex: kill -9 at each window between two stores', () => {
  // In each case a waiter of this process sleeps, with no timeout and no polling to rescue
  // it (lockAsync sleeps on the waiter thread until the kernel wakes it), while the other
  // process is killed at the step: only a correct protocol wakes the waiter.
  const lockSteps: Array<[string, number, 'acquired' | 'owner-died']> = [
    ['lock: pending set, before the CAS', STEP.lockPending, 'acquired'],
    ['lock: after the CAS, before the link', STEP.lockTaken, 'owner-died'],
    ['lock: linked, pending not yet cleared', STEP.lockLinked, 'owner-died'],
  ];
  for (const [title, step, expected] of lockSteps) {
    it(`${title}: the waiter gets '${expected}'`, () =>
      withShm(async (shm, name) => {
        const mutex = Mutex.attach(shm, 0);
        const words = new Int32Array(shm.sharedBuffer());
        const proc = child(name, `stop(${step}); mutex.lock();`);
        await stopped(proc.pid as number);
        const waiter = mutex.lockAsync();
        if (expected === 'owner-died') await announced(words);
        await killed(proc);
        assert.equal(await waiter, expected);
        assert.equal(Atomics.load(words, 0) & 0x40000000, 0, 'FUTEX_OWNER_DIED cleared by the takeover');
        mutex.unlock();
        assert.equal(mutex.locked, false);
      }));
  }
  const unlockSteps: Array<[string, number, 'acquired' | 'owner-died']> = [
    ['unlock: pending set, still linked', STEP.unlockPending, 'owner-died'],
    ['unlock: unlinked, word still held', STEP.unlockUnlinked, 'owner-died'],
    ['unlock: released, waiter not woken', STEP.unlockReleased, 'acquired'],
    ['unlock: waiter woken, pending not cleared', STEP.unlockWoken, 'acquired'],
  ];
  for (const [title, step, expected] of unlockSteps) {
    it(`${title}: the waiter gets '${expected}'`, () =>
      withShm(async (shm, name) => {
        const mutex = Mutex.attach(shm, 0);
        const words = new Int32Array(shm.sharedBuffer());
        const proc = child(
          name,
          `mutex.lock(); process.stdout.write('locked');
           process.stdin.once('data', () => { stop(${step}); mutex.unlock(); setInterval(() => {}, 1000); });`,
        );
        await said(proc, 'locked');
        const waiter = mutex.lockAsync();
        await announced(words);
        proc.stdin?.write('go');
        await stopped(proc.pid as number);
        await killed(proc);
        assert.equal(await waiter, expected);
        mutex.unlock();
        assert.equal(mutex.locked, false);
      }));
  }

  it("takeover: killed after taking over a dead owner's lock, before the link: 'owner-died' again", () =>
    withShm(async (shm, name) => {
      const mutex = Mutex.attach(shm, 0);
      const words = new Int32Array(shm.sharedBuffer());
      const first = child(name, `mutex.lock(); process.stdout.write('locked');`);
      await said(first, 'locked');
      await killed(first);
      assert.ok(Atomics.load(words, 0) & 0x40000000, 'the kernel set FUTEX_OWNER_DIED');
      const second = child(name, `stop(${STEP.takenOver}); mutex.lock();`);
      await stopped(second.pid as number);
      assert.equal(mutex.tryLock(), false, 'held by the stopped process');
      const waiter = mutex.lockAsync();
      await announced(words);
      await killed(second);
      assert.equal(await waiter, 'owner-died');
      mutex.unlock();
    }));

  const chrt = spawnSync('chrt', ['--fifo', '1', 'true']).status === 0;
  it('a sync waiter killed after its wake: the kernel passes the wake on to the next waiter', async (t) => {
    // The waiter to be killed runs SCHED_FIFO, so that the kernel's queue puts it first and
    // the unlock wakes it, not the other one.
    if (!chrt) return t.skip('chrt --fifo needs root');
    await withShm(async (shm, name) => {
      const mutex = Mutex.attach(shm, 0);
      const words = new Int32Array(shm.sharedBuffer());
      assert.equal(mutex.lock(), 'acquired');
      const next = child(
        name,
        `process.stdout.write('ready'); await mutex.lockAsync(); process.stdout.write('got it'); mutex.unlock();`,
      );
      await said(next, 'ready');
      await announced(words);
      const woken = child(name, `stop(${STEP.waiterWoken}); mutex.lock();`, ['chrt', '--fifo', '1']);
      await new Promise((d) => setTimeout(d, 500));
      mutex.unlock();
      await stopped(woken.pid as number);
      await killed(woken);
      await said(next, 'got it');
      assert.equal(mutex.lock({ timeout: 10_000 }), 'acquired');
      mutex.unlock();
    });
  });
});

describe('Mutex: kill -9 at random moments', () => {
  it('a process looping lock/unlock killed at random, 300 rounds (at most 60 s): never stuck', () =>
    withShm(async (shm, name) => {
      const mutex = Mutex.attach(shm, 0);
      const loop = `process.stdout.write('ready'); for (;;) { mutex.lock(); words[16]++; mutex.unlock(); }`;
      const start = () => {
        const proc = child(name, loop);
        return { proc, ready: said(proc, 'ready') };
      };
      const end = performance.now() + 60_000;
      let next = start();
      let rounds = 0;
      const seen = { acquired: 0, 'owner-died': 0 };
      for (; rounds < 300 && performance.now() < end; rounds++) {
        const { proc, ready } = next;
        next = start();
        await ready;
        await new Promise((d) => setTimeout(d, Math.random() * 5));
        await killed(proc);
        const result = mutex.lock({ timeout: 10_000 });
        seen[result]++;
        mutex.unlock();
      }
      next.ready.catch(() => {});
      await killed(next.proc);
      assert.ok(rounds >= 50, `only ${rounds} rounds in the time`);
      assert.ok(seen['owner-died'] > 0, `the kill never caught a holder: ${JSON.stringify(seen)}`);
    }));

  it('no two holders ever: 3 processes contend while one is killed at random and replaced', () =>
    withShm(async (shm, name) => {
      const words = new Int32Array(shm.sharedBuffer());
      // words[16]: inside the critical section (0 or 1); [17] violations; [18] entries; [19] stop.
      const body = `process.stdout.write('ready');
        while (Atomics.load(words, 19) === 0) {
          const result = mutex.lock();
          if (result === 'owner-died') Atomics.store(words, 16, 0);
          if (Atomics.add(words, 16, 1) !== 0) Atomics.add(words, 17, 1);
          Atomics.add(words, 18, 1);
          for (let i = 0; i < 50; i++) if (Atomics.load(words, 16) !== 1) Atomics.add(words, 17, 1);
          Atomics.sub(words, 16, 1);
          mutex.unlock();
        }`;
      const procs = Array.from({ length: 3 }, () => child(name, body));
      await Promise.all(procs.map((p) => said(p, 'ready')));
      const end = performance.now() + 15_000;
      let kills = 0;
      while (kills < 40 && performance.now() < end) {
        await new Promise((d) => setTimeout(d, 5 + Math.random() * 20));
        const at = Math.floor(Math.random() * procs.length);
        await killed(procs[at] as ChildProcess);
        kills++;
        const fresh = child(name, body);
        procs[at] = fresh;
        await said(fresh, 'ready');
      }
      Atomics.store(words, 19, 1);
      await Promise.all(procs.map((p) => new Promise((d) => p.once('exit', d))));
      assert.equal(Atomics.load(words, 17), 0, 'two processes were inside at once');
      assert.ok(Atomics.load(words, 18) > 1000, `only ${Atomics.load(words, 18)} entries`);
      const mutex = Mutex.attach(shm, 0);
      assert.notEqual(mutex.lock({ timeout: 10_000 }), undefined);
      mutex.unlock();
    }));
});

describe('Mutex: a holder whose Mutex and memory are unreachable', () => {
  it(
    'a holder that keeps no reference, garbage collected while it holds the lock, then killed: owner-died',
    {
      timeout: 60_000,
    },
    () =>
      withShm(async (shm, name) => {
        const mutex = Mutex.attach(shm, 0);
        const words = new Int32Array(shm.sharedBuffer());
        // The child's own Mutex and SharedMemory go out of reach after the block; collections
        // (and the finalizers' turns) follow before it reports. Memory unmapped under the record
        // would stop the kernel's walk of its robust list at death: the lock would stay held.
        const holder = child(
          name,
          `(() => { const own = SharedMemory.open(process.env.NAME); Mutex.attach(own, 0).lock(); })();
         for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 25)); }
         process.stdout.write('locked'); setInterval(() => {}, 1000);`,
          [],
          ['--expose-gc'],
        );
        await said(holder, 'locked');
        assert.equal(mutex.tryLock(), false, 'the lock is still held after the collections');
        const waiter = mutex.lockAsync({ timeout: 20_000 });
        await announced(words);
        await killed(holder);
        assert.equal(await waiter, 'owner-died');
        mutex.unlock();
      }),
  );

  it(
    'a holder that closes one of two mappings it holds locks in: that lock is handed on at once, the other at its death',
    {
      timeout: 60_000,
    },
    () =>
      withShm((first, firstName) =>
        withShm(async (second, secondName) => {
          const a = Mutex.attach(first, 0);
          const b = Mutex.attach(second, 0);
          const holder = child(
            firstName,
            `const other = SharedMemory.open(process.env.SECOND);
           mutex.lock();
           Mutex.attach(other, 0).lock();
           process.stdout.write('locked');
           process.stdin.once('data', () => { other.close(); process.stdout.write('closed'); setInterval(() => {}, 1000); });`,
            [],
            [],
            { SECOND: secondName },
          );
          await said(holder, 'locked');
          assert.equal(b.tryLock(), false);
          // The lock in the mapping it closes is handed on as a dead holder's would be...
          const handedOn = b.lockAsync({ timeout: 20_000 });
          await announced(new Int32Array(second.sharedBuffer()));
          holder.stdin?.write('go');
          assert.equal(await handedOn, 'owner-died');
          // ...and its record left the thread's robust list, which the kernel still walks whole
          // when the holder is killed (the record linked after the first lock came off it).
          const firstWaiter = a.lockAsync({ timeout: 20_000 });
          await announced(new Int32Array(first.sharedBuffer()));
          await killed(holder);
          assert.equal(await firstWaiter, 'owner-died');
          a.unlock();
          b.unlock();
        }),
      ),
  );
});

describe('Mutex across pid namespaces', () => {
  const unshare = spawnSync('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', 'true']);
  const why = unshare.status === 0 ? undefined : 'unshare --pid needs root and util-linux';
  /** A holder in another pid namespace, which runs `prelude` first, is waited for; killed, owner-died. */
  const holderInAnotherNamespace = (prelude: string) => async (t: TestContext) => {
    if (why !== undefined) return t.skip(why);
    await withShm(async (shm, name) => {
      const mutex = Mutex.attach(shm, 0);
      const holder = child(
        name,
        `${prelude} mutex.lock(); process.stdout.write('locked ' + process.pid); setInterval(() => {}, 1000);`,
        ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc'],
      );
      await said(holder, 'locked 1');
      assert.equal(mutex.tryLock(), false);
      await assert.rejects(mutex.lockAsync({ timeout: 300 }), { code: 'ERR_MEMMAP_TIMEOUT' });
      assert.throws(() => mutex.lock({ timeout: 300 }), { code: 'ERR_MEMMAP_TIMEOUT' });
      // Bounded by our own abort, so that a lost owner-died ends the wait and lets this file's
      // process exit (a timed-out test alone would leave the wait keeping it alive).
      const give = new AbortController();
      const timer = setTimeout(() => give.abort(), 10_000);
      const waiting = mutex.lockAsync({ signal: give.signal });
      await killed(holder);
      try {
        assert.equal(await waiting, 'owner-died');
      } finally {
        clearTimeout(timer);
      }
      mutex.unlock();
    });
  };

  it(
    'a live holder in another pid namespace is waited for; killed, it is reported owner-died',
    { timeout: 30_000 },
    holderInAnotherNamespace(''),
  );

  it(
    'the same when the holder loaded node:child_process first',
    { timeout: 30_000 },
    holderInAnotherNamespace("await import('node:child_process');"),
  );
});
