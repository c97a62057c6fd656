/**
 * NumPy's .npy files: {@link openNpy}, {@link saveNpy}, {@link createNpy}.
 *
 * The format (numpy/lib/_format_impl.py): the magic `\x93NUMPY`, a major and a minor version
 * byte, the header's length (u16 LE in version 1, u32 LE in versions 2 and 3), then the header:
 * a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded
 * with spaces and a newline so that the data starts on a multiple of 64 bytes (16 before numpy
 * 1.14). The header is untrusted input: it is parsed by hand (the literal subset numpy writes,
 * never an evaluator), its length is capped and bounded by the file, its keys are exactly the
 * three above, and every size is checked in BigInt before any view is made. Each rule has its
 * own error code.
 *
 * @module
 */
import { invalidArgType, invalidArgValue, MemmapError, type MemmapErrorCode } from '../errors.js';
import { validateBoolean, validateOneOf, validateOptions } from '../internal/validate.js';
import { Float16ArrayOrUndefined, type TypedArray, type TypedArrayConstructor, viewBytes } from '../internal/views.js';
import { type FileTarget, type MapMode, type Mapping, mapFile } from '../mapping.js';
import { unshared, validateShape, withFormatFile, writeFileParts } from './common.js';

/** The dtypes memmap maps, by numpy's names; all little-endian. */
export type NpyDtype =
  | 'bool'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float16'
  | 'float32'
  | 'float64';

/** An .npy file's array: `data` is a typed array over the mapping. */
export interface NpyArray<T extends TypedArray = TypedArray> extends Disposable {
  dtype: NpyDtype;
  shape: number[];
  /** True when the elements are in column-major (Fortran) order. */
  fortranOrder: boolean;
  /** The elements: float16 is a Float16Array where the runtime has one, else a Uint16Array of the bits. */
  data: T;
  /** The mapping of the whole file; close it (or `using`) when done. */
  mapping: Mapping;
}

/** Options of {@link openNpy}. */
export interface OpenNpyOptions {
  /** As for {@link mapFile}: `'read'` (default), `'write'` or `'copy'`. */
  mode?: MapMode;
  /**
   * Data whose offset is not a multiple of the element size (files from other writers):
   * `'error'` (default) refuses it with ERR_MEMMAP_MISALIGNED, `'copy'` copies it onto the heap.
   */
  unaligned?: 'error' | 'copy';
  /**
   * View the mapping's SharedArrayBuffer instead of its Buffer: a faster open for a large
   * file (no garbage collection started), and data that worker threads can share; but after
   * close() it reads zeros instead of being detached. Default false.
   */
  shared?: boolean;
}

/** Options of {@link createNpy}. */
export interface CreateNpyOptions {
  /** Column-major order is recorded in the header; memmap fills the data as it is told. Default false. */
  fortranOrder?: boolean;
  /** Grow the file without reserving its blocks (a hole until written); as {@link mapFile}'s `sparse`. Default false. */
  sparse?: boolean;
}

/** numpy's own cap (max_header_size): a longer header is refused before it is parsed. */
export const NPY_MAX_HEADER_SIZE = 10_000;
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ALIGN = 64;

interface DtypeInfo {
  name: NpyDtype;
  size: number;
  Type: TypedArrayConstructor;
}

const Half = Float16ArrayOrUndefined ?? Uint16Array;
/** The type characters and sizes of numpy's descr strings ('<f4'), to memmap's dtypes. */
const DESCRS: Record<string, DtypeInfo> = {
  b1: { name: 'bool', size: 1, Type: Uint8Array },
  i1: { name: 'int8', size: 1, Type: Int8Array },
  u1: { name: 'uint8', size: 1, Type: Uint8Array },
  i2: { name: 'int16', size: 2, Type: Int16Array },
  u2: { name: 'uint16', size: 2, Type: Uint16Array },
  i4: { name: 'int32', size: 4, Type: Int32Array },
  u4: { name: 'uint32', size: 4, Type: Uint32Array },
  i8: { name: 'int64', size: 8, Type: BigInt64Array },
  u8: { name: 'uint64', size: 8, Type: BigUint64Array },
  f2: { name: 'float16', size: 2, Type: Half },
  f4: { name: 'float32', size: 4, Type: Float32Array },
  f8: { name: 'float64', size: 8, Type: Float64Array },
} as Record<string, DtypeInfo>;
const BY_NAME = new Map(Object.entries(DESCRS).map(([code, info]) => [info.name, { code, ...info }]));
const DTYPES = [...BY_NAME.keys()];

