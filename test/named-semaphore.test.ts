import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NamedSemaphore, SharedMemory } from '../src/index.js';
import { assertExitedCleanly, assertRejectsCode, assertThrowsCode, root, runModule, tempDir } from './helpers/index.js';

const dir = tempDir();
const prefix = `/memmap-nsem-${process.pid}`;
let counter = 0;
const semaphores: string[] = [];
const objects: string[] = [];
after(() => {
  for (const name of semaphores) {
    try {
      NamedSemaphore.unlink(name);
    } catch {}
  }
  for (const name of objects) {
    try {
      SharedMemory.unlink(name);
    } catch {}
  }
});

function newName(list = semaphores): string {
  const name = `${prefix}-${counter++}`;
  list.push(name);
  return name;
}

/** Compiles test/fixtures/sem_peer.c: shm_open + sem_open, as C programs write them. */
function cPeer(): string {
  const output = join(dir, 'sem_peer');
  execFileSync('gcc', ['-O1', '-pthread', '-o', output, join(root, 'test', 'fixtures', 'sem_peer.c')]);
  return output;
}

/** Runs the C peer; resolves with its output once it exits, after `onLine` saw each line. */
function runPeer(args: string[], onLine?: (line: string) => void): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(cPeer(), args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (onLine) for (const line of chunk.split('\n').filter(Boolean)) onLine(line);
  });
  return new Promise((done) => child.once('close', (code) => done({ code, stdout })));
}

