import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createNpy, MemmapError, openNpy, saveNpy } from '../src/index.js';
import { assertExitedCleanly, assertThrowsCode, runModule, tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

/** Runs a Python program with numpy as np, json and sys imported; returns what it printed. */
function python(source: string, ...args: string[]): string {
  const result = spawnSync('python3', ['-c', `import numpy as np, json, sys\n${source}`, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

function fileWith(data: Uint8Array): string {
  const path = join(dir, `n${counter++}.npy`);
  writeFileSync(path, data);
  return path;
}

/** An .npy file of version `major` with header text `dict` (padded to 64) and `data` after it. */
function npy(dict: string, data: Uint8Array = new Uint8Array(0), major = 1): Buffer {
  const prefix = major === 1 ? 10 : 12;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const head = Buffer.alloc(total, 0x20);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = major;
  head[7] = 0;
  if (major === 1) head.writeUInt16LE(total - prefix, 8);
  else head.writeUInt32LE(total - prefix, 8);
  head.write(dict, prefix, 'latin1');
  head[total - 1] = 0x0a;
  return Buffer.concat([head, data]);
}

const PY_DTYPES = ['?', 'i1', 'u1', '<i2', '<u2', '<i4', '<u4', '<i8', '<u8', '<f2', '<f4', '<f8'];
const NAMES = [
  'bool',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'float16',
  'float32',
  'float64',
];

describe('openNpy reads what numpy writes', () => {
  it('every dtype, versions 1, 2 and 3, C and Fortran order, 0-d and empty arrays', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy is not installed');
    const out = python(
      `
d = sys.argv[1]
cases = []
for i, dt in enumerate(${JSON.stringify(PY_DTYPES)}):
    a = (np.arange(24) % 7 - (3 if dt[-2:-1] in ('i', 'f') else 0)).astype(dt).reshape(2, 3, 4)
    if dt == '?': a = (np.arange(24) % 3 == 0).reshape(2, 3, 4)
    for version in [(1, 0), (2, 0), (3, 0)]:
        for order in ['C', 'F']:
            p = f'{d}/{i}-{version[0]}-{order}.npy'
            with open(p, 'wb') as f:
                np.lib.format.write_array(f, np.asarray(a, order=order), version=version)
            cases.append({'path': p, 'dtype': str(a.dtype), 'fortran': order == 'F',
                          'flat': [float(x) for x in np.asarray(a, order=order).ravel(order='K')]})
np.save(f'{d}/scalar.npy', np.float64(2.5)); cases.append({'path': f'{d}/scalar.npy', 'dtype': 'float64', 'fortran': False, 'flat': [2.5]})
np.save(f'{d}/empty.npy', np.zeros((0, 3), '<f4')); cases.append({'path': f'{d}/empty.npy', 'dtype': 'float32', 'fortran': False, 'flat': []})
print(json.dumps(cases))
`,
      dir,
    );
    const cases = JSON.parse(out) as { path: string; dtype: string; fortran: boolean; flat: number[] }[];
    assert.equal(cases.length, PY_DTYPES.length * 6 + 2);
    for (const c of cases) {
      using a = openNpy(c.path);
      assert.equal(a.dtype, c.dtype, c.path);
      assert.equal(a.fortranOrder, c.fortran, c.path);
      assert.equal(a.data.length, c.flat.length, c.path);
      if (a.dtype !== 'float16') assert.deepEqual([...a.data].map(Number), c.flat, c.path);
      assert.equal(a.data.byteOffset % 64, 0, 'numpy aligns the data to 64');
    }
    assert.deepEqual([...new Set(cases.map((c) => c.dtype))].slice(0, NAMES.length), NAMES);
    using scalar = openNpy(join(dir, 'scalar.npy'));
    assert.deepEqual(scalar.shape, []);
    using empty = openNpy(join(dir, 'empty.npy'));
    assert.deepEqual(empty.shape, [0, 3]);
    using f16 = openNpy(join(dir, `${PY_DTYPES.indexOf('<f2')}-1-C.npy`));
    // Half-float bits: 0x3c00 is 1.0, 0xc200 is -3.0 (where there is no Float16Array).
    const Float16 = (globalThis as { Float16Array?: unknown }).Float16Array;
    if (Float16) assert.equal(f16.data[0], -3);
    else assert.equal(f16.data[0], 0xc200);
  });

  it("mode 'write' writes through to the file numpy reads", (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy is not installed');
    const path = join(dir, 'rw.npy');
    python("np.save(sys.argv[1], np.zeros((4, 4), '<i4'))", path);
    {
      using a = openNpy(path, { mode: 'write' });
      (a.data as Int32Array).set([1, 2, 3], 5);
      a.mapping.flush();
    }
    assert.equal(python('print(np.load(sys.argv[1])[1].tolist())', path).trim(), '[0, 1, 2, 3]');
  });
});

describe('numpy reads what saveNpy and createNpy write', () => {
  it('saveNpy: every kind of typed array, with its shape', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy is not installed');
    const arrays = [
      new Int8Array([-1, 2, -3, 4, -5, 6]),
      new Uint8Array([1, 2, 3, 4, 5, 6]),
      new Int16Array([-1, 2, -3, 4, -5, 6]),
      new Uint16Array([1, 2, 3, 4, 5, 60000]),
      new Int32Array([-1, 2, -3, 4, -5, 6]),
      new Uint32Array([1, 2, 3, 4, 5, 4e9]),
      new BigInt64Array([-1n, 2n, -3n, 4n, -5n, -(2n ** 62n)]),
      new BigUint64Array([1n, 2n, 3n, 4n, 5n, 2n ** 63n]),
      new Float32Array([0.5, 1, 1.5, 2, 2.5, 3]),
      new Float64Array([0.1, 1, 1.5, 2, 2.5, 1e300]),
    ];
    const paths = arrays.map((array, i) => {
      const path = join(dir, `save-${i}.npy`);
      saveNpy(path, array, [2, 3]);
      return path;
    });
    const bool = join(dir, 'save-bool.npy');
    saveNpy(bool, new Uint8Array([1, 0, 1]), undefined, { dtype: 'bool' });
    const out = JSON.parse(
      python(
        'print(json.dumps([[str(a.dtype), list(a.shape), [str(x) for x in a.ravel()]] for a in map(np.load, sys.argv[1:])]))',
        ...paths,
        bool,
      ),
    ) as [string, number[], string[]][];
    for (const [i, array] of arrays.entries()) {
      const [dtype, shape, values] = out[i] as [string, number[], string[]];
      assert.deepEqual(shape, [2, 3]);
      assert.deepEqual(values.map(Number), [...array].map(Number), dtype);
      if (array instanceof BigUint64Array || array instanceof BigInt64Array) {
        assert.deepEqual(values, [...array].map(String), 'int64 values exact');
      }
    }
    assert.deepEqual(out[arrays.length], ['bool', [3], ['True', 'False', 'True']]);
    // What saveNpy writes, openNpy reads back.
    using back = openNpy(paths[8] as string);
    assert.deepEqual([...back.data], [...(arrays[8] as Float32Array)]);
  });

  it('createNpy: a writable mapping of a new file, filled in place', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy is not installed');
    const path = join(dir, 'created.npy');
    {
      using a = createNpy(path, 'float64', [3, 2], { fortranOrder: true });
      assert.equal(a.data.length, 6);
      (a.data as Float64Array).set([1, 2, 3, 4, 5, 6]);
      a.mapping.flush();
    }
    assert.equal(
      python('a = np.load(sys.argv[1]); print(a.flags.f_contiguous, a.tolist())', path).trim(),
      'True [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]',
    );
  });

  it('above 4 GiB, both ways, on sparse files', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy is not installed');
    const n = 2 ** 30 + 2 ** 18; // float32: 4 GiB and 1 MiB of data
    const fromNumpy = join(dir, 'big-numpy.npy');
    python(
      "a = np.lib.format.open_memmap(sys.argv[1], mode='w+', dtype='<f4', shape=(int(sys.argv[2]),)); a[0] = 1.5; a[-1] = 2.5; a[2**30 + 7] = 3.5; a.flush()",
      fromNumpy,
      String(n),
    );
    {
      using a = openNpy(fromNumpy);
      assert.deepEqual(a.shape, [n]);
      assert.equal(a.data.length, n);
      assert.equal(a.data[0], 1.5);
      assert.equal(a.data[2 ** 30 + 7], 3.5);
      assert.equal(a.data[n - 1], 2.5);
    }
    const fromMemmap = join(dir, 'big-memmap.npy');
    {
      using a = createNpy(fromMemmap, 'float32', [n], { sparse: true });
      const data = a.data as Float32Array;
      data[0] = -1.5;
      data[2 ** 30 + 9] = -3.5;
      data[n - 1] = -2.5;
      a.mapping.flush();
    }
    assert.ok(statSync(fromMemmap).blocks * 512 < 2 ** 30, 'the file stayed sparse');
    assert.equal(
      python("a = np.load(sys.argv[1], mmap_mode='r'); print(a.shape, a[0], a[2**30 + 9], a[-1])", fromMemmap).trim(),
      `(${n},) -1.5 -3.5 -2.5`,
    );
  });
});

