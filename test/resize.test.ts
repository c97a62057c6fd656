import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mapAnonymous, mapFile, pageSize, SharedMemory } from '../src/index.js';
import { assertThrowsCode, coreAddon, tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;

function fileWith(data: Buffer): string {
  const path = join(dir, `r${counter++}.bin`);
  writeFileSync(path, data);
  return path;
}

describe('resize', () => {
  it('grows and shrinks the file and the mapping in place when no view is alive; the data stays', () => {
    const data = Buffer.alloc(3 * pageSize + 10);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const path = fileWith(data);
    using m = mapFile(path, { mode: 'write' });
    const core = createRequire(import.meta.url)(coreAddon) as {
      regionCounts(): [number, number, number, number, number];
    };
    const [regions, bytes, retiring] = core.regionCounts();
    m.resize(5 * pageSize);
    assert.deepEqual(
      core.regionCounts().slice(0, 3),
      [regions, bytes - data.length + 5 * pageSize, retiring],
      'resized in place: no new region',
    );
    assert.equal(statSync(path).size, 5 * pageSize);
    assert.equal(m.length, 5 * pageSize);
    const grown = m.buffer;
    assert.ok(grown.subarray(0, data.length).equals(data), 'the old bytes are kept');
    assert.equal(grown.subarray(data.length).indexOf(1), -1, 'the new part reads zeros');
  });

  it('with views alive: maps anew, detaches the old Buffer, and keeps the data; shrinking cuts the file', () => {
    const path = fileWith(Buffer.alloc(pageSize, 1));
    using m = mapFile(path, { mode: 'write', offset: 100 });
    const before = m.buffer;
    const shared = new Uint8Array(m.sharedBuffer());
    before.write('kept', 0);
    m.resize(3 * pageSize);
    assert.equal(before.length, 0, 'the old Buffer is detached');
    assert.equal(shared[0], 0, 'a stale SharedArrayBuffer reads zeros instead of crashing');
    assert.equal(statSync(path).size, 100 + 3 * pageSize);
    assert.equal(m.buffer.toString('latin1', 0, 4), 'kept');
    m.buffer.write('end', 3 * pageSize - 3);
    m.resize(10);
    m.flush();
    assert.equal(statSync(path).size, 110);
    assert.equal(readFileSync(path).toString('latin1', 100, 104), 'kept');
    assert.equal(m.buffer.length, 10);
    m.resize(0);
    assert.equal(m.length, 0);
    assert.equal(statSync(path).size, 100);
  });

  it('an append-only log grows a megabyte at a time and ends with every record', () => {
    const path = join(dir, 'events.log');
    using log = mapFile(path, { mode: 'write', create: true, length: 1 << 20, grow: true });
    let end = 0;
    const record = Buffer.alloc(1000);
    for (let i = 0; i < 5000; i++) {
      record.fill(i % 256);
      if (end + record.length > log.length) log.resize(log.length + (1 << 20));
      record.copy(log.buffer, end);
      end += record.length;
    }
    log.resize(end);
    log.flush();
    const file = readFileSync(path);
    assert.equal(file.length, 5_000_000);
    for (let i = 0; i < 5000; i += 499) assert.equal(file[i * 1000 + 999], i % 256);
  });

  it('errors: the wrong mode, anonymous memory, a sealed memory file, bad lengths, closed', () => {
    const path = fileWith(Buffer.alloc(100));
    using read = mapFile(path);
    assertThrowsCode(() => read.resize(200), 'ERR_MEMMAP_UNSUPPORTED');
    using copy = mapFile(path, { mode: 'copy' });
    assertThrowsCode(() => copy.resize(200), 'ERR_MEMMAP_UNSUPPORTED');
    using anon = mapAnonymous(pageSize);
    assertThrowsCode(() => anon.resize(2 * pageSize), 'ERR_MEMMAP_UNSUPPORTED');
    using sealed = SharedMemory.anonymous(pageSize);
    sealed.seal('grow', 'shrink');
    assertThrowsCode(() => sealed.resize(2 * pageSize), 'EPERM');
    assert.equal(sealed.length, pageSize, 'nothing changed');
    const m = mapFile(path, { mode: 'write' });
    assertThrowsCode(() => m.resize(-1), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => m.resize(1.5), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => m.resize('10' as unknown as number), 'ERR_INVALID_ARG_TYPE');
    m.close();
    assertThrowsCode(() => m.resize(10), 'ERR_MEMMAP_CLOSED');
  });

  it('a named shared memory object resized by its creator; a peer follows with remap()', () => {
    const name = `/memmap-resize-${process.pid}`;
    using shm = SharedMemory.create(name, pageSize);
    try {
      shm.buffer.write('first');
      shm.resize(4 * pageSize);
      shm.buffer.write('last', 4 * pageSize - 4);
      using peer = SharedMemory.open(name);
      assert.equal(peer.length, 4 * pageSize);
      assert.equal(peer.buffer.toString('latin1', 4 * pageSize - 4), 'last');
    } finally {
      SharedMemory.unlink(name);
    }
  });
});