function fail(code: MemmapErrorCode, path: string, message: string): MemmapError {
  return new MemmapError(code, `openNpy: ${path}: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// The header literal: a dict of str keys, whose values are str, bool, or a tuple of ints.

type Literal =
  | { kind: 'str'; value: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'tuple'; items: Literal[] }
  | { kind: 'int'; value: bigint }
  | { kind: 'list' };

/** Parses the header dict by hand: the subset of Python literals numpy writes, nothing more. */
class HeaderParser {
  #text: string;
  #at = 0;
  #path: string;
  constructor(text: string, path: string) {
    this.#text = text;
    this.#path = path;
  }

  #error(what: string): MemmapError {
    return fail(
      'ERR_MEMMAP_HEADER_SYNTAX',
      this.#path,
      `the header is not a Python dict literal: ${what} at character ${this.#at}`,
    );
  }

  #skip(): void {
    while (this.#at < this.#text.length && ' \t\n\r'.includes(this.#text[this.#at] as string)) this.#at++;
  }

  #peek(): string {
    this.#skip();
    return this.#text[this.#at] ?? '';
  }

  #expect(ch: string): void {
    if (this.#peek() !== ch) throw this.#error(`expected '${ch}'`);
    this.#at++;
  }

  dict(): Map<string, Literal> {
    const entries = new Map<string, Literal>();
    this.#expect('{');
    while (this.#peek() !== '}') {
      const key = this.#value(0);
      if (key.kind !== 'str') throw this.#error('a key that is not a string');
      this.#expect(':');
      const value = this.#value(0);
      if (entries.has(key.value)) {
        throw fail('ERR_MEMMAP_DUPLICATE_KEY', this.#path, `the header names '${key.value}' twice`);
      }
      entries.set(key.value, value);
      if (this.#peek() === ',') this.#at++;
      else if (this.#peek() !== '}') throw this.#error("expected ',' or '}'");
    }
    this.#at++;
    this.#skip();
    if (this.#at !== this.#text.length) throw this.#error('text after the dict');
    return entries;
  }

  #value(depth: number): Literal {
    // Deep enough for the structured dtypes it refuses by name; bounded, so no stack overflow.
    if (depth > 32) throw this.#error('nesting deeper than 32');
    const ch = this.#peek();
    if (ch === "'" || ch === '"') return this.#string(ch);
    if (ch === '(') return this.#sequence(')', depth);
    if (ch === '[') {
      // A list descr is a structured dtype: skip it whole (bounded by the header) to say so.
      this.#sequence(']', depth);
      return { kind: 'list' };
    }
    if (ch >= '0' && ch <= '9') {
      const start = this.#at;
      while (/[0-9]/.test(this.#text[this.#at] ?? '')) this.#at++;
      // Python 2 wrote longs as 3L.
      const digits = this.#text.slice(start, this.#at);
      if (this.#text[this.#at] === 'L') this.#at++;
      return { kind: 'int', value: BigInt(digits) };
    }
    if (ch === '-') {
      this.#at++;
      const inner = this.#value(depth);
      if (inner.kind !== 'int') throw this.#error("'-' before something that is not an integer");
      return { kind: 'int', value: -inner.value };
    }
    for (const [word, value] of [
      ['True', true],
      ['False', false],
    ] as const) {
      if (this.#text.startsWith(word, this.#at)) {
        this.#at += word.length;
        return { kind: 'bool', value };
      }
    }
    throw this.#error(ch === '' ? 'the header ends early' : `unexpected '${ch}'`);
  }

  #string(quote: string): Literal {
    const end = this.#text.indexOf(quote, this.#at + 1);
    if (end < 0) throw this.#error('a string without its closing quote');
    const value = this.#text.slice(this.#at + 1, end);
    if (value.includes('\\') || value.includes('\n')) throw this.#error('an escape or newline in a string');
    this.#at = end + 1;
    return { kind: 'str', value };
  }

  #sequence(close: string, depth: number): Literal {
    this.#at++;
    const items: Literal[] = [];
    let comma = false;
    while (this.#peek() !== close) {
      items.push(this.#value(depth + 1));
      comma = false;
      if (this.#peek() === ',') {
        this.#at++;
        comma = true;
      } else if (this.#peek() !== close) throw this.#error(`expected ',' or '${close}'`);
    }
    this.#at++;
    // (5) is the int 5 in Python, not a tuple.
    if (close === ')' && items.length === 1 && !comma) return items[0] as Literal;
    return { kind: 'tuple', items };
  }
}

interface Header {
  info: DtypeInfo;
  shape: number[];
  fortranOrder: boolean;
  count: bigint;
  dataStart: number;
}

/** Reads and checks an .npy header from the first bytes of a file of `size` bytes. */
export function parseNpyHeader(bytes: Uint8Array, size: number, path: string): Header {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size < 10) {
    if (size < MAGIC.length || !head.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw fail('ERR_MEMMAP_FORMAT_MAGIC', path, 'not an .npy file (it does not start with \\x93NUMPY)');
    }
    throw fail('ERR_MEMMAP_HEADER_TOO_SMALL', path, `${size} bytes is too short for the 10-byte start of an .npy file`);
  }
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw fail('ERR_MEMMAP_FORMAT_MAGIC', path, 'not an .npy file (it does not start with \\x93NUMPY)');
  }
  const major = head[6] as number;
  const minor = head[7] as number;
  if (major < 1 || major > 3 || minor !== 0) {
    throw fail('ERR_MEMMAP_FORMAT_VERSION', path, `format version ${major}.${minor}; memmap reads 1.0, 2.0 and 3.0`);
  }
  if (major > 1 && size < 12) {
    throw fail(
      'ERR_MEMMAP_HEADER_TOO_SMALL',
      path,
      `${size} bytes is too short for the 12-byte start of a version ${major} file`,
    );
  }
  const prefix = major === 1 ? 10 : 12;
  const headerLength = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
  if (headerLength > NPY_MAX_HEADER_SIZE) {
    throw fail(
      'ERR_MEMMAP_HEADER_TOO_LARGE',
      path,
      `the header is ${headerLength} bytes; at most ${NPY_MAX_HEADER_SIZE} are read (as numpy's max_header_size)`,
    );
  }
  const dataStart = prefix + headerLength;
  if (dataStart > size) {
    throw fail(
      'ERR_MEMMAP_HEADER_LENGTH',
      path,
      `the header ends at byte ${dataStart}, past the end of the file (${size} bytes)`,
    );
  }
  const raw = head.subarray(prefix, dataStart);
  let text: string;
  if (major === 3) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(unshared(raw));
    } catch {
      throw fail('ERR_MEMMAP_HEADER_SYNTAX', path, 'the header is not valid UTF-8');
    }
  } else {
    text = raw.toString('latin1');
  }
  const entries = new HeaderParser(text, path).dict();
  for (const key of entries.keys()) {
    if (key !== 'descr' && key !== 'fortran_order' && key !== 'shape') {
      throw fail(
        'ERR_MEMMAP_HEADER_KEY',
        path,
        `the header has a key '${key}'; its keys must be exactly descr, fortran_order, shape`,
      );
    }
  }
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!entries.has(key)) {
      throw fail(
        'ERR_MEMMAP_HEADER_KEY',
        path,
        `the header has no '${key}'; its keys must be exactly descr, fortran_order, shape`,
      );
    }
  }
  const info = dtypeOf(entries.get('descr') as Literal, path);
  const order = entries.get('fortran_order') as Literal;
  if (order.kind !== 'bool') throw fail('ERR_MEMMAP_HEADER_VALUE', path, 'fortran_order must be True or False');
  const shapeValue = entries.get('shape') as Literal;
  if (shapeValue.kind !== 'tuple') throw fail('ERR_MEMMAP_SHAPE', path, 'shape must be a tuple of integers');
  const shape: number[] = [];
  let count = 1n;
  for (const dim of shapeValue.items) {
    if (dim.kind !== 'int' || dim.value < 0n || dim.value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw fail('ERR_MEMMAP_SHAPE', path, 'every dimension of shape must be an integer from 0 to 2^53 - 1');
    }
    shape.push(Number(dim.value));
    count *= dim.value;
  }
  const dataBytes = count * BigInt(info.size);
  const end = BigInt(dataStart) + dataBytes;
  if (end > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw fail(
      'ERR_MEMMAP_SHAPE',
      path,
      `shape (${shape.join(', ')}) of ${info.name} holds ${dataBytes} bytes, more than 2^53 - 1`,
    );
  }
  if (end !== BigInt(size)) {
    throw fail(
      'ERR_MEMMAP_DATA_LENGTH',
      path,
      `shape (${shape.join(', ')}) of ${info.name} needs the data to end at byte ${end}, and the file has ${size} bytes${end > BigInt(size) ? ' (it is short)' : ' (bytes follow the data)'}`,
    );
  }
  return { info, shape, fortranOrder: order.value, count, dataStart };
}

