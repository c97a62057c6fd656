/**
 * A strict JSON reader for untrusted headers. Unlike JSON.parse it refuses duplicate keys
 * (JSON.parse keeps the last one silently) and keeps numbers as their text, so that an
 * integer above 2^53 is never rounded into a plausible offset. Nesting is bounded, so a
 * hostile header cannot overflow the stack.
 */

/** A JSON value: objects keep their keys in order in a Map, numbers keep their text. */
export type JsonValue =
  | { kind: 'object'; entries: Map<string, JsonValue> }
  | { kind: 'array'; items: JsonValue[] }
  | { kind: 'string'; value: string }
  | { kind: 'number'; text: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'null' };

/** Why a text is not JSON: `duplicate` names the key seen twice. */
export class JsonError extends Error {
  readonly duplicate: string | null;
  constructor(message: string, duplicate: string | null = null) {
    super(message);
    this.duplicate = duplicate;
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
// Every character but a quote, a backslash and the controls U+0000 to U+001F, which JSON
// forbids unescaped (written as a range from the space up, by code point).
const PLAIN = /[ !#-[\]-\u{10FFFF}]*/uy;

/** Parses `text` as one JSON value (surrounding whitespace allowed), at most `maxDepth` deep. */
export function parseJson(text: string, maxDepth = 16): JsonValue {
  let at = 0;
  const skip = (): void => {
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) at++;
      else return;
    }
  };
  const error = (what: string): JsonError => new JsonError(`${what} at character ${at}`);

  const string = (): string => {
    at++; // the opening quote
    let out = '';
    for (;;) {
      PLAIN.lastIndex = at;
      PLAIN.exec(text);
      out += text.slice(at, PLAIN.lastIndex);
      at = PLAIN.lastIndex;
      const c = text[at];
      if (c === '"') {
        at++;
        return out;
      }
      if (c !== '\\')
        throw error(c === undefined ? 'a string without its closing quote' : 'a control character in a string');
      const e = text[at + 1];
      at += 2;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = text.slice(at, at + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw error('a bad \\u escape');
          out += String.fromCharCode(Number.parseInt(hex, 16));
          at += 4;
          break;
        }
        default:
          throw error('a bad escape');
      }
    }
  };

  const value = (depth: number): JsonValue => {
    if (depth > maxDepth) throw error(`nesting deeper than ${maxDepth}`);
    skip();
    const c = text[at];
    if (c === '{') {
      at++;
      const entries = new Map<string, JsonValue>();
      skip();
      if (text[at] === '}') {
        at++;
        return { kind: 'object', entries };
      }
      for (;;) {
        skip();
        if (text[at] !== '"') throw error('expected a key');
        const key = string();
        skip();
        if (text[at] !== ':') throw error("expected ':'");
        at++;
        const v = value(depth + 1);
        if (entries.has(key)) throw new JsonError(`the key ${JSON.stringify(key)} appears twice`, key);
        entries.set(key, v);
        skip();
        if (text[at] === ',') {
          at++;
          continue;
        }
        if (text[at] === '}') {
          at++;
          return { kind: 'object', entries };
        }
        throw error("expected ',' or '}'");
      }
    }
    if (c === '[') {
      at++;
      const items: JsonValue[] = [];
      skip();
      if (text[at] === ']') {
        at++;
        return { kind: 'array', items };
      }
      for (;;) {
        items.push(value(depth + 1));
        skip();
        if (text[at] === ',') {
          at++;
          continue;
        }
        if (text[at] === ']') {
          at++;
          return { kind: 'array', items };
        }
        throw error("expected ',' or ']'");
      }
    }
    if (c === '"') return { kind: 'string', value: string() };
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      NUMBER.lastIndex = at;
      const m = NUMBER.exec(text);
      if (m === null) throw error('a bad number');
      at = NUMBER.lastIndex;
      return { kind: 'number', text: m[0] };
    }
    for (const [word, v] of [
      ['true', { kind: 'bool', value: true }],
      ['false', { kind: 'bool', value: false }],
      ['null', { kind: 'null' }],
    ] as const) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return v;
      }
    }
    throw error(c === undefined ? 'the text ends early' : `unexpected ${JSON.stringify(c)}`);
  };

  const result = value(0);
  skip();
  if (at !== text.length) throw error('text after the value');
  return result;
}
