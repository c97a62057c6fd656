/**
 * Reading a mapping the way Node programs read files: by lines, by fixed-size records, by any
 * delimiter, and as a Readable stream. Everything here hands out views of the mapped memory
 * (or strings decoded straight from it); nothing copies the file.
 *
 * A mapping larger than one Buffer (4 GiB on Node 20) is read through windows: Buffers over
 * its SharedArrayBuffer, each at most one Buffer long, moved along as the scan goes. The user
 * sees one sequence of lines.
 *
 * Every step re-checks the mapping: closed, faulted (the file shrank) or remapped in the middle
 * of an iteration ends it with ERR_MEMMAP_CLOSED or ERR_MEMMAP_TRUNCATED, never with bytes of
 * a page that is gone.
 *
 * @module
 */
import { constants as bufferConstants } from 'node:buffer';
import { Readable } from 'node:stream';
import { closedError, invalidArgType, invalidArgValue, MemmapError, outOfRange } from './errors.js';
import { validateBoolean, validateInteger, validateOptions } from './internal/validate.js';
import { kCheck, type Mapping } from './mapping.js';

/** Encodings in which a newline is the byte 0x0A, so that lines can be split on bytes. */
export type LineEncoding = 'utf8' | 'utf-8' | 'latin1' | 'binary' | 'ascii' | 'hex' | 'base64' | 'base64url';
const LINE_ENCODINGS: readonly string[] = ['utf8', 'utf-8', 'latin1', 'binary', 'ascii', 'hex', 'base64', 'base64url'];

/** Which part of a mapping a scan covers. */
export interface ScanRange {
  /**
   * Byte offset in the mapping where the scan starts (default 0). A start inside a line (or
   * record) skips to the next one: a line belongs to the range in which it starts, so ranges
   * that tile the mapping see every line exactly once.
   */
  start?: number;
  /**
   * Byte offset where the scan ends (exclusive, default the mapping's length): the last line
   * yielded is the last one that starts before `end`, read to its newline even past `end`.
   */
  end?: number;
}

/** Options of {@link Mapping.lines}. */
export interface LinesOptions extends ScanRange {
  /** How lines are decoded into strings (default 'utf8'). Not with `raw`. */
  encoding?: LineEncoding;
  /** Yield zero-copy Buffers over the mapped bytes instead of strings (default false). */
  raw?: boolean;
}

/** Options of {@link Mapping.createReadStream}, spelled as fs.createReadStream spells them. */
export interface ReadStreamOptions {
  /** First byte of the mapping to read (default 0). */
  start?: number;
  /** Last byte to read, inclusive as in fs.createReadStream (default the mapping's last byte). */
  end?: number;
  /** Largest chunk, in bytes (default 65536). */
  highWaterMark?: number;
}

/**
 * An iterator over a mapping's lines, records or delimited pieces: use it with `for...of`
 * (synchronous, fastest) or `for await...of` (yields to the event loop after each
 * {@link ASYNC_BATCH_BYTES} bytes, so timers and I/O keep running during a long scan).
 * It is its own iterator and can be consumed once.
 */
export interface MappingIterator<T> extends IterableIterator<T>, AsyncIterable<T> {
  [Symbol.iterator](): MappingIterator<T>;
}

/** How many bytes an asynchronous iteration reads between two turns of the event loop. */
export const ASYNC_BATCH_BYTES = 256 * 1024;

const kMaxLength = bufferConstants.MAX_LENGTH;
const NEWLINE = 0x0a;
const CR = 0x0d;

/**
 * Buffers over a mapping, for a scan: the mapping's own Buffer when it fits in one, otherwise
 * windows of at most `window` bytes over its SharedArrayBuffer. Re-checks the mapping on
 * every {@link Windows.check} and follows a remap() (the new views, clamped to the new length).
 */
