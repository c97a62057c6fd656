/**
 * How values become the bytes of a message and back: bytes as they are (the default), 'utf8'
 * strings, 'json' values, or any `{ encode, decode }` pair.
 *
 * @module
 */
import { invalidArgType, invalidArgValue } from '../errors.js';

/** A pair of functions that turn a value into bytes and bytes back into a value. */
export interface CodecFunctions<T> {
  encode(value: T): Uint8Array;
  /** Reads a received message. `view` is valid only until the message is released: copy what you keep. */
  decode(view: Buffer): T;
}

/** What a channel's producer() and consumer() take as `codec`. */
export type Codec<T = unknown> = 'bytes' | 'utf8' | 'json' | CodecFunctions<T>;

/**
 * A codec ready for use. `size` and `write` let strings go straight into the ring (one copy,
 * no intermediate Buffer); custom codecs encode first and copy.
 */
export interface Encoding<T> {
  /** Bytes `value` will take, and the prepared form `write` copies. */
  prepare(value: T): Uint8Array | string;
  write(prepared: Uint8Array | string, into: Buffer, offset: number): void;
  size(prepared: Uint8Array | string): number;
  decode(view: Buffer): T;
}

const bytes: Encoding<Uint8Array> = {
  prepare(value) {
    if (!(value instanceof Uint8Array)) throw invalidArgType('message', 'an instance of Uint8Array or Buffer', value);
    return value;
  },
  size: (prepared) => (prepared as Uint8Array).byteLength,
  write(prepared, into, offset) {
    into.set(prepared as Uint8Array, offset);
  },
  decode: (view) => view,
};

function stringEncoding<T>(format: (value: T) => string, parse: (text: string) => T): Encoding<T> {
  return {
    prepare: (value) => format(value),
    size: (prepared) => Buffer.byteLength(prepared as string, 'utf8'),
    write(prepared, into, offset) {
      into.write(prepared as string, offset, 'utf8');
    },
    decode: (view) => parse(view.toString('utf8')),
  };
}

const utf8 = stringEncoding<string>(
  (value) => {
    if (typeof value !== 'string') throw invalidArgType('message', 'of type string', value);
    return value;
  },
  (text) => text,
);

const json = stringEncoding<unknown>(
  (value) => {
    const text = JSON.stringify(value);
    if (text === undefined) throw invalidArgValue('message', value, 'has no JSON form');
    return text;
  },
  (text) => JSON.parse(text),
);

/** Checks a `codec` option and returns what the producer and consumer call. */
export function encodingOf<T>(codec: unknown, name: string): Encoding<T> {
  if (codec === undefined || codec === 'bytes') return bytes as unknown as Encoding<T>;
  if (codec === 'utf8') return utf8 as unknown as Encoding<T>;
  if (codec === 'json') return json as Encoding<T>;
  if (typeof codec === 'string')
    throw invalidArgValue(name, codec, "must be 'bytes', 'utf8', 'json' or { encode, decode }");
  if (codec === null || typeof codec !== 'object') {
    throw invalidArgType(name, "'bytes', 'utf8', 'json' or an object with encode and decode", codec);
  }
  const { encode, decode } = codec as CodecFunctions<T>;
  if (typeof encode !== 'function' || typeof decode !== 'function') {
    throw invalidArgValue(name, codec, 'must have an encode and a decode function');
  }
  return {
    prepare(value) {
      const encoded = encode.call(codec, value);
      if (!(encoded instanceof Uint8Array)) throw invalidArgType(`${name}.encode()`, 'to return a Uint8Array', encoded);
      return encoded;
    },
    size: bytes.size,
    write: bytes.write,
    decode: (view) => decode.call(codec, view),
  };
}
