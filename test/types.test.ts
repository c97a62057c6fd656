/**
 * What the types promise, checked by the compiler when the tests are built (a line marked
 * @ts-expect-error that compiles is a build error), and what util.inspect shows.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import {
  isSystemCallError,
  type MapFileOptions,
  type MapMode,
  mapAnonymous,
  mapFile,
  type SystemErrorCode,
} from '../src/index.js';
import { tempDir } from './helpers/index.js';

const dir = tempDir();

/** Never called: the compiler checks these lines. */
export function typeChecks(path: string, mode: MapMode): void {
  // @ts-expect-error grow needs mode 'write'
  mapFile(path, { mode: 'read', grow: true });
  // @ts-expect-error grow needs mode 'write' (the default mode is 'read')
  mapFile(path, { grow: true });
  // @ts-expect-error create needs mode 'write'
  mapFile(path, { mode: 'copy', create: true });
  // @ts-expect-error syncMapping needs mode 'write'
  mapFile(path, { syncMapping: true });
  mapFile(path, { mode: 'write', grow: true, create: true, length: 10 });
  mapFile(path, { mode, offset: 0 }); // a mode known only at run time, without write-only options
  const options: MapFileOptions = { mode: 'write', grow: true };
  mapFile(path, options);
  const m = mapFile(path);
  for (const line of m.lines()) {
    const text: string = line;
    void text;
  }
  for (const line of m.lines({ raw: true })) {
    const bytes: Buffer = line;
    void bytes;
  }
}

describe('util.inspect(mapping)', () => {
  it('shows path, mode, offset, length, closed and faulted, never the bytes', () => {
    const path = join(dir, 'inspect.bin');
    writeFileSync(path, Buffer.alloc(100, 0x41));
    const m = mapFile(path, { offset: 10 });
    const shown = inspect(m);
    assert.match(shown, /^Mapping \{/);
    for (const part of [
      `path: '${path}'`,
      "mode: 'read'",
      'offset: 10',
      'length: 90',
      'closed: false',
      'faulted: false',
    ]) {
      assert.ok(shown.includes(part), `${part} in ${shown}`);
    }
    assert.doesNotMatch(shown, /AAAA|65, 65/);
    m.close();
    assert.match(inspect(m), /closed: true/);
    assert.match(inspect({ deep: { deeper: { m } } }), /\[Mapping\]/);
    using anon = mapAnonymous(4096);
    assert.match(inspect(anon), /path: null.*mode: 'copy'/s);
  });
});

describe('isSystemCallError', () => {
  it('recognises a failed system call, by code too, and nothing else', () => {
    let caught: unknown;
    try {
      mapFile(join(dir, 'missing'));
    } catch (error) {
      caught = error;
    }
    assert.ok(isSystemCallError(caught));
    assert.ok(isSystemCallError(caught, 'ENOENT'));
    assert.equal(isSystemCallError(caught, 'EACCES'), false);
    if (isSystemCallError(caught)) {
      const code: SystemErrorCode = caught.code; // typed, not a string
      assert.equal(code, 'ENOENT');
      assert.equal(caught.syscall, 'open');
    }
    let closed: unknown;
    const m = mapAnonymous(4096);
    m.close();
    try {
      m.flush();
    } catch (error) {
      closed = error;
    }
    assert.equal(isSystemCallError(closed), false, 'a MemmapError is not a system call error');
    assert.equal(isSystemCallError(new Error('x')), false);
    assert.equal(isSystemCallError({ code: 'ENOENT', errno: -2, syscall: 'open' }), false);
    assert.equal(isSystemCallError(null), false);
  });
});

/** Never called: a misspelt code is a type error. */
export function codeChecks(error: unknown): void {
  // @ts-expect-error not an errno name memmap reports
  isSystemCallError(error, 'ENOENTT');
}
