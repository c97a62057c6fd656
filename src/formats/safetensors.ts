/**
 * safetensors files: {@link openSafetensors} and {@link saveSafetensors}.
 *
 * The format (huggingface/safetensors, safetensors/src/tensor.rs): N as a u64 LE, then N bytes
 * of UTF-8 JSON (padded with spaces) mapping each tensor's name to
 * `{ "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }`, with an optional
 * `"__metadata__"` of string values; then the data, each tensor's bytes at [begin, end) from
 * byte 8 + N. The header is untrusted input and is checked as the reference implementation
 * does, one error code per rule: the size bounded, the JSON read by a tokenizer that refuses
 * duplicate keys and never rounds a number, offsets sorted from 0 with no gap or overlap,
 * each byte range equal to its dtype and shape's size (in BigInt), and the data ending exactly
 * at the end of the file.
 *
 * @module
 */
import { invalidArgType, invalidArgValue, MemmapError, type MemmapErrorCode } from '../errors.js';
import { JsonError, type JsonValue, parseJson } from '../internal/json.js';
import { validateOneOf } from '../internal/validate.js';
import { Float16ArrayOrUndefined, type TypedArray, type TypedArrayConstructor, viewBytes } from '../internal/views.js';
import { type FileTarget, type MapMode, type Mapping, mapFile } from '../mapping.js';
import { unshared, validateShape, withFormatFile, writeFileParts } from './common.js';

/** The dtypes of safetensors, by its names. */
export type SafetensorsDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'F8_E8M0'
  | 'U16'
  | 'I16'
  | 'F16'
  | 'BF16'
  | 'U32'
  | 'I32'
  | 'F32'
  | 'U64'
  | 'I64'
  | 'F64';

/** One tensor: `data` is a typed array over the mapping (F16 a Float16Array where the runtime has it; BF16 and F8 raw bits). */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TypedArray;
}

/** Options of {@link openSafetensors}. */
export interface OpenSafetensorsOptions {
  /** As for {@link mapFile}: `'read'` (default), `'write'` or `'copy'`. */
  mode?: MapMode;
  /**
   * A tensor whose absolute offset is not a multiple of its element size (files written
   * before safetensors 0.3 padded the header): `'error'` (default) refuses the file with
   * ERR_MEMMAP_MISALIGNED; `'copy'` copies that tensor onto the heap.
   */
  unaligned?: 'error' | 'copy';
  /** As for {@link OpenNpyOptions.shared}: view the SharedArrayBuffer. Default false. */
  shared?: boolean;
}

/** The reference implementation's cap on the header (HeaderTooLarge). */
export const SAFETENSORS_MAX_HEADER_SIZE = 100_000_000;

const Half = Float16ArrayOrUndefined ?? Uint16Array;
const DTYPES: Record<SafetensorsDtype, TypedArrayConstructor> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E4M3: Uint8Array,
  F8_E5M2: Uint8Array,
  F8_E8M0: Uint8Array,
  U16: Uint16Array,
  I16: Int16Array,
  F16: Half,
  BF16: Uint16Array,
  U32: Uint32Array,
  I32: Int32Array,
  F32: Float32Array,
  U64: BigUint64Array,
  I64: BigInt64Array,
  F64: Float64Array,
} as Record<SafetensorsDtype, TypedArrayConstructor>;
const DTYPE_NAMES = Object.keys(DTYPES) as SafetensorsDtype[];

/**
 * The tensors of a safetensors file by name, in the file's order, with its `__metadata__`
 * and the mapping they view. Close it (or `using`) when done: the views are detached.
 */
export class SafetensorsFile extends Map<string, SafetensorsTensor> implements Disposable {
  /** The header's `__metadata__` (string values), or an empty Map when it has none. */
  readonly metadata: Map<string, string>;
  /** The mapping of the whole file. */
  readonly mapping: Mapping;

  /** @internal Use {@link openSafetensors}. */
  constructor(tensors: Iterable<[string, SafetensorsTensor]>, metadata: Map<string, string>, mapping: Mapping) {
    super(tensors);
    this.metadata = metadata;
    this.mapping = mapping;
  }

