import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { createHash } from 'node:crypto';
import {
  closeSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Mapping, mapAnonymous, mapFile, pageSize } from '../src/index.js';
import { assertExitedCleanly, assertThrowsCode, runModule, tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;

/** A new file holding `data`. */
function fileWith(data: Buffer | string): string {
  const path = join(dir, `f${counter++}.bin`);
  writeFileSync(path, data);
  return path;
}

/** `n` bytes of a pattern that differs at every offset of a page. */
function pattern(n: number): Buffer {
  const data = Buffer.alloc(n);
  for (let i = 0; i < n; i++) data[i] = (i * 7 + (i >> 8) * 13) & 0xff;
  return data;
}

describe("mode 'read'", () => {
  it('hands out exactly the bytes of the file, zero copy', () => {
    const data = pattern(3 * pageSize + 123);
    using m = mapFile(fileWith(data));
    assert.equal(m.length, data.length);
    assert.equal(m.offset, 0);
    assert.equal(m.mode, 'read');
    assert.ok(m.buffer.equals(data));
    assert.equal(m.buffer, m.buffer, 'the same Buffer on every access');
  });

  it('lets Buffer methods, typed arrays, TextDecoder and crypto work on the mapping', () => {
    const text = 'memmap says hello; '.repeat(500);
    const path = fileWith(text);
    using m = mapFile(path);
    assert.equal(m.buffer.toString('utf8'), text);
    assert.equal(new TextDecoder().decode(m.buffer), text);
    assert.equal(m.buffer.indexOf('hello', 100), text.indexOf('hello', 100));
    const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    assert.equal(hash(m.buffer), hash(readFileSync(path)));
    const words = new Uint32Array(m.buffer.buffer, m.buffer.byteOffset, Math.floor(m.length / 4));
    assert.equal(words[1], readFileSync(path).readUInt32LE(4));
  });

  it('sees changes made to the file through fs', () => {
    const path = fileWith(pattern(pageSize));
    using m = mapFile(path);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('CHANGED'), 0, 7, 10);
    closeSync(fd);
    assert.equal(m.buffer.toString('latin1', 10, 17), 'CHANGED');
  });

  it('accepts a file: URL, a numeric fd and a FileHandle', async () => {
    const data = pattern(5000);
    const path = fileWith(data);
    using byUrl = mapFile(new URL(`file://${path}`));
    assert.ok(byUrl.buffer.equals(data));
    assert.equal(byUrl.path, path);

    const fd = openSync(path, 'r');
    using byFd = mapFile(fd);
    closeSync(fd); // the mapping keeps its own descriptor
    assert.ok(byFd.buffer.equals(data));
    assert.equal(byFd.path, null);

    const handle = await open(path, 'r');
    using byHandle = mapFile(handle, { offset: 100, length: 50 });
    await handle.close();
    assert.ok(byHandle.buffer.equals(data.subarray(100, 150)));
  });

  it('maps an empty file to an empty mapping', () => {
    using m = mapFile(fileWith(''));
    assert.equal(m.length, 0);
    assert.equal(m.buffer.length, 0);
    assert.equal(m.sharedBuffer().byteLength, 0);
    m.flush();
  });

  it('maps a zero-length range at the end of a file to an empty mapping', () => {
    using m = mapFile(fileWith('abc'), { offset: 3 });
    assert.equal(m.length, 0);
  });

  it('takes populate and advice', () => {
    const data = pattern(10 * pageSize);
    for (const advice of ['normal', 'random', 'sequential', 'willneed'] as const) {
      using m = mapFile(fileWith(data), { populate: true, advice });
      assert.ok(m.buffer.equals(data), advice);
    }
  });
});

describe('unaligned offsets', () => {
  it('return exactly the requested bytes at every residue 0..4096', () => {
    const data = pattern(3 * 4096 + 500);
    const path = fileWith(data);
    for (let offset = 0; offset <= 4096; offset++) {
      const length = 1 + ((offset * 31) % 5000); // crosses page boundaries for most offsets
      using m = mapFile(path, { offset, length });
      assert.equal(m.offset, offset);
      if (!m.buffer.equals(data.subarray(offset, offset + length))) {
        assert.fail(`wrong bytes at offset ${offset}, length ${length}`);
      }
    }
  });
});

