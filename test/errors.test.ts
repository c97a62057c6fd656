import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MemmapError, mapAnonymous, mapFile } from '../src/index.js';
import {
  assertExitedCleanly,
  assertRejectsCode,
  assertThrowsCode,
  entry,
  runModule,
  tempDir,
} from './helpers/index.js';

const dir = tempDir();
const file = join(dir, 'data.bin');
writeFileSync(file, Buffer.alloc(10000, 1));

describe('the file cannot be opened or mapped: Node-style system errors', () => {
  it('a missing file: ENOENT with syscall and path', () => {
    const missing = join(dir, 'missing.bin');
    assert.throws(
      () => mapFile(missing),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.syscall === 'open' && e.path === missing && e.errno === -2,
    );
  });

  it('a directory: EISDIR', () => {
    assertThrowsCode(() => mapFile(dir), 'EISDIR');
    assertThrowsCode(() => mapFile(dir, { mode: 'write' }), 'EISDIR');
  });

  it('a FIFO: ENODEV, without waiting for a writer', () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    assertThrowsCode(() => mapFile(fifo), 'ENODEV');
  });

  it('a Unix socket: ENXIO', async () => {
    const path = join(dir, 'sock');
    const server = createServer();
    await new Promise<void>((done) => server.listen(path, done));
    try {
      assertThrowsCode(() => mapFile(path), 'ENXIO');
    } finally {
      server.close();
    }
  });

  it("'write' on a read-only file descriptor: EACCES", () => {
    const fd = openSync(file, 'r');
    try {
      assertThrowsCode(() => mapFile(fd, { mode: 'write' }), 'EACCES');
      // 'read' and 'copy' need only read access.
      mapFile(fd, { mode: 'copy' }).close();
    } finally {
      closeSync(fd);
    }
  });

  it('out of file descriptors: EMFILE, with a hint to close mappings', async () => {
    // prlimit(1) starts the child with a low RLIMIT_NOFILE; Node raises only the soft limit up
    // to the hard one, which prlimit lowers too.
    const result = spawnSync(
      'prlimit',
      [
        '--nofile=64',
        process.execPath,
        '--input-type=module',
        '-e',
        `
        const { mapFile } = await import(process.env.MEMMAP);
        const kept = [];
        try { for (;;) kept.push(mapFile(process.env.FILE)); }
        catch (e) { process.stdout.write(JSON.stringify({ code: e.code, syscall: e.syscall, hint: e.message.includes('close() mappings'), kept: kept.length })); }
      `,
      ],
      { encoding: 'utf8', env: { ...process.env, MEMMAP: entry, FILE: file } },
    );
    assert.equal(result.status, 0, result.stderr);
    const r = JSON.parse(result.stdout);
    assert.equal(r.code, 'EMFILE');
    assert.equal(r.syscall, 'open');
    assert.equal(r.hint, true);
    assert.ok(r.kept > 10);
  });

  it('a closed file descriptor: EBADF', () => {
    const fd = openSync(file, 'r');
    closeSync(fd);
    assertThrowsCode(() => mapFile(fd), 'EBADF');
  });

  it('a closed FileHandle: EBADF', async () => {
    const { open } = await import('node:fs/promises');
    const handle = await open(file, 'r');
    await handle.close();
    assertThrowsCode(() => mapFile(handle), 'EBADF');
  });

  it('no permission, and write on a read-only file: EACCES (as an unprivileged user)', async () => {
    // Root ignores file modes, so the checks run in a child process with the uid of 'nobody'
    // when the tests run as root.
    const shared = join(dir, 'perm');
    mkdirSync(shared);
    chmodSync(dir, 0o755);
    chmodSync(shared, 0o755);
    const secret = join(shared, 'secret.bin');
    const readOnly = join(shared, 'readonly.bin');
    writeFileSync(secret, 'secret');
    writeFileSync(readOnly, 'read only');
    chmodSync(secret, 0o000);
    chmodSync(readOnly, 0o444);
    const asRoot = process.getuid?.() === 0;
    const child = await runModule(
      `
      // Load memmap first: the checkout itself need not be readable by 'nobody'.
      const { mapFile } = await import(process.env.MEMMAP);
      if (${asRoot}) process.setuid(65534);
      const codes = [];
      for (const [path, mode] of [[process.env.SECRET, 'read'], [process.env.READONLY, 'write']]) {
        try { mapFile(path, { mode }).close(); codes.push('no error'); } catch (e) { codes.push(e.code); }
      }
      mapFile(process.env.READONLY).close(); // reading a 0444 file is fine
      process.stdout.write(codes.join(','));
      `,
      { SECRET: secret, READONLY: readOnly },
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, 'EACCES,EACCES');
  });
});

