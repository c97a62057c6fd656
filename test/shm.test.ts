import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, ftruncateSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SharedMemory } from '../src/index.js';
import { assertExitedCleanly, assertThrowsCode, entry, root, runModule, tempDir } from './helpers/index.js';

const dir = tempDir();
const prefix = `/memmap-test-${process.pid}`;
let counter = 0;
const made: string[] = [];
after(() => {
  for (const name of made) {
    try {
      SharedMemory.unlink(name);
    } catch {}
  }
});

function newName(): string {
  const name = `${prefix}-${counter++}`;
  made.push(name);
  return name;
}

/** Compiles test/fixtures/shm_peer.c, the C side of the interop tests. */
function cPeer(): string {
  const output = join(dir, 'shm_peer');
  execFileSync('gcc', ['-O1', '-o', output, join(root, 'test', 'fixtures', 'shm_peer.c')]);
  return output;
}

describe('named shared memory', () => {
  it('create, open in another process, see each other’s writes; raw layout, no header', async () => {
    const name = newName();
    using shm = SharedMemory.create(name, 8192, { exclusive: true });
    assert.equal(shm.length, 8192);
    assert.equal(shm.name, name);
    assert.equal(shm.mode, 'write');
    shm.buffer.write('from the creator');
    const child = await runModule(
      `
      const { SharedMemory } = await import(process.env.MEMMAP);
      const peer = SharedMemory.open(process.env.NAME);
      process.stdout.write(peer.buffer.toString('latin1', 0, 16) + ' ' + peer.length);
      peer.buffer.write('from the peer', 100);
      peer.close();
      `,
      { NAME: name },
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, 'from the creator 8192');
    assert.equal(shm.buffer.toString('latin1', 100, 113), 'from the peer');
  });

  it('a C program using shm_open sees memmap’s bytes, and memmap sees the C program’s', () => {
    const peer = cPeer();
    const name = newName();
    using shm = SharedMemory.create(name, 4096);
    shm.buffer.write('written by memmap');
    assert.equal(execFileSync(peer, ['read', name, '17'], { encoding: 'latin1' }), 'written by memmap');
    const other = newName();
    execFileSync(peer, ['write', other, 'written by C']);
    using fromC = SharedMemory.open(other, { readOnly: true });
    assert.equal(fromC.length, 4096);
    assert.equal(fromC.mode, 'read');
    assert.equal(fromC.buffer.toString('latin1', 0, 12), 'written by C');
  });

  it('is created 0600 and listed; unlink removes the name but not the mapping', () => {
    const name = newName();
    const shm = SharedMemory.create(name, 4096);
    const listed = SharedMemory.list().find((info) => info.name === name);
    assert.deepEqual(listed, { name, size: 4096, mode: 0o600 });
    shm.buffer[0] = 7;
    shm.unlink();
    assert.equal(
      SharedMemory.list().find((info) => info.name === name),
      undefined,
    );
    assert.equal(shm.buffer[0], 7);
    assertThrowsCode(() => SharedMemory.open(name), 'ENOENT');
    shm.close();
  });

  it('errors: EEXIST, ENOENT, bad names, bad sizes', () => {
    const name = newName();
    using shm = SharedMemory.create(name, 4096);
    assertThrowsCode(() => SharedMemory.create(name, 4096, { exclusive: true }), 'EEXIST');
    assertThrowsCode(() => SharedMemory.open(`${prefix}-missing`), 'ENOENT');
    assertThrowsCode(() => SharedMemory.unlink(`${prefix}-missing`), 'ENOENT');
    for (const bad of ['jobs', '/a/b', '/', `/${'x'.repeat(255)}`, '/a\0b']) {
      assertThrowsCode(() => SharedMemory.create(bad, 4096), 'ERR_INVALID_ARG_VALUE');
    }
    assertThrowsCode(() => SharedMemory.open(42 as never), 'ERR_INVALID_ARG_TYPE');
    for (const size of [0, -1, 1.5, Number.NaN]) {
      assertThrowsCode(() => SharedMemory.create(newName(), size), 'ERR_OUT_OF_RANGE');
    }
    assertThrowsCode(
      () => SharedMemory.create(newName(), 4096, { mode: 0o600, exclusiv: true } as never),
      'ERR_INVALID_ARG_VALUE',
    );
    assert.equal(shm.closed, false);
  });
});

describe('anonymous shared memory (memfd)', () => {
  it('is handed to a child through spawn’s stdio and mapped there with fromFd(3)', async () => {
    using shm = SharedMemory.anonymous(4096);
    assert.equal(shm.name, null);
    assert.ok(shm.fd >= 0);
    shm.buffer.write('parent');
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { SharedMemory } = await import(process.env.MEMMAP);
         const peer = SharedMemory.fromFd(3);
         process.stdout.write(peer.buffer.toString('latin1', 0, 6));
         peer.buffer.write('child', 10);
         peer.close();`,
      ],
      { env: { ...process.env, MEMMAP: entry }, stdio: ['ignore', 'pipe', 'inherit', shm.fd] },
    );
    let stdout = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    const status = await new Promise((done) => child.on('close', done));
    assert.equal(status, 0);
    assert.equal(stdout, 'parent');
    assert.equal(shm.buffer.toString('latin1', 10, 15), 'child');
  });

  it('can be sealed against shrinking, so no peer can truncate it under us', () => {
    using shm = SharedMemory.anonymous(8192);
    assert.deepEqual(shm.seals, []);
    shm.seal('shrink', 'grow');
    assert.deepEqual(shm.seals, ['shrink', 'grow']);
    assert.throws(() => ftruncateSync(shm.fd, 0), { code: 'EPERM' });
    assertThrowsCode(() => shm.seal('write'), 'EBUSY'); // a writable mapping exists
    shm.seal('seal');
    assertThrowsCode(() => shm.seal('grow'), 'EPERM');
    assertThrowsCode(() => shm.seal('nonsense' as never), 'ERR_INVALID_ARG_VALUE');
    using named = SharedMemory.create(newName(), 4096);
    assertThrowsCode(() => named.seal('shrink'), 'ERR_MEMMAP_UNSUPPORTED');
  });

  it('fromFd of a read-only descriptor asks for read-only: EACCES otherwise', () => {
    const name = newName();
    using shm = SharedMemory.create(name, 4096);
    const fd = openSync(`/dev/shm${name}`, 'r');
    try {
      assertThrowsCode(() => SharedMemory.fromFd(fd), 'EACCES');
      using ro = SharedMemory.fromFd(fd, { readOnly: true });
      assert.equal(ro.mode, 'read');
    } finally {
      closeSync(fd);
    }
    assert.equal(shm.closed, false);
  });
});