describe('64-bit sizes and offsets', () => {
  it('a 40 TiB noReserve reservation maps (the stand-in budget counts closed ranges, not the new one)', (t) => {
    if (process.env.LD_PRELOAD?.includes('libasan')) {
      return t.skip(
        'AddressSanitizer reserves most of the address space for its shadow memory: no 40 TiB range is free',
      );
    }
    using m = mapAnonymous(40 * 2 ** 40, { noReserve: true });
    assert.equal(m.length, 40 * 2 ** 40);
    assert.equal(new Uint8Array(m.sharedBuffer(), 2 ** 45, 1)[0], 0);
  });

  it('maps at an offset above 4 GiB of a sparse file', () => {
    const path = join(dir, 'sparse.bin');
    const fd = openSync(path, 'w+');
    const base = 4 * 1024 ** 3 + 12345; // above 2^32, not page-aligned
    ftruncateSync(fd, base + 2 * pageSize);
    writeSync(fd, Buffer.from('past four gibibytes'), 0, 19, base + 100);
    closeSync(fd);
    using m = mapFile(path, { offset: base, length: 4096 });
    assert.equal(m.offset, base);
    assert.equal(m.buffer.toString('latin1', 100, 119), 'past four gibibytes');
    assert.equal(m.buffer[0], 0, 'a hole reads as zeros');
  });

  it('maps more than 4 GiB at once; sharedBuffer reaches its last byte', () => {
    const path = join(dir, 'sparse-big.bin');
    const size = 5 * 1024 ** 3;
    const fd = openSync(path, 'w+');
    ftruncateSync(fd, size);
    writeSync(fd, Buffer.from('END'), 0, 3, size - 3);
    closeSync(fd);
    using m = mapFile(path);
    assert.equal(m.length, size);
    const shared = m.sharedBuffer();
    assert.equal(shared.byteLength, size);
    assert.equal(Buffer.from(new Uint8Array(shared, size - 3, 3)).toString(), 'END');
    if (size > bufferConstants.MAX_LENGTH) {
      // Node 20 caps a Buffer at 4 GiB: the error says so instead of failing inside Node.
      assertThrowsCode(() => m.buffer, 'ERR_MEMMAP_OUT_OF_RANGE');
    } else {
      assert.equal(m.buffer.toString('latin1', size - 3), 'END');
    }
  });
});

describe("mode 'write'", () => {
  it('writes reach the file, seen by fs before and after flush', () => {
    const path = fileWith(pattern(2 * pageSize));
    using m = mapFile(path, { mode: 'write' });
    m.buffer.write('written through memory', 5000);
    assert.equal(readFileSync(path).toString('latin1', 5000, 5022), 'written through memory');
    m.flush();
    m.flush({ offset: 4999, length: 30 });
    assert.equal(readFileSync(path).toString('latin1', 5000, 5022), 'written through memory');
  });

  it('flushAsync writes back without blocking', async () => {
    const path = fileWith(pattern(4 * pageSize));
    using m = mapFile(path, { mode: 'write', offset: 10 });
    m.buffer.fill(0xab, 0, 3 * pageSize);
    await m.flushAsync();
    await m.flushAsync({ offset: pageSize + 1, length: 10 });
    const back = readFileSync(path);
    assert.equal(back[10], 0xab);
    assert.equal(back[9], pattern(10)[9]);
  });

  it('close() during flushAsync waits for the flush, then unmaps', async () => {
    const path = fileWith(pattern(64 * pageSize));
    const m = mapFile(path, { mode: 'write' });
    m.buffer.fill(0x5a);
    const flushing = m.flushAsync();
    m.close();
    assert.equal(m.closed, true);
    await flushing;
    assert.equal(readFileSync(path)[63 * pageSize], 0x5a);
  });

  it('a child process mapping the same file sees the writes, and we see its writes', async () => {
    const path = fileWith(Buffer.alloc(pageSize));
    using m = mapFile(path, { mode: 'write' });
    m.buffer.write('from parent', 0);
    const child = await runModule(
      `
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE, { mode: 'write' });
      process.stdout.write(m.buffer.toString('latin1', 0, 11));
      m.buffer.write('from child', 100);
      m.close();
    `,
      { FILE: path },
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, 'from parent');
    assert.equal(m.buffer.toString('latin1', 100, 110), 'from child');
  });

  it('grow extends the file to offset + length and flush makes the size durable', () => {
    const path = fileWith('short');
    using m = mapFile(path, { mode: 'write', offset: 3 * pageSize + 7, length: 100, grow: true });
    assert.equal(statSync(path).size, 3 * pageSize + 107);
    m.buffer.write('tail');
    m.flush();
    const back = readFileSync(path);
    assert.equal(back.toString('latin1', 0, 5), 'short');
    assert.equal(back.toString('latin1', 3 * pageSize + 7, 3 * pageSize + 11), 'tail');
  });

  it('create makes a missing file', () => {
    const path = join(dir, 'created.bin');
    using m = mapFile(path, { mode: 'write', create: true, length: 10, grow: true });
    m.buffer.write('0123456789');
    assert.equal(readFileSync(path, 'latin1'), '0123456789');
  });
});

