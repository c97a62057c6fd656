import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mapFile } from '../src/index.js';
import { tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;
const MiB = 1 << 20;

/** A file of `size` bytes, every byte (i * 7) % 251. */
function patterned(size: number): string {
  const path = join(dir, `d${counter++}.bin`);
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 7) % 251;
  writeFileSync(path, data);
  return path;
}

/** `length` bytes of the file at `position`, read through a descriptor of its own. */
function readAt(path: string, position: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const out = Buffer.alloc(length);
    assert.equal(readSync(fd, out, 0, length, position), length);
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Dirties every page of the mapping, so the write-back takes a while on the pool. */
function dirty(m: { buffer: Buffer }, value: number): void {
  const b = m.buffer;
  for (let i = 0; i < b.length; i += 4096) b[i] = value;
}

describe('flushAsync overlapping resize(), remap() and close()', () => {
  it('a shrinking resize() while it runs: the promise resolves and the new mapping is not faulted', async () => {
    const path = patterned(32 * MiB);
    using m = mapFile(path, { mode: 'write' });
    dirty(m, 1);
    const p = m.flushAsync();
    m.resize(MiB);
    await p;
    assert.equal(m.faulted, false, 'the new mapping is valid');
    m.buffer[10] = 99;
    m.flush();
    assert.equal(statSync(path).size, MiB);
    assert.equal(readAt(path, 10, 1)[0], 99);
    assert.equal(readAt(path, 0, 1)[0], 1, 'what the flush wrote is in the file');
  });

  it('a growing resize() while it runs: the promise covers the new size; data written is on disk after flush', async () => {
    const path = patterned(16 * MiB);
    using m = mapFile(path, { mode: 'write' });
    const before = m.buffer;
    dirty(m, 2);
    const p = m.flushAsync();
    m.resize(40 * MiB); // a Buffer is alive: the file is mapped anew
    assert.equal(before.length, 0);
    m.buffer.write('tail', 40 * MiB - 4);
    await p;
    assert.equal(m.faulted, false);
    assert.equal(statSync(path).size, 40 * MiB, 'the grown size');
    assert.equal(readAt(path, 4096, 1)[0], 2);
    await m.flushAsync();
    assert.equal(readAt(path, 40 * MiB - 4, 4).toString('latin1'), 'tail');
  });

  it('resize() then close() while it runs: no EBADF, and the fsync reaches the mapped file', async () => {
    for (const reuse of [false, true]) {
      const path = patterned(16 * MiB);
      const m = mapFile(path, { mode: 'write', length: 20 * MiB, grow: true });
      // The mapping grew its file, so the flush fsyncs it; a live view makes resize() map the
      // file anew and hand the descriptor over.
      void m.buffer;
      dirty(m, 3);
      const p = m.flushAsync();
      m.resize(24 * MiB);
      m.close();
      // Another open right away takes the lowest free descriptor number: the one the
      // mapping's file had.
      const other = reuse ? openSync(join(dir, `other${counter++}`), 'w') : -1;
      try {
        await p;
      } finally {
        if (other >= 0) closeSync(other);
      }
      assert.equal(statSync(path).size, 24 * MiB);
      assert.equal(readAt(path, 4096 * 5, 1)[0], 3);
      assert.equal(readAt(path, 4096 * 5 + 1, 1)[0], ((4096 * 5 + 1) * 7) % 251);
    }
  });

  it('remap() while it runs: resolves, and the remapped mapping is untouched', async () => {
    const path = patterned(16 * MiB);
    using m = mapFile(path, { mode: 'write' });
    dirty(m, 4);
    const p = m.flushAsync();
    m.remap({ length: MiB });
    await p;
    assert.equal(m.faulted, false);
    assert.equal(m.length, MiB);
    assert.equal(readAt(path, 0, 1)[0], 4);
  });

  it('a file truncated by someone else below both mappings is still reported', async () => {
    const path = patterned(8 * MiB);
    using m = mapFile(path, { mode: 'write' });
    dirty(m, 5);
    const p = m.flushAsync();
    m.resize(4 * MiB);
    const fd = openSync(path, 'r+');
    try {
      ftruncateSync(fd, MiB);
    } finally {
      closeSync(fd);
    }
    await assert.rejects(p, { code: 'ERR_MEMMAP_TRUNCATED' });
  });
});