function dtypeOf(descr: Literal, path: string): DtypeInfo {
  if (descr.kind === 'list' || descr.kind === 'tuple') {
    throw fail(
      'ERR_MEMMAP_DTYPE',
      path,
      'structured dtypes (a list of fields) are not supported; save each field as its own array',
    );
  }
  if (descr.kind !== 'str') throw fail('ERR_MEMMAP_HEADER_VALUE', path, 'descr must be a string such as "<f4"');
  const text = descr.value;
  const order = text[0] ?? '';
  const code = '<>|='.includes(order) && order !== '' ? text.slice(1) : text;
  // Own keys only: a descr of '__proto__' or 'toString' names no dtype.
  const info = Object.hasOwn(DESCRS, code) ? DESCRS[code] : undefined;
  if (code === 'O' || code.startsWith('O')) {
    throw fail(
      'ERR_MEMMAP_DTYPE',
      path,
      `dtype '${text}' is an object array (pickled Python objects), which memmap does not read`,
    );
  }
  if (info === undefined) {
    throw fail(
      'ERR_MEMMAP_DTYPE',
      path,
      `dtype '${text}' is not supported; memmap maps ${Object.keys(DESCRS)
        .map((c) => `'<${c}'`)
        .join(', ')}`,
    );
  }
  if (order === '>' && info.size > 1) {
    throw fail(
      'ERR_MEMMAP_DTYPE',
      path,
      `dtype '${text}' is big-endian; memmap maps little-endian data only (convert with arr.astype('<${code}'))`,
    );
  }
  return info;
}