  /** Closes the mapping. */
  close(): void {
    this.mapping.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function fail(code: MemmapErrorCode, path: string, message: string): MemmapError {
  return new MemmapError(code, `openSafetensors: ${path}: ${message}`);
}

/** A non-negative integer's text as a BigInt, or null for anything else (fractions, exponents, signs). */
function integer(value: JsonValue): bigint | null {
  return value.kind === 'number' && /^(0|[1-9][0-9]*)$/.test(value.text) ? BigInt(value.text) : null;
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: bigint;
  end: bigint;
}

/** @internal Checks a header (the JSON text's bytes) against a file of `size` bytes. */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  headerLength: number,
  size: number,
  path: string,
): { entries: Entry[]; metadata: Map<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(unshared(bytes));
  } catch {
    throw fail('ERR_MEMMAP_HEADER_SYNTAX', path, 'the header is not valid UTF-8');
  }
  let root: JsonValue;
  try {
    root = parseJson(text);
  } catch (error) {
    if (error instanceof JsonError && error.duplicate !== null) {
      throw fail('ERR_MEMMAP_DUPLICATE_KEY', path, `the header names ${JSON.stringify(error.duplicate)} twice`);
    }
    throw fail('ERR_MEMMAP_HEADER_SYNTAX', path, `the header is not JSON: ${(error as Error).message}`);
  }
  if (root.kind !== 'object') throw fail('ERR_MEMMAP_HEADER_VALUE', path, 'the header must be a JSON object');
  const metadata = new Map<string, string>();
  const entries: Entry[] = [];
  for (const [name, value] of root.entries) {
    if (name === '__metadata__') {
      // Some writers put null for no metadata, which the reference reads as none.
      if (value.kind === 'null') continue;
      if (value.kind !== 'object')
        throw fail('ERR_MEMMAP_HEADER_VALUE', path, '__metadata__ must be an object of strings');
      for (const [key, v] of value.entries) {
        if (v.kind !== 'string') throw fail('ERR_MEMMAP_HEADER_VALUE', path, `__metadata__.${key} must be a string`);
        metadata.set(key, v.value);
      }
      continue;
    }
    if (value.kind !== 'object')
      throw fail('ERR_MEMMAP_HEADER_VALUE', path, `tensor ${JSON.stringify(name)} must be an object`);
    for (const key of value.entries.keys()) {
      if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') {
        throw fail(
          'ERR_MEMMAP_HEADER_KEY',
          path,
          `tensor ${JSON.stringify(name)} has a key ${JSON.stringify(key)}; its keys must be exactly dtype, shape, data_offsets`,
        );
      }
    }
    const dtype = value.entries.get('dtype');
    const shape = value.entries.get('shape');
    const offsets = value.entries.get('data_offsets');
    if (dtype === undefined || shape === undefined || offsets === undefined) {
      throw fail(
        'ERR_MEMMAP_HEADER_KEY',
        path,
        `tensor ${JSON.stringify(name)} lacks one of dtype, shape, data_offsets`,
      );
    }
    if (dtype.kind !== 'string')
      throw fail('ERR_MEMMAP_HEADER_VALUE', path, `tensor ${JSON.stringify(name)}: dtype must be a string`);
    if (!(DTYPE_NAMES as string[]).includes(dtype.value)) {
      throw fail(
        'ERR_MEMMAP_DTYPE',
        path,
        `tensor ${JSON.stringify(name)} has dtype ${JSON.stringify(dtype.value)}; memmap maps ${DTYPE_NAMES.join(', ')}`,
      );
    }
    if (shape.kind !== 'array')
      throw fail('ERR_MEMMAP_SHAPE', path, `tensor ${JSON.stringify(name)}: shape must be an array of integers`);
    const dims: number[] = [];
    for (const dim of shape.items) {
      const n = integer(dim);
      if (n === null || n > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw fail(
          'ERR_MEMMAP_SHAPE',
          path,
          `tensor ${JSON.stringify(name)}: every dimension of shape must be an integer from 0 to 2^53 - 1`,
        );
      }
      dims.push(Number(n));
    }
    const pair = offsets.kind === 'array' && offsets.items.length === 2 ? offsets.items.map(integer) : null;
    if (pair === null || pair[0] === null || pair[1] === null) {
      throw fail(
        'ERR_MEMMAP_HEADER_VALUE',
        path,
        `tensor ${JSON.stringify(name)}: data_offsets must be two non-negative integers [begin, end]`,
      );
    }
    entries.push({
      name,
      dtype: dtype.value as SafetensorsDtype,
      shape: dims,
      begin: pair[0] as bigint,
      end: pair[1] as bigint,
    });
  }

  // The reference's validate(): sorted by offsets, the first at 0, each at the previous end.
  const sorted = [...entries].sort((a, b) =>
    a.begin < b.begin ? -1 : a.begin > b.begin ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0,
  );
  let at = 0n;
  const dataLength = BigInt(size) - 8n - BigInt(headerLength);
  for (const e of sorted) {
    if (e.begin !== at || e.end < e.begin || e.end > dataLength) {
      throw fail(
        'ERR_MEMMAP_TENSOR_OFFSETS',
        path,
        `tensor ${JSON.stringify(e.name)} has data_offsets [${e.begin}, ${e.end}); ${
          e.end > dataLength
            ? `the data section has ${dataLength} bytes`
            : e.end < e.begin
              ? 'end is before begin'
              : `the next tensor must begin at ${at} (no gaps, no overlaps)`
        }`,
      );
    }
    const count = e.shape.reduce((n, d) => n * BigInt(d), 1n);
    const bytes = count * BigInt((DTYPES[e.dtype] as TypedArrayConstructor).BYTES_PER_ELEMENT);
    if (bytes !== e.end - e.begin) {
      throw fail(
        'ERR_MEMMAP_TENSOR_SIZE',
        path,
        `tensor ${JSON.stringify(e.name)}: shape [${e.shape.join(', ')}] of ${e.dtype} holds ${bytes} bytes, and its data_offsets span ${e.end - e.begin}`,
      );
    }
    at = e.end;
  }
  if (at !== dataLength) {
    throw fail(
      'ERR_MEMMAP_DATA_LENGTH',
      path,
      `the tensors end at byte ${8n + BigInt(headerLength) + at} and the file has ${size} bytes; the data must end exactly at the end of the file`,
    );
  }
  return { entries, metadata };
}

