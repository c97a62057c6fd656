import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mapFile, pageSize, SharedMemory } from '../src/index.js';
import { assertThrowsCode, entry, tempDir, withMount } from './helpers/index.js';

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

  it('the size a resize() set while the flush ran is synced before the promise resolves (seen with strace)', (t) => {
    const probe = spawnSync('strace', ['-V'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip('strace is not installed');
      return;
    }
    const path = patterned(16 * MiB);
    const log = join(dir, `strace${counter++}.log`);
    const source = `
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(${JSON.stringify(path)}, { mode: 'write' });
      const b = m.buffer;
      for (let i = 0; i < b.length; i += 4096) b[i] = 6;
      const p = m.flushAsync();
      m.resize(${24 * MiB});
      m.close();
      await p;
      process.stdout.write('resolved');`;
    const child = spawnSync(
      'strace',
      [
        '-f',
        '-qq',
        '-e',
        'trace=fallocate,ftruncate,fsync',
        '-o',
        log,
        process.execPath,
        '--input-type=module',
        '-e',
        source,
      ],
      { encoding: 'utf8', env: { ...process.env, MEMMAP: entry } },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout, 'resolved');
    const calls = readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => /fallocate\(|ftruncate\(|fsync\(/.test(line) && !/unfinished/.test(line));
    // Growing reserves the blocks: fallocate from the old end to the new one.
    const grown = calls.findIndex((line) => line.includes('fallocate(') && line.includes(String(8 * MiB)));
    assert.ok(grown >= 0, calls.join('\n'));
    assert.ok(
      calls.slice(grown + 1).some((line) => /fsync\(\d+\) += 0/.test(line) || /fsync resumed.*= 0/.test(line)),
      `an fsync after the file grew:\n${calls.join('\n')}`,
    );
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

describe('growing reserves the blocks, so a full file system answers ENOSPC from the call', () => {
  it('resize() past a 1 MiB tmpfs: ENOSPC, and file and mapping are as they were', async (t) => {
    await withMount(t, dir, 'tmpfs', 'size=1m', (at) => {
      const path = join(at, 'grow.bin');
      const m = mapFile(path, { mode: 'write', create: true, length: 256 << 10, grow: true });
      try {
        m.buffer.write('head');
        assertThrowsCode(() => m.resize(4 * MiB), 'ENOSPC');
        assert.equal(m.length, 256 << 10);
        assert.equal(statSync(path).size, 256 << 10, 'the file keeps its size');
        assert.equal(m.faulted, false);
        assert.equal(m.buffer.toString('latin1', 0, 4), 'head');
        m.flush();
        // Within the room there is, growing works.
        m.resize(512 << 10);
        m.buffer.write('tail', (512 << 10) - 4);
        m.flush();
        assert.equal(readAt(path, (512 << 10) - 4, 4).toString('latin1'), 'tail');
      } finally {
        m.close();
      }
    });
  });

  it("mapFile's grow and create past a 1 MiB tmpfs: ENOSPC, nothing mapped, the file keeps its size", async (t) => {
    await withMount(t, dir, 'tmpfs', 'size=1m', (at) => {
      const path = join(at, 'created.bin');
      assertThrowsCode(() => mapFile(path, { mode: 'write', create: true, length: 4 * MiB, grow: true }), 'ENOSPC');
      assert.equal(statSync(path).size, 0);
      writeFileSync(path, Buffer.alloc(100, 1));
      assertThrowsCode(() => mapFile(path, { mode: 'write', length: 2 * MiB, grow: true }), 'ENOSPC');
      assert.equal(statSync(path).size, 100);
    });
  });

  it('sparse: true grows without reserving (a hole costs nothing until written)', async (t) => {
    await withMount(t, dir, 'tmpfs', 'size=1m', (at) => {
      const path = join(at, 'sparse.bin');
      using m = mapFile(path, { mode: 'write', create: true, length: 8 * MiB, grow: true, sparse: true });
      m.resize(16 * MiB);
      assert.equal(statSync(path).size, 16 * MiB);
      assert.ok(statSync(path).blocks * 512 < MiB, 'no blocks reserved');
      m.buffer.write('x', 0);
      m.flush();
      assert.equal(readAt(path, 0, 1).toString('latin1'), 'x');
    });
    assertThrowsCode(
      () => mapFile(join(dir, 'no.bin'), { mode: 'write', sparse: 1 as unknown as boolean }),
      'ERR_INVALID_ARG_TYPE',
    );
  });

  it('a file system without fallocate (ramfs) grows the file sparsely all the same', async (t) => {
    await withMount(t, dir, 'ramfs', 'mode=700', (at) => {
      const path = join(at, 'ram.bin');
      using m = mapFile(path, { mode: 'write', create: true, length: pageSize, grow: true });
      m.resize(4 * pageSize);
      m.buffer.write('end', 4 * pageSize - 3);
      m.flush();
      assert.equal(statSync(path).size, 4 * pageSize);
      assert.equal(readAt(path, 4 * pageSize - 3, 3).toString('latin1'), 'end');
    });
  });

  it('on ext4 the grown part has its blocks allocated', () => {
    const path = join(dir, `alloc${counter++}.bin`);
    using m = mapFile(path, { mode: 'write', create: true, length: pageSize, grow: true });
    m.resize(4 * MiB);
    assert.ok(statSync(path).blocks * 512 >= 4 * MiB, `blocks: ${statSync(path).blocks}`);
  });
});

describe('resize() that fails half-way leaves file and mapping in step', () => {
  it('growing after a protect() of part of it (two kernel mappings): maps anew and succeeds', () => {
    const path = patterned(4 * pageSize);
    using m = mapFile(path, { mode: 'write' });
    m.protect('read', { offset: 0, length: pageSize });
    m.resize(8 * pageSize);
    assert.equal(m.length, 8 * pageSize);
    assert.equal(statSync(path).size, 8 * pageSize);
    assert.equal(m.buffer[pageSize + 1], ((pageSize + 1) * 7) % 251, 'the data is kept');
    m.buffer.write('end', 8 * pageSize - 3);
    m.flush();
    assert.equal(readAt(path, 8 * pageSize - 3, 3).toString('latin1'), 'end');
  });

  it('shrinking a memory file sealed against shrinking: EPERM before anything changes', () => {
    using shm = SharedMemory.anonymous(4 * pageSize);
    const before = shm.buffer;
    before.write('last', 4 * pageSize - 4);
    shm.seal('shrink');
    assertThrowsCode(() => shm.resize(pageSize), 'EPERM');
    assert.equal(shm.length, 4 * pageSize);
    assert.equal(statSync(`/proc/self/fd/${shm.fd}`).size, 4 * pageSize);
    assert.equal(before.length, 4 * pageSize, 'the Buffer was not even detached');
    assert.equal(shm.buffer.toString('latin1', 4 * pageSize - 4), 'last');
    // Growing is still allowed.
    shm.resize(6 * pageSize);
    assert.equal(shm.length, 6 * pageSize);
  });

  it('shared memory grows sparsely, as create() makes it: no memory is committed by resize()', () => {
    using shm = SharedMemory.anonymous(pageSize);
    shm.resize(64 * MiB);
    assert.equal(shm.length, 64 * MiB);
    assert.ok(statSync(`/proc/self/fd/${shm.fd}`).blocks * 512 < MiB, 'nothing reserved');
  });

  it('growing a memory file sealed against growing: EPERM, nothing changed', () => {
    using shm = SharedMemory.anonymous(pageSize);
    shm.seal('grow');
    assertThrowsCode(() => shm.resize(2 * pageSize), 'EPERM');
    assert.equal(shm.length, pageSize);
    assert.equal(statSync(`/proc/self/fd/${shm.fd}`).size, pageSize);
  });
});
