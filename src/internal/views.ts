/**
 * Typed-array views over a mapping, with the checks a typed array's constructor does not make
 * in a way a caller can act on: alignment in memory, lengths past the mapping, element counts
 * beyond 2^53, and views larger than a Buffer can be.
 */
import { constants as bufferConstants } from 'node:buffer';
import { invalidArgType, MemmapError } from '../errors.js';
import type { Mapping } from '../mapping.js';
import { validateBoolean, validateInteger, validateOptions } from './validate.js';

/** A typed array: the kinds {@link Mapping.view} makes. */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** The constructor of a typed array (Float16Array too, where the runtime has it). */
export interface TypedArrayConstructor<T = TypedArray> {
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): T;
  new (length: number): T;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
}

/** Options of {@link Mapping.view}. */
export interface ViewOptions {
  /** Byte offset in the mapping where the view starts; a multiple of the element size. Default 0. */
  offset?: number;
  /** Elements in the view. Default: every whole element from `offset` to the end of the mapping. */
  length?: number;
  /**
   * Copy the elements onto the heap instead of viewing the mapping, which is what a
   * misaligned offset needs. The copy does not follow later changes to the file. Default false.
   */
  copy?: boolean;
  /**
   * View the mapping's SharedArrayBuffer instead of its Buffer: no garbage collection is
   * started for a large mapping (V8 starts one when a Buffer over more than 64 MiB is first
   * made), and the view can be posted to worker threads without a copy; but after close() it
   * reads zeros instead of being detached. Views larger than a Buffer can be are shared
   * anyway. Default false.
   */
  shared?: boolean;
}

/** How a view is made: a heap copy, or a view of the SharedArrayBuffer instead of the Buffer. */
export interface ViewKind {
  copy: boolean;
  shared: boolean;
}

const VIEW_OPTIONS = ['offset', 'length', 'copy', 'shared'] as const;
const kMaxLength = bufferConstants.MAX_LENGTH;

/** Float16Array where the runtime has it (Node 24+ behind no flag, Deno, Bun), else undefined. */
export const Float16ArrayOrUndefined = (globalThis as { Float16Array?: TypedArrayConstructor }).Float16Array;

const KINDS: readonly TypedArrayConstructor[] = [
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
  ...(Float16ArrayOrUndefined ? [Float16ArrayOrUndefined] : []),
] as TypedArrayConstructor[];

/** Checks that `Type` is one of the runtime's typed-array constructors. */
export function validateTypedArrayKind(Type: unknown, name: string): TypedArrayConstructor {
  if (!KINDS.includes(Type as TypedArrayConstructor)) {
    throw invalidArgType(name, `a typed array constructor (${KINDS.map((k) => k.name).join(', ')})`, Type);
  }
  return Type as TypedArrayConstructor;
}

/** The error for a typed view whose first byte is not a multiple of its element size. */
export function misalignedError(what: string, where: string, at: number, size: number, hint: string): MemmapError {
  return new MemmapError(
    'ERR_MEMMAP_MISALIGNED',
    `${what}: ${where} starts at byte ${at}, which is not a multiple of its element size ${size}; ${hint}`,
  );
}

/**
 * The typed array of `Type` over `[offset, offset + length * size)` of the mapping, after
 * every check; a heap copy when `copy`. The view shares the mapping's memory: a Buffer-backed
 * one is detached at close(), one over the SharedArrayBuffer (for mappings larger than a
 * Buffer can be) reads zeros after it.
 */
export function typedView<T extends TypedArray>(
  mapping: Mapping,
  Type: TypedArrayConstructor<T>,
  options: unknown,
  what = 'view',
): T {
  validateTypedArrayKind(Type, 'Type');
  const opts = validateOptions(options, 'options', VIEW_OPTIONS);
  const offset = opts.offset === undefined ? 0 : validateInteger(opts.offset, 'options.offset');
  const copy = opts.copy === undefined ? false : validateBoolean(opts.copy, 'options.copy');
  const shared = opts.shared === undefined ? false : validateBoolean(opts.shared, 'options.shared');
  const size = Type.BYTES_PER_ELEMENT;
  const total = mapping.length;
  if (offset > total) {
    throw new MemmapError(
      'ERR_MEMMAP_OUT_OF_RANGE',
      `${what}: offset ${offset} lies outside the mapping of ${total} bytes`,
    );
  }
  const length =
    opts.length === undefined ? Math.floor((total - offset) / size) : validateInteger(opts.length, 'options.length');
  // length * size may be above 2^53 and inexact, but it is then far above any mapping's length.
  const bytes = length * size;
  if (offset + bytes > total) {
    throw new MemmapError(
      'ERR_MEMMAP_OUT_OF_RANGE',
      `${what}: ${length} elements of ${size} bytes from offset ${offset} end at byte ${offset + bytes}, past the mapping of ${total} bytes`,
    );
  }
  return viewBytes(mapping, Type, offset, length, { copy, shared }, what, 'options.copy: true');
}

/**
 * @internal The view of `length` elements at byte `offset` of the mapping, already checked to
 * lie inside it; `copyHint` names the option that asks for a copy.
 */
export function viewBytes<T extends TypedArray>(
  mapping: Mapping,
  Type: TypedArrayConstructor<T>,
  offset: number,
  length: number,
  { copy, shared }: ViewKind,
  what: string,
  copyHint: string,
): T {
  const size = Type.BYTES_PER_ELEMENT;
  const bytes = length * size;
  // The view's backing store starts at the mapping's first byte, which is at file offset
  // mapping.offset, in a region that starts on a page: the first element is aligned in memory
  // exactly when mapping.offset + offset is a multiple of the element size.
  const misaligned = (mapping.offset + offset) % size !== 0 || offset % size !== 0;
  if (misaligned && !copy) {
    throw misalignedError(
      what,
      `a ${Type.name} view at offset ${offset} of a mapping at file offset ${mapping.offset}`,
      mapping.offset + offset,
      size,
      `pass ${copyHint} to copy the elements onto the heap, or map the file from an aligned offset`,
    );
  }
  let backing: ArrayBufferLike;
  let base = 0;
  if (shared || mapping.length > kMaxLength) {
    backing = mapping.sharedBuffer();
  } else {
    const buffer = mapping.buffer;
    backing = buffer.buffer;
    base = buffer.byteOffset;
  }
  if (copy) {
    let out: T;
    try {
      out = new Type(length);
    } catch (error) {
      throw tooLong(what, Type, length, error);
    }
    const target = out.buffer;
    // In steps of at most 1 GiB, so that no Uint8Array is longer than the runtime allows.
    const step = 2 ** 30;
    for (let done = 0; done < bytes; done += step) {
      const n = Math.min(step, bytes - done);
      new Uint8Array(target, done, n).set(new Uint8Array(backing, base + offset + done, n));
    }
    return out;
  }
  try {
    return new Type(backing, base + offset, length);
  } catch (error) {
    throw tooLong(what, Type, length, error);
  }
}

function tooLong(what: string, Type: TypedArrayConstructor, length: number, error: unknown): MemmapError {
  return new MemmapError(
    'ERR_MEMMAP_OUT_OF_RANGE',
    `${what}: this runtime cannot make a ${Type.name} of ${length} elements (${(error as Error).message}); view the data in parts with options.offset and options.length`,
  );
}
