/**
 * What the array-file formats share: opening a file for a parser, checking shapes given by a
 * caller, writing a file in full.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { invalidArgType, invalidArgValue } from '../errors.js';
import { validateBoolean, validateOneOf, validateOptions } from '../internal/validate.js';
import { type FileTarget, type MapMode, type Mapping, mapFile } from '../mapping.js';

const MODES: MapMode[] = ['read', 'write', 'copy'];

/** An opened file, for a parser: the mapping and the options every opener takes. */
export interface OpenedFile {
  mapping: Mapping;
  /** Copy unaligned data onto the heap instead of refusing it. */
  copyUnaligned: boolean;
  /** View the mapping's SharedArrayBuffer instead of its Buffer. */
  shared: boolean;
  /** The path for messages. */
  path: string;
}

/**
 * Validates `{ mode, unaligned, shared }`, maps the whole file and hands the mapping to `parse`; the
 * mapping is closed if `parse` throws.
 */
export function withFormatFile<R>(file: FileTarget, options: unknown, parse: (opened: OpenedFile) => R): R {
  const opts = validateOptions(options, 'options', ['mode', 'unaligned', 'shared'] as const);
  const shared = opts.shared === undefined ? false : validateBoolean(opts.shared, 'options.shared');
  const mode = opts.mode === undefined ? 'read' : validateOneOf(opts.mode, 'options.mode', MODES);
  const unaligned =
    opts.unaligned === undefined
      ? 'error'
      : validateOneOf(opts.unaligned, 'options.unaligned', ['error', 'copy'] as const);
  const mapping = mapFile(file, { mode });
  try {
    return parse({ mapping, copyUnaligned: unaligned === 'copy', shared, path: mapping.path ?? 'the file' });
  } catch (error) {
    mapping.close();
    throw error;
  }
}

/**
 * `bytes`, or a copy of them when they view a SharedArrayBuffer (a mapping larger than a
 * Buffer can be), which the TextDecoder of some runtimes refuses to read.
 */
export function unshared(bytes: Uint8Array): Uint8Array {
  return bytes.buffer instanceof SharedArrayBuffer ? bytes.slice() : bytes;
}

/** Checks a caller's shape: non-negative safe integers whose product is at most 2^53 - 1. */
export function validateShape(shape: unknown, name: string): number[] {
  if (!Array.isArray(shape)) throw invalidArgType(name, 'an array of non-negative integers', shape);
  let count = 1n;
  for (const [i, dim] of shape.entries()) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw invalidArgValue(`${name}[${i}]`, dim, 'must be a non-negative safe integer');
    }
    count *= BigInt(dim);
  }
  if (count > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgValue(name, shape, 'holds more than 2^53 - 1 elements');
  return shape as number[];
}

/** Writes `parts` to a new file at `path` (replacing one that is there). */
export function writeFileParts(path: string, parts: readonly Uint8Array[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const part of parts) writeAll(fd, part);
  } finally {
    closeSync(fd);
  }
}

/** Writes every byte, in steps of at most 1 GiB (one write(2) moves at most about 2 GiB). */
function writeAll(fd: number, bytes: Uint8Array): void {
  const step = 2 ** 30;
  for (let done = 0; done < bytes.byteLength; ) {
    done += writeSync(fd, bytes, done, Math.min(step, bytes.byteLength - done));
  }
}