describe("mode 'copy'", () => {
  it('never changes the file, and other mappings do not see its writes', () => {
    const data = pattern(2 * pageSize);
    const path = fileWith(data);
    using copy = mapFile(path, { mode: 'copy' });
    using reader = mapFile(path);
    copy.buffer.fill(0);
    copy.flush();
    assert.equal(copy.buffer[100], 0);
    assert.ok(readFileSync(path).equals(data));
    assert.ok(reader.buffer.equals(data));
  });
});

describe('mapAnonymous', () => {
  it('gives zero-filled private or shared memory', () => {
    using priv = mapAnonymous(3 * pageSize + 1);
    assert.equal(priv.length, 3 * pageSize + 1);
    assert.equal(priv.mode, 'copy');
    assert.equal(priv.path, null);
    assert.equal(priv.buffer.indexOf(1), -1);
    priv.buffer.fill(9);
    assert.equal(priv.buffer[3 * pageSize], 9);

    using shared = mapAnonymous(pageSize, { shared: true, populate: true });
    assert.equal(shared.mode, 'write');
    shared.buffer.writeUInt32LE(42, 0);
    shared.flush();
    assert.equal(new Uint32Array(shared.sharedBuffer())[0], 42);
  });
});

describe('close', () => {
  it('detaches the Buffer and makes every call throw ERR_MEMMAP_CLOSED', async () => {
    const m = mapFile(fileWith(pattern(pageSize)), { mode: 'write' });
    const buffer = m.buffer;
    m.close();
    assert.equal(m.closed, true);
    assert.equal(buffer.length, 0);
    assert.equal(buffer[0], undefined);
    m.close(); // idempotent
    assertThrowsCode(() => m.buffer, 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => m.sharedBuffer(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => m.flush(), 'ERR_MEMMAP_CLOSED');
    await assert.rejects(m.flushAsync(), { code: 'ERR_MEMMAP_CLOSED' });
  });

  it('leaves a SharedArrayBuffer readable (zeros) and releases the file', () => {
    const m = mapFile(fileWith(pattern(pageSize)));
    const shared = new Uint8Array(m.sharedBuffer());
    assert.equal(shared[1], pattern(2)[1]);
    m.close();
    assert.equal(shared[1], 0);
    shared[5] = 1; // lands in throwaway memory
  });

  it('works with using', () => {
    let escaped: Mapping | undefined;
    {
      using m = mapFile(fileWith('abc'));
      escaped = m;
    }
    assert.equal(escaped.closed, true);
  });

  it('is refused to the constructor', () => {
    assertThrowsCode(
      () => new (Mapping as unknown as new (a: symbol, b: object) => Mapping)(Symbol('x'), {}),
      'ERR_ILLEGAL_CONSTRUCTOR',
    );
  });

  it('a forgotten mapping keeps its views valid until they are collected', async () => {
    const child = await runModule(
      `
      const { mapFile } = await import(process.env.MEMMAP);
      let buffer = mapFile(process.env.FILE).buffer; // the Mapping itself is dropped at once
      for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
      process.stdout.write(buffer.toString('latin1', 0, 5));
    `,
      { FILE: fileWith('alive and well') },
      ['--expose-gc'],
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, 'alive');
  });
});

describe('reads through fs agree with the mapping at every page', () => {
  it('for a file of a few pages', () => {
    const path = fileWith(pattern(5 * pageSize + 17));
    using m = mapFile(path);
    const fd = openSync(path, 'r');
    const page = Buffer.alloc(pageSize);
    for (let p = 0; p * pageSize < m.length; p++) {
      const n = readSync(fd, page, 0, pageSize, p * pageSize);
      assert.ok(m.buffer.subarray(p * pageSize, p * pageSize + n).equals(page.subarray(0, n)));
    }
    closeSync(fd);
  });
});
