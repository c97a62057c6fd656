/**
 * Resources are explicit: mappings, descriptors and memory come back when mappings close or
 * are forgotten.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertExitedCleanly, coreAddon, runModule, tempDir } from './helpers/index.js';

const dir = tempDir();

/** Child-side helpers: counts of open descriptors and mappings, and a thorough collection. */
const MEASURE = `
  const { readdirSync, readFileSync } = await import('node:fs');
  const { createRequire } = await import('node:module');
  const core = createRequire(import.meta.url)(process.env.CORE);
  const measure = async () => {
    for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
    return {
      fds: readdirSync('/proc/self/fd').length,
      maps: readFileSync('/proc/self/maps', 'utf8').split('\\n'),
      rss: process.memoryUsage().rss,
      counts: core.regionCounts(),
    };
  };
`;

/**
 * Checks that memmap keeps nothing mapped that it kept before (its own count of regions and
 * mapped bytes, zero-page stand-ins included) and that /proc/self/maps shows no mapping of
 * the file. The kernel's line count is not compared exactly: V8 and malloc add regions of their
 * own between two readings (256 KiB heap pages, arenas), and adjacent stand-ins would merge
 * into one line anyway.
 */
function assertNothingLeft(before: Snapshot, after: Snapshot, path: string): void {
  assert.equal(after.fds, before.fds, 'open descriptors');
  assert.deepEqual(after.counts, before.counts, "memmap's regions and mapped bytes");
  assert.equal(after.maps.filter((line) => line.includes(path)).length, 0, 'no mapping of the file is left');
  // Under AddressSanitizer its allocator adds mappings of its own by the hundred; without it,
  // V8's heap pages and malloc's arenas still come and go by the dozen (memmap's own count
  // above is exact).
  const noise = underAddressSanitizer ? 1024 : 128;
  assert.ok(
    after.maps.length - before.maps.length <= noise,
    `/proc/self/maps grew from ${before.maps.length} to ${after.maps.length} lines`,
  );
}

/** npm run test:sanitize preloads AddressSanitizer, whose allocator has its own footprint. */
const underAddressSanitizer = process.env.LD_PRELOAD?.includes('asan') ?? false;

interface Snapshot {
  fds: number;
  maps: string[];
  rss: number;
  counts: [number, number, number];
}

describe('leaks', () => {
  it('100,000 map/read/close cycles leave descriptors, mappings and RSS as they were', async () => {
    const path = join(dir, 'cycle.bin');
    writeFileSync(path, Buffer.alloc(1 << 20, 1));
    const child = await runModule(
      `
      const { mapFile } = await import(process.env.MEMMAP);
      ${MEASURE}
      let sum = 0;
      const cycle = (i) => {
        const m = mapFile(process.env.FILE, { offset: (i * 4097) % 900000, length: 4096 });
        sum += m.buffer[i % 4096];
        if (i % 3 === 0) sum += new Uint8Array(m.sharedBuffer())[0];
        m.close();
      };
      // The event loop turns every 1,000 cycles, as in a server: a range closed in a turn is
      // held, with its handle, until the loop turns (test/guard-adversary.test.ts takes
      // thousands of closes in one turn). A first round lets V8's heap and malloc's arenas grow
      // to their working size (a one-time rise of a few tens of MiB); a leak shows in the
      // second.
      const round = async () => {
        for (let i = 0; i < 100000; i++) {
          cycle(i);
          if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
        }
      };
      await round();
      const before = await measure();
      await round();
      const after = await measure();
      process.stdout.write(JSON.stringify({ before, after, sum }));
      `,
      { FILE: path, CORE: coreAddon },
      ['--expose-gc'],
    );
    assertExitedCleanly(child);
    const { before, after, sum } = JSON.parse(child.stdout) as { before: Snapshot; after: Snapshot; sum: number };
    assert.equal(sum, 2 * (100000 + Math.ceil(100000 / 3)));
    assertNothingLeft(before, after, path);
    // AddressSanitizer holds freed memory in quarantine (up to 256 MiB) to catch use after
    // free, so RSS says nothing there; descriptors and memmap's own counts still do.
    if (!underAddressSanitizer) {
      assert.ok(after.rss - before.rss < 8 * 1024 * 1024, `RSS grew by ${(after.rss - before.rss) >> 10} KiB`);
    }
  });

  it('forgotten mappings are released by the garbage collector between turns of the event loop', async () => {
    const path = join(dir, 'forgotten.bin');
    writeFileSync(path, Buffer.alloc(8192, 2));
    const child = await runModule(
      `
      const { mapFile } = await import(process.env.MEMMAP);
      ${MEASURE}
      const before = await measure();
      // Never closed. Finalizers run between turns of the event loop, so a server that forgets
      // close() gets its descriptors back; a synchronous loop that forgets it does not.
      for (let turn = 0; turn < 40; turn++) {
        for (let i = 0; i < 500; i++) mapFile(process.env.FILE).buffer[i % 8192];
        await new Promise((r) => setImmediate(r));
      }
      const after = await measure();
      process.stdout.write(JSON.stringify({ before, after }));
      `,
      { FILE: path, CORE: coreAddon },
      ['--expose-gc'],
    );
    assertExitedCleanly(child);
    const { before, after } = JSON.parse(child.stdout) as { before: Snapshot; after: Snapshot };
    assertNothingLeft(before, after, path);
  });
});