// ---------------------------------------------------------------------------------------------

const HEAD_READ = 12 + NPY_MAX_HEADER_SIZE;

/**
 * Opens an .npy file (format versions 1, 2 and 3) and returns its array as a typed array over
 * a mapping of the file: nothing is read until it is touched.
 *
 * Safety: the header is checked as untrusted input; the data is whatever the file holds, and
 * another process writing to the file changes it under the view.
 * @throws MemmapError ERR_MEMMAP_FORMAT_MAGIC, ERR_MEMMAP_FORMAT_VERSION,
 * ERR_MEMMAP_HEADER_TOO_SMALL, ERR_MEMMAP_HEADER_TOO_LARGE, ERR_MEMMAP_HEADER_LENGTH,
 * ERR_MEMMAP_HEADER_SYNTAX, ERR_MEMMAP_HEADER_KEY, ERR_MEMMAP_DUPLICATE_KEY,
 * ERR_MEMMAP_HEADER_VALUE, ERR_MEMMAP_DTYPE (big-endian, object, structured, unknown),
 * ERR_MEMMAP_SHAPE, ERR_MEMMAP_DATA_LENGTH, ERR_MEMMAP_MISALIGNED; the errors of mapFile.
 * @example
 * using weights = openNpy('weights.npy');
 * console.log(weights.dtype, weights.shape, weights.data[0]);
 */
export function openNpy(file: FileTarget, options?: OpenNpyOptions): NpyArray {
  return withFormatFile(file, options, ({ mapping, copyUnaligned, shared, path }) => {
    const size = mapping.length;
    const head =
      size === 0 ? new Uint8Array(0) : mapping.view(Uint8Array, { length: Math.min(size, HEAD_READ), shared });
    const header = parseNpyHeader(head, size, path);
    const data = viewBytes(
      mapping,
      header.info.Type,
      header.dataStart,
      Number(header.count),
      { copy: copyUnaligned, shared },
      `openNpy: ${path}`,
      "options.unaligned: 'copy'",
    );
    return npyArray(header, data, mapping);
  });
}

function npyArray(header: Header, data: TypedArray, mapping: Mapping): NpyArray {
  return {
    dtype: header.info.name,
    shape: header.shape,
    fortranOrder: header.fortranOrder,
    data,
    mapping,
    [Symbol.dispose]: () => mapping.close(),
  };
}

