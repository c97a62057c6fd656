/**
 * What the types promise, checked by the compiler when the tests are built (a line marked
 * @ts-expect-error that compiles is a build error), and what util.inspect shows.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { type MapFileOptions, type MapMode, mapAnonymous, mapFile } from '../src/index.js';
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