/** @internal Reads and bounds the header length of a file of `size` bytes whose first 8 bytes are `prefix`. */
export function safetensorsHeaderLength(prefix: Uint8Array, size: number, path: string): number {
  if (size < 8)
    throw fail('ERR_MEMMAP_HEADER_TOO_SMALL', path, `${size} bytes is too short for the 8-byte header length`);
  const n = Buffer.from(prefix.buffer, prefix.byteOffset, 8).readBigUInt64LE(0);
  if (n > BigInt(SAFETENSORS_MAX_HEADER_SIZE)) {
    throw fail(
      'ERR_MEMMAP_HEADER_TOO_LARGE',
      path,
      `the header is ${n} bytes; at most ${SAFETENSORS_MAX_HEADER_SIZE} are read`,
    );
  }
  if (8n + n > BigInt(size)) {
    throw fail(
      'ERR_MEMMAP_HEADER_LENGTH',
      path,
      `the header ends at byte ${8n + n}, past the end of the file (${size} bytes)`,
    );
  }
  return Number(n);
}

/**
 * Opens a safetensors file and returns its tensors as typed arrays over one mapping of it:
 * nothing of the data is read until it is touched.
 *
 * Safety: the header is checked as untrusted input; the data is whatever the file holds.
 * @throws MemmapError ERR_MEMMAP_HEADER_TOO_SMALL, ERR_MEMMAP_HEADER_TOO_LARGE,
 * ERR_MEMMAP_HEADER_LENGTH, ERR_MEMMAP_HEADER_SYNTAX, ERR_MEMMAP_DUPLICATE_KEY,
 * ERR_MEMMAP_HEADER_KEY, ERR_MEMMAP_HEADER_VALUE, ERR_MEMMAP_DTYPE, ERR_MEMMAP_SHAPE,
 * ERR_MEMMAP_TENSOR_OFFSETS, ERR_MEMMAP_TENSOR_SIZE, ERR_MEMMAP_DATA_LENGTH,
 * ERR_MEMMAP_MISALIGNED; the errors of mapFile.
 * @example
 * using model = openSafetensors('model.safetensors');
 * const { dtype, shape, data } = model.get('lm_head.weight')!;
 */