describe('ranges outside the file: ERR_MEMMAP_OUT_OF_RANGE', () => {
  it('an offset beyond the end of the file', () => {
    assertThrowsCode(() => mapFile(file, { offset: 10001 }), 'ERR_MEMMAP_OUT_OF_RANGE', MemmapError);
  });

  it('a length past the end of the file without grow', () => {
    assertThrowsCode(() => mapFile(file, { length: 10001 }), 'ERR_MEMMAP_OUT_OF_RANGE', MemmapError);
    assertThrowsCode(() => mapFile(file, { offset: 9000, length: 1001 }), 'ERR_MEMMAP_OUT_OF_RANGE');
  });

  it('a flush range outside the mapping', async () => {
    using m = mapFile(file, { mode: 'write', length: 100 });
    assertThrowsCode(() => m.flush({ offset: 101 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => m.flush({ offset: 50, length: 51 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    await assertRejectsCode(m.flushAsync({ length: 101 }), 'ERR_MEMMAP_OUT_OF_RANGE');
  });
});

describe('bad numbers: ERR_OUT_OF_RANGE and ERR_INVALID_ARG_TYPE', () => {
  const bad: [string, unknown, string][] = [
    ['negative', -1, 'ERR_OUT_OF_RANGE'],
    ['NaN', Number.NaN, 'ERR_OUT_OF_RANGE'],
    ['Infinity', Number.POSITIVE_INFINITY, 'ERR_OUT_OF_RANGE'],
    ['fractional', 1.5, 'ERR_OUT_OF_RANGE'],
    ['above 2^53', 2 ** 53, 'ERR_OUT_OF_RANGE'],
    ['a bigint', 1n, 'ERR_INVALID_ARG_TYPE'],
    ['a numeric string', '1', 'ERR_INVALID_ARG_TYPE'],
    ['an object with valueOf', { valueOf: () => 1 }, 'ERR_INVALID_ARG_TYPE'],
  ];
  for (const [what, value, code] of bad) {
    it(`${what} as offset, length, fd or anonymous length: ${code}`, () => {
      assertThrowsCode(() => mapFile(file, { offset: value as number }), code);
      assertThrowsCode(() => mapFile(file, { length: value as number }), code);
      assertThrowsCode(() => mapAnonymous(value as number), code);
      using m = mapFile(file, { mode: 'write' });
      assertThrowsCode(() => m.flush({ offset: value as number }), code);
      if (typeof value === 'number' && value < 2 ** 31) assertThrowsCode(() => mapFile(value), code);
    });
  }

  it('an anonymous length of 0', () => {
    assertThrowsCode(() => mapAnonymous(0), 'ERR_OUT_OF_RANGE', RangeError);
  });
});

describe('bad options and targets', () => {
  it('an unknown option names itself and the closest valid one: ERR_INVALID_ARG_VALUE', () => {
    assert.throws(
      () => mapFile(file, { lenght: 4 } as never),
      (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE' && /lenght.*'length'/.test(e.message),
    );
    assert.throws(
      () => mapFile(file, { readOnly: true } as never),
      (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE' && /readOnly.*mode: 'read'/.test(e.message),
    );
    assertThrowsCode(() => mapAnonymous(10, { share: true } as never), 'ERR_INVALID_ARG_VALUE');
  });

  it('an unknown mode or advice: ERR_INVALID_ARG_VALUE', () => {
    assertThrowsCode(() => mapFile(file, { mode: 'rw' as never }), 'ERR_INVALID_ARG_VALUE', TypeError);
    assertThrowsCode(() => mapFile(file, { advice: 'fast' as never }), 'ERR_INVALID_ARG_VALUE');
  });

  it('options of the wrong type: ERR_INVALID_ARG_TYPE', () => {
    assertThrowsCode(() => mapFile(file, 'read' as never), 'ERR_INVALID_ARG_TYPE', TypeError);
    assertThrowsCode(() => mapFile(file, { mode: 1 as never }), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => mapFile(file, { grow: 'yes' as never }), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => mapAnonymous(10, { shared: 1 as never }), 'ERR_INVALID_ARG_TYPE');
  });

  it('a file argument that is no path, fd or FileHandle: ERR_INVALID_ARG_TYPE', () => {
    for (const target of [null, undefined, {}, [], true, Buffer.from(file)]) {
      assertThrowsCode(() => mapFile(target as never), 'ERR_INVALID_ARG_TYPE');
    }
  });

  it('a path with a NUL byte: ERR_INVALID_ARG_VALUE', () => {
    assertThrowsCode(() => mapFile(`${file}\0x`), 'ERR_INVALID_ARG_VALUE');
  });

  it('grow or create without mode write: ERR_INVALID_ARG_VALUE', () => {
    // The types refuse both (test/types.test.ts); plain JavaScript gets the error.
    assertThrowsCode(() => mapFile(file, { grow: true } as never), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => mapFile(file, { mode: 'copy', create: true } as never), 'ERR_INVALID_ARG_VALUE');
  });
});
