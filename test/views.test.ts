import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { closeSync, ftruncateSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MemmapError, mapAnonymous, mapArray, mapFile } from '../src/index.js';
import { assertThrowsCode, tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;

function fileWith(data: Uint8Array): string {
  const path = join(dir, `v${counter++}.bin`);
  writeFileSync(path, data);
  return path;
}

function bytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

const Float16 = (globalThis as { Float16Array?: typeof Float32Array }).Float16Array;
const KINDS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];

describe('mapping.view', () => {
  it('views the mapped bytes as every typed array kind, zero copy', () => {
    const data = bytes(4096);
    using m = mapFile(fileWith(data), { mode: 'write' });
    for (const Type of KINDS) {
      const size = Type.BYTES_PER_ELEMENT;
      const view = m.view(Type as Float64ArrayConstructor, { offset: 64, length: 10 });
      assert.equal(view.constructor, Type);
      assert.equal(view.length, 10);
      const expected = new (Type as Float64ArrayConstructor)(
        data.buffer.slice(data.byteOffset + 64, data.byteOffset + 64 + 10 * size),
      );
      assert.deepEqual([...view], [...expected], Type.name);
      // The same memory as the Buffer: a write through one is seen by the other.
      const before = m.buffer[64];
      new Uint8Array(view.buffer, view.byteOffset, 1)[0] = 0xab;
      assert.equal(m.buffer[64], 0xab);
      m.buffer[64] = before as number;
    }
  });

  it('defaults to every whole element from the offset to the end', () => {
    using m = mapFile(fileWith(bytes(100)));
    assert.equal(m.view(Float64Array).length, 12);
    assert.equal(m.view(Uint32Array, { offset: 8 }).length, 23);
    assert.equal(m.view(Uint8Array, { offset: 100 }).length, 0);
  });

  it('Float16Array where the runtime has it', (t) => {
    if (!Float16) return t.skip('this runtime has no Float16Array');
    using m = mapFile(fileWith(Buffer.from([0x00, 0x3c, 0x00, 0xc0])));
    assert.deepEqual([...m.view(Float16)], [1, -2]);
  });

  it('refuses a misaligned offset with ERR_MEMMAP_MISALIGNED, and copies it with copy: true', () => {
    const data = bytes(64);
    using m = mapFile(fileWith(data));
    assertThrowsCode(() => m.view(Float64Array, { offset: 4, length: 2 }), 'ERR_MEMMAP_MISALIGNED', MemmapError);
    assertThrowsCode(() => m.view(Uint16Array, { offset: 1 }), 'ERR_MEMMAP_MISALIGNED', MemmapError);
    const copy = m.view(Float64Array, { offset: 4, length: 2, copy: true });
    assert.deepEqual(new Uint8Array(copy.buffer), new Uint8Array(data.subarray(4, 20)));
    assert.notEqual(copy.buffer, m.buffer.buffer);
  });

  it('counts alignment in memory: a mapping at an odd file offset has no aligned view', () => {
    const data = bytes(64);
    using m = mapFile(fileWith(data), { offset: 3 });
    assertThrowsCode(() => m.view(Uint32Array, { offset: 4 }), 'ERR_MEMMAP_MISALIGNED');
    assertThrowsCode(() => m.view(Uint32Array, { offset: 0 }), 'ERR_MEMMAP_MISALIGNED');
    // Byte 1 of this mapping is byte 4 of the file, aligned in memory, but a typed array must
    // start on a multiple of its size within its buffer: it is a copy.
    assertThrowsCode(() => m.view(Uint32Array, { offset: 1 }), 'ERR_MEMMAP_MISALIGNED');
    assert.deepEqual(m.view(Uint32Array, { offset: 1, length: 1, copy: true })[0], data.readUInt32LE(4));
    assert.equal(m.view(Uint8Array, { offset: 1, length: 2 })[1], data[5]);
  });

  it('refuses ranges past the mapping with ERR_MEMMAP_OUT_OF_RANGE', () => {
    using m = mapFile(fileWith(bytes(64)));
    assertThrowsCode(() => m.view(Float32Array, { length: 17 }), 'ERR_MEMMAP_OUT_OF_RANGE', MemmapError);
    assertThrowsCode(() => m.view(Float32Array, { offset: 8, length: 15 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => m.view(Uint8Array, { offset: 65 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => m.view(Float64Array, { length: 2 ** 52 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => m.view(Float64Array, { length: 2 ** 53 }), 'ERR_OUT_OF_RANGE', RangeError);
    assertThrowsCode(() => m.view(Float64Array, { length: -1 }), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => m.view(Float64Array, { offset: 0.5 }), 'ERR_OUT_OF_RANGE');
  });

  it('refuses bad arguments with Node codes', () => {
    using m = mapFile(fileWith(bytes(64)));
    assertThrowsCode(() => m.view(Array as never), 'ERR_INVALID_ARG_TYPE', TypeError);
    assertThrowsCode(() => m.view(DataView as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => m.view(Uint8Array, { length: 1n } as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => m.view(Uint8Array, { size: 1 } as never), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.view(Uint8Array, { copy: 1 } as never), 'ERR_INVALID_ARG_TYPE');
  });

  it('is detached at close(), and a closed mapping refuses a view', () => {
    const m = mapFile(fileWith(bytes(64)));
    const view = m.view(Float32Array);
    m.close();
    assert.equal(view.length, 0);
    assert.equal(view[0], undefined);
    assertThrowsCode(() => m.view(Float32Array), 'ERR_MEMMAP_CLOSED', MemmapError);
  });

  it('shared: true views the SharedArrayBuffer, which reads zeros after close() instead of detaching', () => {
    const m = mapFile(fileWith(bytes(64)));
    const view = m.view(Uint32Array, { offset: 8, length: 4, shared: true });
    assert.ok(view.buffer instanceof SharedArrayBuffer);
    assert.equal(view[0], m.buffer.readUInt32LE(8));
    m.close();
    assert.equal(view.length, 4);
    assert.deepEqual([...view], [0, 0, 0, 0]);
    assertThrowsCode(
      () => mapFile(fileWith(bytes(8))).view(Uint8Array, { shared: 1 } as never),
      'ERR_INVALID_ARG_TYPE',
    );
  });

  it('views anonymous memory', () => {
    using m = mapAnonymous(1 << 16);
    const words = m.view(BigUint64Array);
    words[words.length - 1] = 2n ** 64n - 1n;
    assert.equal(m.buffer.readBigUInt64LE((1 << 16) - 8), 2n ** 64n - 1n);
  });

  it('views past 4 GiB of a sparse file through the SharedArrayBuffer', () => {
    const path = join(dir, 'big.bin');
    const size = 2 ** 32 + 2 ** 20;
    const fd = openSync(path, 'w');
    ftruncateSync(fd, size);
    const mark = Buffer.alloc(8);
    mark.writeDoubleLE(6.25);
    writeSync(fd, mark, 0, 8, size - 8);
    closeSync(fd);
    using m = mapFile(path);
    const all = m.view(Float64Array);
    assert.equal(all.length, size / 8);
    assert.equal(all[all.length - 1], 6.25);
    const tail = m.view(Float64Array, { offset: 2 ** 32, length: 2 ** 17 });
    assert.equal(tail[tail.length - 1], 6.25);
    // Where a Buffer cannot hold the whole mapping (4 GiB on Node 20), views go through the
    // SharedArrayBuffer; runtimes with larger Buffers (Node 22 on) use the Buffer's memory.
    const shared = size > bufferConstants.MAX_LENGTH;
    assert.equal(tail.buffer instanceof SharedArrayBuffer, shared);
  });
});

describe('mapArray', () => {
  it('maps a range of a file as a typed array, with its mapping', () => {
    const data = bytes(4096);
    const path = fileWith(data);
    {
      using mapped = mapArray(path, Float64Array, { offset: 512, length: 4 });
      assert.equal(mapped.array.length, 4);
      assert.equal(mapped.array[1], data.readDoubleLE(520));
      assert.equal(mapped.mapping.offset, 512);
    }
    const whole = mapArray(path, Uint32Array);
    assert.equal(whole.array.length, 1024);
    whole.mapping.close();
    assert.equal(whole.array.length, 0);
  });

  it("writes through to the file in mode 'write'", () => {
    const path = fileWith(Buffer.alloc(64));
    {
      using mapped = mapArray(path, Int32Array, { mode: 'write' });
      mapped.array[3] = -5;
    }
    using m = mapFile(path);
    assert.equal(m.buffer.readInt32LE(12), -5);
  });

  it('refuses a misaligned offset unless copy: true, and ranges past the file', () => {
    const data = bytes(256);
    const path = fileWith(data);
    assertThrowsCode(() => mapArray(path, Float32Array, { offset: 2 }), 'ERR_MEMMAP_MISALIGNED');
    {
      using copied = mapArray(path, Float32Array, { offset: 2, length: 3, copy: true });
      assert.equal(copied.array[0], data.readFloatLE(2));
    }
    assertThrowsCode(() => mapArray(path, Float32Array, { length: 65 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => mapArray(path, Float64Array, { length: 2 ** 50 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => mapArray(path, Float64Array, { length: 2 ** 53 }), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => mapArray(path, Map as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => mapArray(join(dir, 'missing'), Uint8Array), 'ENOENT');
  });
});
