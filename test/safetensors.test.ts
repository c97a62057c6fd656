import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  MemmapError,
  openSafetensors,
  SafetensorsFile,
  type SafetensorsTensor,
  saveSafetensors,
} from '../src/index.js';
import { assertThrowsCode, tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
const hasSafetensors = spawnSync('python3', ['-c', 'import safetensors'], { stdio: 'ignore' }).status === 0;

// The format in a few lines of Python, for machines without the safetensors package: a u64
// LE header length, the JSON header padded with spaces to 8 bytes, the tensors' bytes.
const PY_FORMAT = `
import numpy as np, json, struct, sys
NAMES = {'bool': 'BOOL', 'uint8': 'U8', 'int8': 'I8', 'uint16': 'U16', 'int16': 'I16', 'float16': 'F16',
         'uint32': 'U32', 'int32': 'I32', 'float32': 'F32', 'uint64': 'U64', 'int64': 'I64', 'float64': 'F64'}
def save(path, tensors, metadata=None):
    header, blobs, at = {}, [], 0
    if metadata is not None: header['__metadata__'] = metadata
    # Largest elements first, as the safetensors package orders them, so every tensor is aligned.
    for name, a in sorted(tensors.items(), key=lambda kv: (-kv[1].dtype.itemsize, kv[0])):
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {'dtype': NAMES[str(a.dtype)], 'shape': list(a.shape), 'data_offsets': [at, at + len(b)]}
        blobs.append(b); at += len(b)
    h = json.dumps(header).encode(); h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h); [f.write(b) for b in blobs]
def load(path):
    data = open(path, 'rb').read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop('__metadata__', None)
    types = {v: k for k, v in NAMES.items()}; types['BF16'] = '<u2'
    out = {}
    for name, t in header.items():
        b, e = t['data_offsets']
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], dtype=types[t['dtype']]).reshape(t['shape'])
    return out, meta
`;

function python(source: string, ...args: string[]): string {
  const result = spawnSync('python3', ['-c', `${PY_FORMAT}\n${source}`, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

/** The tensor `name` of `file`, which must be there. */
function tensor(file: SafetensorsFile, name: string): SafetensorsTensor {
  const found = file.get(name);
  assert.ok(found, `no tensor ${name}`);
  return found;
}

function fileWith(data: Uint8Array): string {
  const path = join(dir, `s${counter++}.safetensors`);
  writeFileSync(path, data);
  return path;
}

/**
 * A safetensors file: `header` (a string is written as is, else as JSON) padded with spaces to
 * a multiple of 8 and then `skew` more, then `data`.
 */
function st(header: unknown, data: Uint8Array = new Uint8Array(0), skew = 0): Buffer {
  let json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  json = Buffer.concat([json, Buffer.alloc(((8 - (json.length % 8)) % 8) + skew, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

describe('openSafetensors reads what Python writes', () => {
  it('every dtype, shapes, metadata; the views are zero copy and aligned', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy is not installed');
    const path = join(dir, 'py.safetensors');
    const writer = hasSafetensors
      ? 'from safetensors.numpy import save_file as save_st\nsave = lambda p, t, m: save_st(t, p, metadata=m)'
      : '';
    python(
      `${writer}
t = {}
for i, dt in enumerate(['?', 'u1', 'i1', '<u2', '<i2', '<f2', '<u4', '<i4', '<f4', '<u8', '<i8', '<f8']):
    a = (np.arange(6) % 5).astype(dt).reshape(2, 3)
    t[f't{i:02d}.{dt}'] = a
t['empty'] = np.zeros((0, 4), '<f4')
t['scalar'] = np.array(7.25, '<f8')
save(sys.argv[1], t, {'format': 'np', 'note': 'caf\\u00e9'})
`,
      path,
    );
    using file = openSafetensors(path);
    assert.ok(file instanceof SafetensorsFile);
    assert.equal(file.size, 14);
    assert.equal(file.metadata.get('format'), 'np');
    assert.equal(file.metadata.get('note'), 'café');
    const f32 = tensor(file, 't08.<f4');
    assert.deepEqual(f32.shape, [2, 3]);
    assert.equal(f32.dtype, 'F32');
    assert.deepEqual([...(f32.data as Float32Array)], [0, 1, 2, 3, 4, 0]);
    assert.deepEqual([...(tensor(file, 't10.<i8').data as BigInt64Array)], [0n, 1n, 2n, 3n, 4n, 0n]);
    assert.deepEqual([...(tensor(file, 't00.?').data as Uint8Array)], [0, 1, 1, 1, 1, 0]);
    assert.equal(tensor(file, 't05.<f2').dtype, 'F16');
    assert.deepEqual(tensor(file, 'empty').shape, [0, 4]);
    assert.deepEqual(tensor(file, 'scalar').shape, []);
    assert.equal(tensor(file, 'scalar').data[0], 7.25);
    for (const { data } of file.values()) {
      assert.equal(data.buffer, file.mapping.buffer.buffer, 'a view of the mapping');
      assert.equal(data.byteOffset % data.BYTES_PER_ELEMENT, 0);
    }
    file.close();
    assert.equal(f32.data.length, 0, 'detached at close()');
  });
});

describe('Python reads what saveSafetensors writes', () => {
  it('tensors of every kind, ordered for alignment, with metadata', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy is not installed');
    const path = join(dir, 'js.safetensors');
    saveSafetensors(
      path,
      {
        bytes: { shape: [3], data: new Uint8Array([1, 2, 3]) },
        halves: { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x4000]) },
        weights: { shape: [2, 2], data: new Float32Array([0.5, 1.5, 2.5, 3.5]) },
        ids: { shape: [2], data: new BigInt64Array([-(2n ** 62n), 5n]) },
        flags: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
      },
      { format: 'pt' },
    );
    const reader = hasSafetensors
      ? `from safetensors import safe_open
with safe_open(sys.argv[1], 'np') as f: meta = f.metadata(); t = {k: f.get_tensor(k) for k in f.keys() if k not in ('halves',)}`
      : "t, meta = load(sys.argv[1]); t.pop('halves', None)";
    const out = JSON.parse(
      python(
        `${reader}\nprint(json.dumps({'meta': meta, 't': {k: [str(v.dtype), list(v.shape), [str(x) for x in v.ravel()]] for k, v in t.items()}}))`,
        path,
      ),
    );
    assert.deepEqual(out.meta, { format: 'pt' });
    assert.deepEqual(out.t.weights, ['float32', [2, 2], ['0.5', '1.5', '2.5', '3.5']]);
    assert.deepEqual(out.t.ids, ['int64', [2], ['-4611686018427387904', '5']]);
    assert.deepEqual(out.t.bytes, ['uint8', [3], ['1', '2', '3']]);
    assert.deepEqual(out.t.flags, ['bool', [2], ['True', 'False']]);
    using back = openSafetensors(path);
    assert.deepEqual([...(tensor(back, 'halves').data as Uint16Array)], [0x3f80, 0x4000]);
    assert.equal(tensor(back, 'halves').dtype, 'BF16');
    assert.deepEqual([...back.keys()], ['ids', 'weights', 'halves', 'bytes', 'flags']);
  });
});

describe('openSafetensors refuses a bad header, one code per rule', () => {
  const f32 = (offsets: unknown, shape: unknown = [2]) => ({ dtype: 'F32', shape, data_offsets: offsets });
  const eight = new Uint8Array(8);
  const big = Buffer.alloc(8);
  big.writeBigUInt64LE(100_000_001n);
  const huge = Buffer.alloc(8);
  huge.writeBigUInt64LE(2n ** 64n - 1n);
  const past = Buffer.alloc(16);
  past.writeBigUInt64LE(9n);
  const cases: [string, Uint8Array, string][] = [
    ['empty file', new Uint8Array(0), 'ERR_MEMMAP_HEADER_TOO_SMALL'],
    ['7 bytes', new Uint8Array(7), 'ERR_MEMMAP_HEADER_TOO_SMALL'],
    ['header over 100 MB', big, 'ERR_MEMMAP_HEADER_TOO_LARGE'],
    ['header of 2^64 - 1 bytes', huge, 'ERR_MEMMAP_HEADER_TOO_LARGE'],
    ['header past the end', past, 'ERR_MEMMAP_HEADER_LENGTH'],
    ['not UTF-8', st('{"a\xff": 1}'.replace('\xff', '\ufffd')).fill(0xff, 11, 12), 'ERR_MEMMAP_HEADER_SYNTAX'],
    ['not JSON', st('{"w": {"dtype": "F32",'), 'ERR_MEMMAP_HEADER_SYNTAX'],
    ['trailing comma', st('{"w": 1,}'), 'ERR_MEMMAP_HEADER_SYNTAX'],
    ['deep nesting', st(`${'['.repeat(5000)}${']'.repeat(5000)}`), 'ERR_MEMMAP_HEADER_SYNTAX'],
    ['not an object', st('[]'), 'ERR_MEMMAP_HEADER_VALUE'],
    [
      'a name twice',
      st(`{"w": ${JSON.stringify(f32([0, 8]))}, "w": ${JSON.stringify(f32([8, 16]))}}`, new Uint8Array(16)),
      'ERR_MEMMAP_DUPLICATE_KEY',
    ],
    [
      'a key twice inside',
      st('{"w": {"dtype": "F32", "dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', eight),
      'ERR_MEMMAP_DUPLICATE_KEY',
    ],
    ['a missing key', st({ w: { dtype: 'F32', shape: [2] } }, eight), 'ERR_MEMMAP_HEADER_KEY'],
    ['an extra key', st({ w: { ...f32([0, 8]), strides: [1] } }, eight), 'ERR_MEMMAP_HEADER_KEY'],
    ['metadata not strings', st({ __metadata__: { a: 1 } }), 'ERR_MEMMAP_HEADER_VALUE'],
    ['offsets not a pair', st({ w: f32([0]) }, eight), 'ERR_MEMMAP_HEADER_VALUE'],
    ['negative offset', st({ w: f32([-8, 0]) }, eight), 'ERR_MEMMAP_HEADER_VALUE'],
    [
      'fractional offset',
      st('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8.0]}}', eight),
      'ERR_MEMMAP_HEADER_VALUE',
    ],
    ['unknown dtype', st({ w: { ...f32([0, 8]), dtype: 'C64' } }, eight), 'ERR_MEMMAP_DTYPE'],
    ['negative dimension', st({ w: f32([0, 8], [-2]) }, eight), 'ERR_MEMMAP_SHAPE'],
    [
      'dimension above 2^53',
      st('{"w": {"dtype": "F32", "shape": [9007199254740993], "data_offsets": [0, 8]}}', eight),
      'ERR_MEMMAP_SHAPE',
    ],
    ['end past the data', st({ w: f32([0, 16], [4]) }, eight), 'ERR_MEMMAP_TENSOR_OFFSETS'],
    [
      'end above 2^53, which JSON.parse would round',
      st('{"w": {"dtype": "U8", "shape": [0], "data_offsets": [0, 9007199254740993]}}'),
      'ERR_MEMMAP_TENSOR_OFFSETS',
    ],
    ['first not at 0', st({ w: f32([8, 16]) }, new Uint8Array(16)), 'ERR_MEMMAP_TENSOR_OFFSETS'],
    ['a gap', st({ a: f32([0, 8]), b: f32([16, 24]) }, new Uint8Array(24)), 'ERR_MEMMAP_TENSOR_OFFSETS'],
    ['an overlap', st({ a: f32([0, 8]), b: f32([4, 12], [2]) }, new Uint8Array(12)), 'ERR_MEMMAP_TENSOR_OFFSETS'],
    ['two names for one range', st({ a: f32([0, 8]), b: f32([0, 8]) }, eight), 'ERR_MEMMAP_TENSOR_OFFSETS'],
    ['end before begin', st({ w: f32([8, 0]) }, eight), 'ERR_MEMMAP_TENSOR_OFFSETS'],
    ['size and shape disagree', st({ w: f32([0, 8], [3]) }, eight), 'ERR_MEMMAP_TENSOR_SIZE'],
    ['bytes after the data', st({ w: f32([0, 8]) }, new Uint8Array(9)), 'ERR_MEMMAP_DATA_LENGTH'],
    ['data but no tensors', st({}, eight), 'ERR_MEMMAP_DATA_LENGTH'],
  ];
  for (const [name, bytes, code] of cases) {
    it(`${name}: ${code}`, () => {
      assertThrowsCode(() => openSafetensors(fileWith(bytes)), code, MemmapError);
    });
  }

  it('an unaligned tensor: ERR_MEMMAP_MISALIGNED, or a copy with unaligned: copy', () => {
    // A header of 4 bytes past a multiple of 8, as writers before safetensors 0.3 made them.
    const values = Buffer.from(new Float64Array([1.25, -2]).buffer);
    const path = fileWith(st({ w: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, values, 4));
    assert.equal(Buffer.from(readFileSync(path)).readBigUInt64LE(0) % 8n, 4n);
    assertThrowsCode(() => openSafetensors(path), 'ERR_MEMMAP_MISALIGNED', MemmapError);
    using copied = openSafetensors(path, { unaligned: 'copy' });
    assert.deepEqual([...(tensor(copied, 'w').data as Float64Array)], [1.25, -2]);
  });

  it('shared: true views the SharedArrayBuffer', () => {
    const values = Buffer.from(new Float64Array([1.25, -2]).buffer);
    using file = openSafetensors(fileWith(st({ w: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, values)), {
      shared: true,
    });
    const { data } = tensor(file, 'w');
    assert.ok(data.buffer instanceof SharedArrayBuffer);
    assert.deepEqual([...(data as Float64Array)], [1.25, -2]);
    assertThrowsCode(
      () => openSafetensors(file.mapping.path as string, { shared: 'yes' } as never),
      'ERR_INVALID_ARG_TYPE',
    );
  });

  it('tensor names that are object properties elsewhere round-trip: __proto__, toString', () => {
    const path = join(dir, 'names.safetensors');
    saveSafetensors(
      path,
      new Map([
        ['__proto__', { shape: [1], data: new Float32Array([1]) }],
        ['toString', { shape: [1], data: new Float32Array([2]) }],
      ]),
    );
    using file = openSafetensors(path);
    assert.deepEqual([...file.keys()].sort(), ['__proto__', 'toString']);
    assert.equal(tensor(file, '__proto__').data[0], 1);
  });

  it('__metadata__: null is no metadata, as the reference reads it', () => {
    using file = openSafetensors(fileWith(st('{"__metadata__": null}')));
    assert.equal(file.metadata.size, 0);
  });

  it('an empty header opens as no tensors', () => {
    using file = openSafetensors(fileWith(st({})));
    assert.equal(file.size, 0);
    assert.equal(file.metadata.size, 0);
  });

  it('refuses bad arguments with Node codes', () => {
    const path = join(dir, 'x.safetensors');
    assertThrowsCode(
      () => saveSafetensors(path, { w: { shape: [3], data: new Float32Array(2) } }),
      'ERR_INVALID_ARG_VALUE',
    );
    assertThrowsCode(
      () => saveSafetensors(path, { w: { dtype: 'F64', shape: [2], data: new Float32Array(2) } }),
      'ERR_INVALID_ARG_VALUE',
    );
    assertThrowsCode(() => saveSafetensors(path, { w: { shape: [2], data: [1, 2] as never } }), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => saveSafetensors(path, {}, { a: 1 as never }), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => openSafetensors(path, { unaligned: 'skip' } as never), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => openSafetensors(join(dir, 'missing')), 'ENOENT');
  });
});

describe('openSafetensors above 4 GiB', () => {
  it('a sparse file of 4 GiB and more: the tensors past 4 GiB are views too', () => {
    const big = 2 ** 32;
    const header = {
      small: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      big: { dtype: 'F64', shape: [big / 8 + 2], data_offsets: [8, 8 + big + 16] },
    };
    const path = fileWith(st(header));
    const start = statSync(path).size;
    const fd = openSync(path, 'r+');
    ftruncateSync(fd, start + 8 + big + 16);
    const mark = Buffer.alloc(8);
    mark.writeDoubleLE(-4.5);
    writeSync(fd, mark, 0, 8, start + 8 + big + 8);
    closeSync(fd);
    using file = openSafetensors(path);
    const data = tensor(file, 'big').data as Float64Array;
    assert.equal(data.length, big / 8 + 2);
    assert.equal(data[data.length - 1], -4.5);
    assert.equal(tensor(file, 'small').data.length, 2);
  });
});