class Windows {
  readonly #m: Mapping;
  readonly #what: string;
  readonly #window: number;
  #source: Buffer | SharedArrayBuffer = Buffer.alloc(0);
  #views = -1;
  /** The current window and where its first byte is in the mapping. */
  buf: Buffer = Buffer.alloc(0);
  base = 0;
  length = 0;

  constructor(m: Mapping, what: string, window: number) {
    this.#m = m;
    this.#what = what;
    this.#window = window;
    this.#acquire(0);
  }

  /** The mapping's Buffer, or its SharedArrayBuffer when it is larger than a Buffer can be. */
  #current(): Buffer | SharedArrayBuffer {
    return this.#m.length > kMaxLength ? this.#m.sharedBuffer() : this.#m.buffer;
  }

  #acquire(from: number): void {
    this.#views = this.#m[kCheck](this.#what);
    this.length = this.#m.length;
    this.#source = this.#current();
    this.cover(Math.min(from, this.length));
  }

  /** Throws what the mapping would answer (closed, faulted); follows a remap. */
  check(): void {
    if (this.#m[kCheck](this.#what) !== this.#views) this.#acquire(this.base);
  }

  /** Moves the window so that it starts at `from` (a no-op when the whole mapping is one window). */
  cover(from: number): void {
    const source = this.#source;
    if (source instanceof SharedArrayBuffer) {
      this.buf = Buffer.from(source, from, Math.min(this.#window, this.length - from));
      this.base = from;
    } else if (source.length <= this.#window) {
      this.buf = source;
      this.base = 0;
    } else {
      this.buf = source.subarray(from, from + this.#window);
      this.base = from;
    }
  }

  /** Makes the window hold [from, from + length) (`length` at most one window). */
  slice(from: number, length: number): Buffer {
    if (from < this.base || from + length > this.base + this.buf.length) this.cover(from);
    return this.buf.subarray(from - this.base, from - this.base + length);
  }

  tooLong(from: number): MemmapError {
    return new MemmapError(
      'ERR_MEMMAP_OUT_OF_RANGE',
      `${this.#what}: the piece that starts at offset ${from} is longer than one scan window (${this.#window} bytes)`,
    );
  }
}

/**
 * Buffer#indexOf answers in 32 signed bits (an index past 2^31 comes back negative) and clamps
 * its start offset to 2^31 - 1 (Node 20, 22): a scan searches windows of at most this many
 * bytes, so a line or piece is at most 2 GiB.
 */
const SEARCH_WINDOW = 0x7fffffff;

/** The scan behind lines() and split(): pieces between delimiters, as windows and offsets. */
class Pieces {
  readonly w: Windows;
  readonly #delimiter: number | Buffer;
  readonly #size: number;
  /** Where the next piece starts, and the offset that no piece may start at or after. */
  #pos: number;
  #end: number;
  /** The piece found by the last next(): w.buf[s, e). */
  s = 0;
  e = 0;

  constructor(w: Windows, delimiter: Buffer, start: number, end: number) {
    this.w = w;
    this.#delimiter = delimiter.length === 1 ? (delimiter[0] as number) : delimiter;
    this.#size = delimiter.length;
    this.#end = end;
    this.#pos = start;
    if (start > 0) {
      // A piece starts at `start` only if a delimiter ends there; otherwise the scan starts
      // after the next delimiter.
      const at = this.#find(Math.max(0, start - this.#size), false);
      this.#pos = at < 0 ? w.length : at + this.#size;
    }
  }

  /** The absolute offset of the next delimiter at or after `from`, or -1. */
  #find(from: number, keep: boolean): number {
    const w = this.w;
    let anchor = from;
    if (from < w.base || from >= w.base + w.buf.length) w.cover(from);
    for (;;) {
      const i = w.buf.indexOf(this.#delimiter, from - w.base);
      if (i >= 0) return w.base + i;
      const windowEnd = w.base + w.buf.length;
      if (windowEnd >= w.length) return -1;
      // Not in this window. The next starts at the piece's start, so that the piece lies in
      // one Buffer; a skip (keep false) just moves on, keeping a delimiter cut by the edge.
      if (!keep) anchor = Math.max(anchor, windowEnd - this.#size + 1);
      else if (anchor === w.base) throw w.tooLong(anchor);
      from = Math.max(from, windowEnd - this.#size + 1);
      w.cover(anchor);
    }
  }

  /**
   * Finds the next run of whole pieces, about `bytes` long (longer when one piece is), into s
   * and e: each piece ends with the delimiter, but for the last piece of the mapping. For a
   * one-byte delimiter only. False when the range has no more.
   */
  nextBatch(bytes: number): boolean {
    const w = this.w;
    w.check();
    const start = this.#pos;
    if (start >= this.#end || start >= w.length) return false;
    if (start < w.base || start >= w.base + w.buf.length) w.cover(start);
    // No piece may start at `end` or after: the run's last delimiter lies before `end`.
    const limit = Math.min(start + bytes, this.#end - 1, w.base + w.buf.length - 1);
    const last = limit >= start ? w.buf.lastIndexOf(this.#delimiter, limit - w.base) : -1;
    if (last >= start - w.base) {
      w.check(); // lastIndexOf read the run: a page that vanished under it faulted now
      this.s = start - w.base;
      this.e = last + this.#size;
      this.#pos = w.base + this.e;
      return true;
    }
    // One piece longer than the run: find it whole, with its delimiter if it has one.
    if (!this.next()) return false;
    if (this.#pos > w.base + this.e) this.e += this.#size;
    return true;
  }

  /** Finds the next piece (into s and e); false when the range has no more. */
  next(): boolean {
    const w = this.w;
    w.check();
    if (this.#pos >= this.#end || this.#pos >= w.length) return false;
    const start = this.#pos;
    const at = this.#find(start, true);
    // The search read every byte of the piece: a page that vanished under it faulted now.
    w.check();
    const stop = at < 0 ? w.length : at;
    this.#pos = at < 0 ? w.length : at + this.#size;
    if (stop - start > w.buf.length || start < w.base) throw w.tooLong(start);
    this.s = start - w.base;
    this.e = stop - w.base;
    return true;
  }
}

/** The one iterator class: sync and async iteration over what `step` produces. */
class Iteration<T> implements MappingIterator<T> {
  readonly #step: () => T | undefined;
  readonly #position: () => number;
  #done = false;

  constructor(step: () => T | undefined, position: () => number) {
    this.#step = step;
    this.#position = position;
  }

  next(): IteratorResult<T> {
    if (this.#done) return { done: true, value: undefined };
    let value: T | undefined;
    try {
      value = this.#step();
    } catch (error) {
      this.#done = true;
      throw error;
    }
    if (value === undefined) {
      this.#done = true;
      return { done: true, value: undefined };
    }
    return { done: false, value };
  }

  return(): IteratorResult<T> {
    this.#done = true;
    return { done: true, value: undefined };
  }

  [Symbol.iterator](): this {
    return this;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    let next = this.#position() + ASYNC_BATCH_BYTES;
    for (;;) {
      const result = this.next();
      if (result.done) return;
      yield result.value;
      if (this.#position() >= next) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        next = this.#position() + ASYNC_BATCH_BYTES;
      }
    }
  }
}

/** Validates `{ start, end }` against a mapping of `length` bytes. */
function scanRange(opts: ScanRange, what: string, length: number): [number, number] {
  const start = opts.start === undefined ? 0 : validateInteger(opts.start, 'options.start');
  const end = opts.end === undefined ? Math.max(length, start) : validateInteger(opts.end, 'options.end');
  if (end < start) throw outOfRange('options.end', `>= options.start (${start})`, end);
  if (end > length) {
    throw new MemmapError(
      'ERR_MEMMAP_OUT_OF_RANGE',
      `${what}: range [${start}, ${end}) lies outside the mapping of ${length} bytes`,
    );
  }
  // Without an end, the scan runs to the mapping's end as it is then (a remap may move it).
  return [start, opts.end === undefined ? Number.POSITIVE_INFINITY : end];
}

function opened(m: Mapping, what: string): void {
  if (m.closed) throw closedError(what);
  m[kCheck](what);
}

/**
 * @internal The implementation of {@link Mapping.lines}; `window` is the largest Buffer a
 * scan makes (smaller in tests, to cross window edges on small files).
 */
export function lines(m: Mapping, options: unknown, window = SEARCH_WINDOW): MappingIterator<string | Buffer> {
  const opts = validateOptions(options, 'options', ['start', 'end', 'encoding', 'raw'] as const) as LinesOptions;
  const raw = opts.raw === undefined ? false : validateBoolean(opts.raw, 'options.raw');
  let encoding: BufferEncoding = 'utf8';
  if (opts.encoding !== undefined) {
    if (typeof opts.encoding !== 'string') throw invalidArgType('options.encoding', 'of type string', opts.encoding);
    if (raw) throw invalidArgValue('options.encoding', opts.encoding, 'cannot be given with raw: true');
    if (!LINE_ENCODINGS.includes(opts.encoding.toLowerCase())) {
      throw invalidArgValue(
        'options.encoding',
        opts.encoding,
        `must be an encoding in which a newline is the byte 0x0A: ${LINE_ENCODINGS.join(', ')} (for utf16le text, decode ranges with TextDecoder)`,
      );
    }
    encoding = opts.encoding.toLowerCase() as BufferEncoding;
  }
  opened(m, 'lines');
  const [start, end] = scanRange(opts, 'lines', m.length);
  const pieces = new Pieces(new Windows(m, 'lines', window), Buffer.of(NEWLINE), start, end);
  const position = () => pieces.w.base + pieces.e;
  if (!raw && TEXT_ENCODINGS.includes(encoding)) return new Iteration(textLines(pieces, encoding), position);
  const step = (): string | Buffer | undefined => {
    if (!pieces.next()) return undefined;
    const buf = pieces.w.buf;
    let e = pieces.e;
    if (e > pieces.s && buf[e - 1] === CR && pieces.w.base + e < pieces.w.length) e--;
    return raw ? buf.subarray(pieces.s, e) : buf.toString(encoding, pieces.s, e);
  };
  return new Iteration(step, position);
}

/** Encodings that decode a newline byte to '\n' and no other byte to it. */
const TEXT_ENCODINGS: readonly string[] = ['utf8', 'utf-8', 'latin1', 'binary', 'ascii'];

/** How many bytes of lines are decoded at once (then split as a string: far fewer calls). */
const TEXT_BATCH_BYTES = 64 * 1024;

/**
 * Lines as strings, decoded a run of lines at a time and cut with String#indexOf. The lines
 * are slices of the run's string, so one line kept alive keeps its run (64 KiB) alive. Lines
 * of a run decoded before the file shrank are what the file held: they are handed out, and
 * the next run, which reads the vanished pages, ends the iteration with ERR_MEMMAP_TRUNCATED.
 */
function textLines(pieces: Pieces, encoding: BufferEncoding): () => string | undefined {
  let text = '';
  let at = 0;
  return () => {
    for (;;) {
      if (at < text.length) {
        pieces.w.check(); // close() ends the iteration at once, decoded lines or not
        const newline = text.indexOf('\n', at);
        const stop = newline < 0 ? text.length : newline;
        const from = at;
        at = newline < 0 ? text.length : newline + 1;
        // A '\r' before a newline is dropped; the last line of the mapping keeps one.
        return text.slice(from, newline > from && text.charCodeAt(newline - 1) === CR ? newline - 1 : stop);
      }
      if (!pieces.nextBatch(TEXT_BATCH_BYTES)) return undefined;
      text = pieces.w.buf.toString(encoding, pieces.s, pieces.e);
      at = 0;
    }
  };
}

/** @internal The implementation of {@link Mapping.split}. */
export function split(
  m: Mapping,
  delimiter: unknown,
  options: unknown,
  window = SEARCH_WINDOW,
): MappingIterator<Buffer> {
  let bytes: Buffer;
  if (typeof delimiter === 'string') bytes = Buffer.from(delimiter, 'utf8');
  else if (delimiter instanceof Uint8Array)
    bytes = Buffer.from(delimiter.buffer, delimiter.byteOffset, delimiter.length);
  else throw invalidArgType('delimiter', 'a string, a Buffer or a Uint8Array', delimiter);
  if (bytes.length === 0) throw invalidArgValue('delimiter', delimiter, 'must not be empty');
  // The delimiter is searched for on every step: a copy keeps a caller's later change of it out.
  bytes = Buffer.from(bytes);
  const opts = validateOptions(options, 'options', ['start', 'end'] as const) as ScanRange;
  opened(m, 'split');
  const [start, end] = scanRange(opts, 'split', m.length);
  const pieces = new Pieces(new Windows(m, 'split', window), bytes, start, end);
  const step = (): Buffer | undefined => (pieces.next() ? pieces.w.buf.subarray(pieces.s, pieces.e) : undefined);
  return new Iteration(step, () => pieces.w.base + pieces.e);
}

/** @internal The implementation of {@link Mapping.records}. */
export function records(m: Mapping, size: unknown, options: unknown, window = kMaxLength): MappingIterator<Buffer> {
  validateInteger(size, 'size', 1, Math.min(window, Number.MAX_SAFE_INTEGER));
  const recordSize = size as number;
  const opts = validateOptions(options, 'options', ['start', 'end'] as const) as ScanRange;
  opened(m, 'records');
  const [start, end] = scanRange(opts, 'records', m.length);
  const w = new Windows(m, 'records', window);
  // Records lie at multiples of `size` from the mapping's start: a start inside one skips it.
  let pos = Math.ceil(start / recordSize) * recordSize;
  const step = (): Buffer | undefined => {
    w.check();
    const limit = Math.min(end, w.length);
    if (pos >= limit) return undefined;
    const length = Math.min(recordSize, w.length - pos);
    const record = w.slice(pos, length);
    pos += length;
    return record;
  };
  return new Iteration(step, () => pos);
}

/** @internal The implementation of {@link Mapping.createReadStream}. */
export function createReadStream(m: Mapping, options: unknown, window = kMaxLength): Readable {
  const opts = validateOptions(options, 'options', ['start', 'end', 'highWaterMark'] as const) as ReadStreamOptions;
  const highWaterMark =
    opts.highWaterMark === undefined
      ? 64 * 1024
      : validateInteger(opts.highWaterMark, 'options.highWaterMark', 1, Math.min(window, 2 ** 31 - 1));
  opened(m, 'createReadStream');
  const start = opts.start === undefined ? 0 : validateInteger(opts.start, 'options.start');
  // fs.createReadStream's end is inclusive; so is this one.
  let end = Number.POSITIVE_INFINITY;
  if (opts.end !== undefined) {
    const last = validateInteger(opts.end, 'options.end');
    if (last < start) throw outOfRange('options.end', `>= options.start (${start})`, last);
    end = last + 1;
  }
  if (start > m.length || (end > m.length && opts.end !== undefined)) {
    throw new MemmapError(
      'ERR_MEMMAP_OUT_OF_RANGE',
      `createReadStream: range [${start}, ${Number.isFinite(end) ? end : start}) lies outside the mapping of ${m.length} bytes`,
    );
  }
  const w = new Windows(m, 'createReadStream', window);
  let pos = start;
  return new Readable({
    highWaterMark,
    read(this: Readable, wanted: number) {
      try {
        w.check();
        const limit = Math.min(end, w.length);
        if (pos >= limit) {
          this.push(null);
          return;
        }
        const length = Math.min(Math.max(wanted, 1), highWaterMark, limit - pos);
        const chunk = w.slice(pos, length);
        pos += length;
        this.push(chunk);
      } catch (error) {
        this.destroy(error as Error);
      }
    },
  });
}