/** The header bytes numpy would write: version 1.0 (2.0 when long), padded to 64 with a newline. */
export function npyHeader(code: string, shape: readonly number[], fortranOrder: boolean): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '<${code}', 'fortran_order': ${fortranOrder ? 'True' : 'False'}, 'shape': (${dims}), }`;
  for (const [major, prefix] of [
    [1, 10],
    [2, 12],
  ] as const) {
    const total = Math.ceil((prefix + dict.length + 1) / ALIGN) * ALIGN;
    const length = total - prefix;
    if (major === 2 || length <= 0xffff) {
      const out = Buffer.alloc(total, 0x20);
      MAGIC.copy(out, 0);
      out[6] = major;
      out[7] = 0;
      if (major === 1) out.writeUInt16LE(length, 8);
      else out.writeUInt32LE(length, 8);
      out.write(dict, prefix, 'latin1');
      out[total - 1] = 0x0a;
      return out;
    }
  }
  throw new Error('unreachable');
}

function dtypeOfArray(array: TypedArray): { code: string; info: DtypeInfo } {
  for (const [code, info] of Object.entries(DESCRS)) {
    if (code !== 'b1' && array instanceof info.Type) return { code, info };
  }
  if (array instanceof Uint8ClampedArray) return { code: 'u1', info: DESCRS.u1 as DtypeInfo };
  throw invalidArgType('array', 'a typed array', array);
}

/**
 * Writes a typed array to a new .npy file (format 1.0, data aligned to 64) that numpy's
 * `np.load` reads. `shape` defaults to `[array.length]`; its product must be the length.
 * `options.dtype` names the numpy dtype when the array's kind alone does not (a Uint8Array of
 * 0/1 as `'bool'`, a Uint16Array of half-float bits as `'float16'`).
 * @throws ERR_INVALID_ARG_VALUE for a shape whose product is not the array's length, or a
 * dtype of another element size; the errors of writing the file (ENOENT, EACCES, ENOSPC, ...).
 * @example
 * saveNpy('out.npy', new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 */
export function saveNpy(
  path: string,
  array: TypedArray,
  shape?: readonly number[],
  options?: { dtype?: NpyDtype; fortranOrder?: boolean },
): void {
  if (!ArrayBuffer.isView(array) || array instanceof DataView) throw invalidArgType('array', 'a typed array', array);
  const dims = shape === undefined ? [array.length] : validateShape([...shape], 'shape');
  const opts = validateOptions(options, 'options', ['dtype', 'fortranOrder'] as const);
  const fortranOrder =
    opts.fortranOrder === undefined ? false : validateBoolean(opts.fortranOrder, 'options.fortranOrder');
  let { code } = dtypeOfArray(array);
  if (opts.dtype !== undefined) {
    const named = BY_NAME.get(validateOneOf(opts.dtype, 'options.dtype', DTYPES)) as DtypeInfo & { code: string };
    if (named.size !== array.BYTES_PER_ELEMENT) {
      throw invalidArgValue(
        'options.dtype',
        opts.dtype,
        `has ${named.size}-byte elements, and the array ${array.BYTES_PER_ELEMENT}-byte ones`,
      );
    }
    code = named.code;
  }
  const count = dims.reduce((n, d) => n * BigInt(d), 1n);
  if (count !== BigInt(array.length)) {
    throw invalidArgValue('shape', shape, `holds ${count} elements and the array has ${array.length}`);
  }
  const header = npyHeader(code, dims, fortranOrder);
  writeFileParts(path, [header, new Uint8Array(array.buffer, array.byteOffset, array.byteLength)]);
}

/**
 * Creates (or replaces) an .npy file for an array of `dtype` and `shape`, and returns it
 * mapped for writing: fill `data` in place, then `mapping.flush()` for durability. The file
 * is sized at once (its blocks reserved, unless `sparse`).
 * @throws ERR_INVALID_ARG_VALUE for an unknown dtype or a bad shape; the errors of mapFile.
 * @example
 * using out = createNpy('out.npy', 'float32', [1000, 768]);
 * out.data.fill(0.5);
 * out.mapping.flush();
 */
export function createNpy(
  path: string,
  dtype: NpyDtype,
  shape: readonly number[],
  options?: CreateNpyOptions,
): NpyArray {
  const name = validateOneOf(dtype, 'dtype', DTYPES);
  const dims = validateShape([...shape], 'shape');
  const opts = validateOptions(options, 'options', ['fortranOrder', 'sparse'] as const);
  const fortranOrder =
    opts.fortranOrder === undefined ? false : validateBoolean(opts.fortranOrder, 'options.fortranOrder');
  const sparse = opts.sparse === undefined ? false : validateBoolean(opts.sparse, 'options.sparse');
  const info = BY_NAME.get(name) as DtypeInfo & { code: string };
  const count = dims.reduce((n, d) => n * BigInt(d), 1n);
  const header = npyHeader(info.code, dims, fortranOrder);
  const total = BigInt(header.length) + count * BigInt(info.size);
  if (total > BigInt(Number.MAX_SAFE_INTEGER))
    throw invalidArgValue('shape', shape, 'needs a file larger than 2^53 - 1 bytes');
  writeFileParts(path, [header]);
  const mapping = mapFile(path, { mode: 'write', length: Number(total), grow: true, sparse });
  try {
    const data = viewBytes(
      mapping,
      info.Type,
      header.length,
      Number(count),
      { copy: false, shared: false },
      'createNpy',
      '',
    );
    return npyArray({ info, shape: dims, fortranOrder, count, dataStart: header.length }, data, mapping);
  } catch (error) {
    mapping.close();
    throw error;
  }
}
