/**
 * {@link mapArray}: a file, or a range of one, as a typed array in one call.
 *
 * @module
 */
import { MemmapError } from '../errors.js';
import { validateBoolean, validateInteger, validateOneOf, validateOptions } from '../internal/validate.js';
import { type TypedArray, type TypedArrayConstructor, validateTypedArrayKind, viewBytes } from '../internal/views.js';
import { type FileTarget, type MapMode, type Mapping, mapFile } from '../mapping.js';

/** Options of {@link mapArray}. */
export interface MapArrayOptions {
  /** Byte offset in the file where the array starts; a multiple of the element size. Default 0. */
  offset?: number;
  /** Elements in the array. Default: every whole element from `offset` to the end of the file. */
  length?: number;
  /** As for {@link mapFile}: `'read'` (default), `'write'` or `'copy'`. */
  mode?: MapMode;
  /** Copy the elements onto the heap (what a misaligned offset needs). Default false. */
  copy?: boolean;
  /** View the mapping's SharedArrayBuffer instead of its Buffer; as `shared` of {@link Mapping.view}. Default false. */
  shared?: boolean;
}

/** What {@link mapArray} returns: the array, and the mapping to close when done with it. */
export interface MappedArray<T extends TypedArray> extends Disposable {
  array: T;
  mapping: Mapping;
}

const MODES: MapMode[] = ['read', 'write', 'copy'];

/**
 * Maps `length` elements of `Type` from byte `offset` of a file and returns them as a typed
 * array over the mapping, with the mapping itself (close it, or `using`, when done).
 * @throws MemmapError ERR_MEMMAP_MISALIGNED when `offset` is not a multiple of the element
 * size (unless `copy`), ERR_MEMMAP_OUT_OF_RANGE past the end of the file; the errors of
 * {@link mapFile}.
 * @example
 * using table = mapArray('vectors.f64', Float64Array, { offset: 4096 });
 * console.log(table.array[0]);
 */
export function mapArray<T extends TypedArray>(
  file: FileTarget,
  Type: TypedArrayConstructor<T>,
  options?: MapArrayOptions,
): MappedArray<T> {
  validateTypedArrayKind(Type, 'Type');
  const opts = validateOptions(options, 'options', ['offset', 'length', 'mode', 'copy', 'shared'] as const);
  const offset = opts.offset === undefined ? 0 : validateInteger(opts.offset, 'options.offset');
  const wanted = opts.length === undefined ? undefined : validateInteger(opts.length, 'options.length');
  const mode = opts.mode === undefined ? 'read' : validateOneOf(opts.mode, 'options.mode', MODES);
  const copy = opts.copy === undefined ? false : validateBoolean(opts.copy, 'options.copy');
  const shared = opts.shared === undefined ? false : validateBoolean(opts.shared, 'options.shared');
  const size = Type.BYTES_PER_ELEMENT;
  if (wanted !== undefined && offset + wanted * size > Number.MAX_SAFE_INTEGER) {
    throw new MemmapError(
      'ERR_MEMMAP_OUT_OF_RANGE',
      `mapArray: ${wanted} elements of ${size} bytes from offset ${offset} end past 2^53 - 1`,
    );
  }
  const mapping = mapFile(file, { mode, offset, ...(wanted === undefined ? {} : { length: wanted * size }) });
  try {
    const length = wanted ?? Math.floor(mapping.length / size);
    const array = viewBytes(mapping, Type, 0, length, { copy, shared }, 'mapArray', 'options.copy: true');
    return { array, mapping, [Symbol.dispose]: () => mapping.close() };
  } catch (error) {
    mapping.close();
    throw error;
  }
}