describe('NamedSemaphore', () => {
  it('counts: post adds, tryWait, wait and waitAsync take, value reads', async () => {
    using sem = NamedSemaphore.create(newName(), 2);
    assert.equal(sem.value, 2);
    assert.equal(sem.tryWait(), true);
    sem.wait();
    assert.equal(sem.tryWait(), false);
    sem.post();
    await sem.waitAsync();
    assert.equal(sem.value, 0);
    setTimeout(() => sem.post(), 30);
    await sem.waitAsync({ timeout: 5000 });
    assert.equal(sem.value, 0);
  });

  it('create and open share one count; unlink removes the name, not the open semaphore', () => {
    const name = newName();
    using a = NamedSemaphore.create(name, 0, { exclusive: true });
    using b = NamedSemaphore.open(name);
    a.post();
    assert.equal(b.value, 1);
    assert.equal(b.tryWait(), true);
    NamedSemaphore.unlink(name);
    a.post();
    assert.equal(b.tryWait(), true, 'still usable after unlink');
    assertThrowsCode(() => NamedSemaphore.open(name), 'ENOENT');
    assertThrowsCode(() => NamedSemaphore.unlink(name), 'ENOENT');
  });

  it('errors: EEXIST, ENOENT, bad names, bad values, EOVERFLOW, timeouts, abort', async () => {
    const name = newName();
    using sem = NamedSemaphore.create(name, 2 ** 31 - 1);
    assertThrowsCode(() => NamedSemaphore.create(name, 0, { exclusive: true }), 'EEXIST');
    assertThrowsCode(() => NamedSemaphore.open(`${name}-missing`), 'ENOENT');
    for (const bad of ['jobs', '/a/b', '/', `/${'x'.repeat(251)}`, '/.']) {
      assertThrowsCode(() => NamedSemaphore.create(bad), 'ERR_INVALID_ARG_VALUE');
    }
    assertThrowsCode(() => NamedSemaphore.open(42 as unknown as string), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => NamedSemaphore.create(newName(), -1), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => NamedSemaphore.create(newName(), 2 ** 31), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => NamedSemaphore.create(newName(), 0, { mode: 0o1777 }), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => NamedSemaphore.create(newName(), 0, { exclsive: true } as object), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => sem.post(), 'EOVERFLOW');
    using empty = NamedSemaphore.create(newName(), 0);
    assertThrowsCode(() => empty.wait({ timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    assertThrowsCode(() => empty.wait({ timeout: -1 }), 'ERR_OUT_OF_RANGE');
    await assertRejectsCode(empty.waitAsync({ timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    await assert.rejects(empty.waitAsync({ signal: AbortSignal.timeout(20) }), { name: 'AbortError' });
    // The rejected waits withdrew their registration: a post is taken by tryWait, not lost.
    empty.post();
    assert.equal(empty.tryWait(), true);
  });

  it('after close: ERR_MEMMAP_CLOSED on every call, and pending waitAsync calls reject with it', async () => {
    const sem = NamedSemaphore.create(newName(), 0);
    const pending = sem.waitAsync();
    sem.close();
    sem.close();
    assert.equal(sem.closed, true);
    await assertRejectsCode(pending, 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => sem.post(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => sem.tryWait(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => sem.wait(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => sem.value, 'ERR_MEMMAP_CLOSED');
    await assertRejectsCode(sem.waitAsync(), 'ERR_MEMMAP_CLOSED');
  });

  it('EACCES for a user the permission bits shut out', async () => {
    const name = newName();
    using sem = NamedSemaphore.create(name, 0, { mode: 0o600 });
    const asRoot = process.getuid?.() === 0;
    const child = await runModule(
      `const { NamedSemaphore } = await import(process.env.MEMMAP);
       if (${asRoot}) process.setuid(65534);
       try { NamedSemaphore.open(process.env.NAME); process.stdout.write('opened'); }
       catch (e) { process.stdout.write(e.code); }`,
      { NAME: name },
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, asRoot ? 'EACCES' : 'opened');
    assert.equal(sem.value, 0);
  });

  it('a C writer (shm_open, sem_open, sem_post) wakes a memmap waitAsync, which reads its bytes', async () => {
    const shmName = newName(objects);
    const semName = newName();
    using sem = NamedSemaphore.create(semName, 0);
    const waited = sem.waitAsync({ timeout: 10_000 });
    const peer = await runPeer(['post', shmName, semName, 'written by C']);
    assert.equal(peer.code, 0);
    await waited;
    using shm = SharedMemory.open(shmName, { readOnly: true });
    assert.equal(shm.buffer.toString('latin1', 0, 12), 'written by C');
  });

  it('a memmap writer wakes a C reader sleeping in sem_timedwait', async () => {
    const shmName = newName(objects);
    const semName = newName();
    using shm = SharedMemory.create(shmName, 4096);
    using sem = NamedSemaphore.create(semName, 0);
    const text = 'written by memmap';
    const peer = runPeer(['wait', shmName, semName, String(text.length)], (line) => {
      if (line !== 'waiting') return;
      shm.buffer.write(text, 'latin1');
      sem.post();
    });
    const result = await peer;
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `waiting\n${text}`);
  });

  it('a post from another Node process wakes both a sync wait in a worker and a waitAsync', async () => {
    const name = newName();
    using sem = NamedSemaphore.create(name, 0);
    const { Worker } = await import('node:worker_threads');
    const { entry } = await import('./helpers/index.js');
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(workerData.entry).then(({ NamedSemaphore }) => {
         const sem = NamedSemaphore.open(workerData.name);
         parentPort.postMessage('waiting');
         sem.wait({ timeout: 10000 });
         sem.close();
         parentPort.postMessage('woken');
       });`,
      { eval: true, workerData: { entry, name } },
    );
    const messages: string[] = [];
    const woken = new Promise<void>((done, fail) => {
      worker.on('message', (m: string) => {
        messages.push(m);
        if (m === 'woken') done();
      });
      worker.once('error', fail);
    });
    const mine = sem.waitAsync({ timeout: 10_000 });
    const child = await runModule(
      `const { NamedSemaphore } = await import(process.env.MEMMAP);
       const sem = NamedSemaphore.open(process.env.NAME);
       sem.post();
       sem.post();
       sem.close();`,
      { NAME: name },
    );
    assertExitedCleanly(child);
    await Promise.all([mine, woken]);
    assert.deepEqual(messages, ['waiting', 'woken']);
    await worker.terminate();
    assert.equal(sem.value, 0);
  });
});