export function openSafetensors(file: FileTarget, options?: OpenSafetensorsOptions): SafetensorsFile {
  return withFormatFile(file, options, ({ mapping, copyUnaligned, shared, path }) => {
    const size = mapping.length;
    const prefix = mapping.view(Uint8Array, { length: Math.min(size, 8), shared });
    const headerLength = safetensorsHeaderLength(prefix, size, path);
    const header = mapping.view(Uint8Array, { offset: 8, length: headerLength, shared });
    const { entries, metadata } = parseSafetensorsHeader(header, headerLength, size, path);
    const start = 8 + headerLength;
    const tensors: [string, SafetensorsTensor][] = entries.map((e) => {
      const Type = DTYPES[e.dtype];
      const count = Number(e.end - e.begin) / Type.BYTES_PER_ELEMENT;
      const data = viewBytes(
        mapping,
        Type,
        start + Number(e.begin),
        count,
        { copy: copyUnaligned, shared },
        `openSafetensors: ${path}: tensor ${JSON.stringify(e.name)}`,
        "options.unaligned: 'copy'",
      );
      return [e.name, { dtype: e.dtype, shape: e.shape, data }];
    });
    return new SafetensorsFile(tensors, metadata, mapping);
  });
}

/** A tensor to write with {@link saveSafetensors}: `dtype` defaults to the array's kind (F32 for a Float32Array). */
export interface SafetensorsInput {
  dtype?: SafetensorsDtype;
  shape: readonly number[];
  data: TypedArray;
}

function defaultDtype(data: TypedArray): SafetensorsDtype {
  const order: SafetensorsDtype[] = ['U8', 'I8', 'U16', 'I16', 'U32', 'I32', 'F32', 'U64', 'I64', 'F64', 'F16'];
  for (const name of order) if (data instanceof DTYPES[name]) return name;
  if (data instanceof Uint8ClampedArray) return 'U8';
  throw invalidArgType('data', 'a typed array', data);
}

/**
 * Writes tensors (and string metadata) as a safetensors file that the Python `safetensors`
 * package reads: the header padded to 8 bytes, the tensors ordered by element size, largest
 * first, then by name, so that every tensor is aligned.
 * @throws ERR_INVALID_ARG_VALUE for a shape whose size is not the data's, or a dtype of another
 * element size; the errors of writing the file.
 * @example
 * saveSafetensors('out.safetensors', { w: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } }, { format: 'pt' });
 */
export function saveSafetensors(
  path: string,
  tensors: Record<string, SafetensorsInput> | Map<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): void {
  const list = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].map(([name, t]) => {
    if (name === '__metadata__') throw invalidArgValue('tensors', name, 'cannot have a tensor named __metadata__');
    if (t === null || typeof t !== 'object' || !ArrayBuffer.isView(t.data) || t.data instanceof DataView) {
      throw invalidArgType(`tensors.${name}.data`, 'a typed array', t?.data);
    }
    const dtype =
      t.dtype === undefined ? defaultDtype(t.data) : validateOneOf(t.dtype, `tensors.${name}.dtype`, DTYPE_NAMES);
    const size = DTYPES[dtype].BYTES_PER_ELEMENT;
    if (size !== t.data.BYTES_PER_ELEMENT) {
      throw invalidArgValue(
        `tensors.${name}.dtype`,
        dtype,
        `has ${size}-byte elements, and the data ${t.data.BYTES_PER_ELEMENT}-byte ones`,
      );
    }
    const shape = validateShape([...t.shape], `tensors.${name}.shape`);
    const count = shape.reduce((n, d) => n * d, 1);
    if (count !== t.data.length) {
      throw invalidArgValue(
        `tensors.${name}.shape`,
        t.shape,
        `holds ${count} elements and the data has ${t.data.length}`,
      );
    }
    return { name, dtype, shape, data: t.data, size };
  });
  list.sort((a, b) => b.size - a.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // No prototype, so that a tensor named '__proto__' or 'toString' is a key like any other.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object')
      throw invalidArgType('metadata', 'an object of strings', metadata);
    const meta = { ...metadata };
    for (const [key, value] of Object.entries(meta)) {
      if (typeof value !== 'string') throw invalidArgType(`metadata.${key}`, 'of type string', value);
    }
    header.__metadata__ = meta;
  }
  let at = 0;
  for (const t of list) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
    at += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileParts(path, [
    prefix,
    json,
    ...list.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ]);
}
