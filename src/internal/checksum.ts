/**
 * The byte sum behind `memmap checksum` and the tour: every byte of a file added into an
 * unsigned 64-bit total, the same number as a C program that maps the file and adds its bytes.
 */
import { mapFile, mappableSize, openTarget } from '../mapping.js';
import { addon } from '../native.js';

/** Bytes summed per native call, between progress reports. */
const CHUNK = 64 * 1024 * 1024;
const U64 = (1n << 64n) - 1n;

export interface FileSum {
  /** The unsigned 64-bit sum of every byte. */
  sum: bigint;
  /** The file's size in bytes. */
  bytes: number;
}

/** The sum of the bytes of a Uint8Array (a Buffer over a mapping among them), modulo 2^64. */
export function byteSum(bytes: Uint8Array): bigint {
  return addon.byteSum(bytes);
}

/**
 * Bytes mapped at once: a file of any size is summed window by window, since one Buffer holds
 * at most 4 GiB on Node 20.
 */
export const WINDOW = 1024 * 1024 * 1024;

/**
 * Maps `path` read-only with sequential advice, one window at a time, and sums its bytes,
 * calling `onProgress` after each 64 MiB.
 */
export function sumFile(path: string, onProgress?: (done: number, total: number) => void): FileSum {
  // One descriptor for every window, so that each maps the same file.
  const { fd } = openTarget(path, 'read', false);
  try {
    const size = mappableSize(fd, path);
    let sum = 0n;
    for (let offset = 0; offset < size; offset += WINDOW) {
      using mapping = mapFile(fd, { offset, length: Math.min(WINDOW, size - offset), advice: 'sequential' });
      const buffer = mapping.buffer;
      for (let start = 0; start < buffer.length; start += CHUNK) {
        const end = Math.min(start + CHUNK, buffer.length);
        sum = (sum + addon.byteSum(buffer.subarray(start, end))) & U64;
        onProgress?.(offset + end, size);
      }
    }
    return { sum, bytes: size };
  } finally {
    addon.closeFd(fd);
  }
}