describe('openNpy refuses a bad header, one code per rule', () => {
  const good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const data = new Uint8Array(8);
  const cases: [string, Uint8Array, string][] = [
    ['not .npy', Buffer.from('PK\x03\x04 a zip file, not npy'), 'ERR_MEMMAP_FORMAT_MAGIC'],
    ['empty file', new Uint8Array(0), 'ERR_MEMMAP_FORMAT_MAGIC'],
    ['magic only', Buffer.from('\x93NUMPY\x01\x00', 'latin1'), 'ERR_MEMMAP_HEADER_TOO_SMALL'],
    ['version 4', Buffer.from('\x93NUMPY\x04\x00\x00\x00', 'latin1'), 'ERR_MEMMAP_FORMAT_VERSION'],
    ['version 1.1', Buffer.from('\x93NUMPY\x01\x01\x00\x00', 'latin1'), 'ERR_MEMMAP_FORMAT_VERSION'],
    ['v2 without its length', Buffer.from('\x93NUMPY\x02\x00\x00\x00', 'latin1'), 'ERR_MEMMAP_HEADER_TOO_SMALL'],
    [
      'header over the cap',
      Buffer.concat([Buffer.from('\x93NUMPY\x02\x00', 'latin1'), Buffer.from([0xff, 0xff, 0xff, 0xff])]),
      'ERR_MEMMAP_HEADER_TOO_LARGE',
    ],
    [
      'header past the end',
      Buffer.concat([Buffer.from('\x93NUMPY\x01\x00', 'latin1'), Buffer.from([0x00, 0x10]), Buffer.alloc(100)]),
      'ERR_MEMMAP_HEADER_LENGTH',
    ],
    [
      'not a literal',
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': __import__('os')}", data),
      'ERR_MEMMAP_HEADER_SYNTAX',
    ],
    ['unclosed dict', npy("{'descr': '<f4'", data), 'ERR_MEMMAP_HEADER_SYNTAX'],
    ['text after the dict', npy(`${good} x`, data), 'ERR_MEMMAP_HEADER_SYNTAX'],
    [
      'bad UTF-8 in v3',
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '\xff': 1}", data, 3),
      'ERR_MEMMAP_HEADER_SYNTAX',
    ],
    ['a missing key', npy("{'descr': '<f4', 'shape': (2,), }", data), 'ERR_MEMMAP_HEADER_KEY'],
    [
      'an extra key',
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", data),
      'ERR_MEMMAP_HEADER_KEY',
    ],
    [
      'a key twice',
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (2,)}", data),
      'ERR_MEMMAP_DUPLICATE_KEY',
    ],
    [
      'fortran_order not a bool',
      npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", data),
      'ERR_MEMMAP_HEADER_VALUE',
    ],
    [
      'descr not a string',
      npy("{'descr': 4, 'fortran_order': False, 'shape': (2,), }", data),
      'ERR_MEMMAP_HEADER_VALUE',
    ],
    ['big-endian', npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", data), 'ERR_MEMMAP_DTYPE'],
    ['object', npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", data), 'ERR_MEMMAP_DTYPE'],
    [
      'structured',
      npy("{'descr': [('a', '<i4'), ('b', '<f4')], 'fortran_order': False, 'shape': (1,), }", data),
      'ERR_MEMMAP_DTYPE',
    ],
    [
      'a descr named like an object property',
      npy("{'descr': '__proto__', 'fortran_order': False, 'shape': (1,), }", data),
      'ERR_MEMMAP_DTYPE',
    ],
    [
      'a descr of toString',
      npy("{'descr': '<toString', 'fortran_order': False, 'shape': (1,), }", data),
      'ERR_MEMMAP_DTYPE',
    ],
    [
      'nested structured',
      npy("{'descr': [('a', [('b', '<i4')])], 'fortran_order': False, 'shape': (1,), }", data),
      'ERR_MEMMAP_DTYPE',
    ],
    [
      'nesting beyond the bound',
      npy(`{'descr': ${'['.repeat(40)}${']'.repeat(40)}, 'fortran_order': False, 'shape': (1,), }`, data),
      'ERR_MEMMAP_HEADER_SYNTAX',
    ],
    ['complex', npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", data), 'ERR_MEMMAP_DTYPE'],
    ['negative dimension', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", data), 'ERR_MEMMAP_SHAPE'],
    ['shape an int', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", data), 'ERR_MEMMAP_SHAPE'],
    ['shape of strings', npy("{'descr': '<f4', 'fortran_order': False, 'shape': ('2',), }", data), 'ERR_MEMMAP_SHAPE'],
    [
      'dimension above 2^53',
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (9007199254740993,), }", data),
      'ERR_MEMMAP_SHAPE',
    ],
    [
      'product wrapping 2^64',
      npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 0), }", data),
      'ERR_MEMMAP_DATA_LENGTH',
    ],
    [
      'product above 2^53',
      npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", data),
      'ERR_MEMMAP_SHAPE',
    ],
    ['short data', npy(good, new Uint8Array(7)), 'ERR_MEMMAP_DATA_LENGTH'],
    ['bytes after the data', npy(good, new Uint8Array(9)), 'ERR_MEMMAP_DATA_LENGTH'],
  ];
  for (const [name, bytes, code] of cases) {
    it(`${name}: ${code}`, () => {
      assertThrowsCode(() => openNpy(fileWith(bytes)), code, MemmapError);
    });
  }

  it('a misaligned data offset: ERR_MEMMAP_MISALIGNED, or a copy with unaligned: copy', () => {
    // A hand-made version 1 header of 10 + 38 bytes: the data starts at 48, not a multiple of 64
    // but of 8 and 16; at 50 it is not a multiple of 4.
    const dict = "{'descr':'<f4','fortran_order':False,'shape':(2,)}";
    const head = Buffer.alloc(10 + dict.length + 1 + 1, 0x20);
    head.write('\x93NUMPY\x01\x00', 0, 'latin1');
    head.writeUInt16LE(head.length - 10, 8);
    head.write(dict, 10, 'latin1');
    head[head.length - 1] = 0x0a;
    assert.notEqual(head.length % 4, 0);
    const values = Buffer.from(new Float32Array([1.5, -2]).buffer);
    const path = fileWith(Buffer.concat([head, values]));
    assertThrowsCode(() => openNpy(path), 'ERR_MEMMAP_MISALIGNED', MemmapError);
    using copied = openNpy(path, { unaligned: 'copy' });
    assert.deepEqual([...copied.data], [1.5, -2]);
  });

  it('a file truncated under an open array reads zeros and reports ERR_MEMMAP_TRUNCATED, in a child', async () => {
    const path = join(dir, 'shrinks.npy');
    saveNpy(path, new Float64Array(4096).fill(1.5));
    const result = await runModule(
      `import { truncateSync } from 'node:fs';
       const { openNpy } = await import(process.env.MEMMAP);
       const a = openNpy(${JSON.stringify(path)});
       const before = a.data[4095];
       truncateSync(${JSON.stringify(path)}, 128);
       const after = a.data[4095];
       let code = null;
       try { a.mapping.flush(); } catch (e) { code = e.code; }
       process.stdout.write(JSON.stringify({ before, after, faulted: a.mapping.faulted, code }));`,
    );
    assertExitedCleanly(result);
    assert.deepEqual(JSON.parse(result.stdout), { before: 1.5, after: 0, faulted: true, code: 'ERR_MEMMAP_TRUNCATED' });
  });

  it('shared: true views the SharedArrayBuffer', () => {
    using a = openNpy(
      fileWith(
        npy(
          "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
          Buffer.from(new Float32Array([0.5, 4]).buffer),
        ),
      ),
      { shared: true },
    );
    assert.ok(a.data.buffer instanceof SharedArrayBuffer);
    assert.deepEqual([...a.data], [0.5, 4]);
  });

  it('refuses bad arguments with Node codes', () => {
    const path = fileWith(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8)));
    assertThrowsCode(() => openNpy(path, { mode: 'rw' } as never), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => openNpy(path, { unaligned: 'ignore' } as never), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => saveNpy(join(dir, 'x.npy'), new Float32Array(6), [4]), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => saveNpy(join(dir, 'x.npy'), new Float32Array(6), [-6]), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => saveNpy(join(dir, 'x.npy'), [1, 2] as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(
      () => saveNpy(join(dir, 'x.npy'), new Float32Array(2), [2], { dtype: 'float64' }),
      'ERR_INVALID_ARG_VALUE',
    );
    assertThrowsCode(() => createNpy(join(dir, 'x.npy'), 'complex64' as never, [2]), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => createNpy(join(dir, 'x.npy'), 'float64', [2 ** 40, 2 ** 20]), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => openNpy(join(dir, 'missing.npy')), 'ENOENT');
  });
});
