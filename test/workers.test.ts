import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { mapAnonymous, mapFile } from '../src/index.js';
import { tempDir } from './helpers/index.js';

const ROUNDS = 100_000;

/** Starts a worker that adds 1 to word 0 of `shared` ROUNDS times with Atomics.add. */
function adder(shared: SharedArrayBuffer): Promise<void> {
  const worker = new Worker(
    `
    const { workerData, parentPort } = require('node:worker_threads');
    const words = new Int32Array(workerData.shared);
    for (let i = 0; i < workerData.rounds; i++) Atomics.add(words, 0, 1);
    parentPort.postMessage('done');
    `,
    { eval: true, workerData: { shared, rounds: ROUNDS } },
  );
  return new Promise((done, fail) => {
    worker.once('message', () => done());
    worker.once('error', fail);
  });
}

describe('sharedBuffer() between worker threads', () => {
  it("two workers' Atomics.add on a file mapping all land", async () => {
    const path = join(tempDir(), 'counter.bin');
    writeFileSync(path, Buffer.alloc(4096));
    using m = mapFile(path, { mode: 'write' });
    const shared = m.sharedBuffer();
    assert.equal(m.sharedBuffer(), shared, 'the same SharedArrayBuffer on every call');
    await Promise.all([adder(shared), adder(shared)]);
    assert.equal(Atomics.load(new Int32Array(shared), 0), 2 * ROUNDS);
    assert.equal(m.buffer.readInt32LE(0), 2 * ROUNDS, 'the Buffer sees the same memory');
    m.flush();
  });

  it('works over anonymous memory too, and the memory outlives close() in the workers', async () => {
    const m = mapAnonymous(4096, { shared: true });
    const shared = m.sharedBuffer();
    await Promise.all([adder(shared), adder(shared)]);
    assert.equal(Atomics.load(new Int32Array(shared), 0), 2 * ROUNDS);
    m.close();
    assert.equal(Atomics.load(new Int32Array(shared), 0), 0, 'after close the view reads zeros');
  });
});
