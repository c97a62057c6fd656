/**
 * Resources are explicit: mappings, descriptors and memory come back when mappings close or
 * are forgotten.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertExitedCleanly, coreAddon, root, runModule, tempDir } from './helpers/index.js';

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
      counts: core.regionCounts().slice(0, 4),
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
  counts: [number, number, number, number];
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

  it('closed mappings whose views are not yet collected cannot take the whole address space: a collection, then ENOMEM', {
    timeout: 120_000,
  }, async (t) => {
    if (!existsSync(join(root, 'build', 'Release', 'memmap_sab.v8addon'))) {
      return t.skip(
        "memmap's V8 helper (build/Release/memmap_sab.v8addon), through which it asks for a collection, is not built here",
      );
    }
    // In a child: before the limit, a synchronous loop of this kind took every free address,
    // and V8's next allocation of its own ended the process ("Committing semi space failed").
    const result = await runModule(
      `const { mapFile } = await import(process.env.MEMMAP);
       const { createRequire } = await import('node:module');
       const { openSync, ftruncateSync, closeSync, mkdtempSync } = await import('node:fs');
       const { join } = await import('node:path');
       const { tmpdir } = await import('node:os');
       const core = createRequire(import.meta.url)(process.env.ADDON);
       const path = join(mkdtempSync(join(tmpdir(), 'memmap-standing-')), 'sparse');
       const fd = openSync(path, 'w'); ftruncateSync(fd, 2 ** 30); closeSync(fd);
       const TiB = 2 ** 40;
       // 20,000 cycles of 1 GiB, views dropped at once: 20 TiB closed, never more than ~8 standing.
       let most = 0;
       for (let i = 0; i < 20000; i++) {
         const m = mapFile(path);
         new Uint8Array(m.sharedBuffer())[i % 4096];
         m.close();
         most = Math.max(most, core.regionCounts()[2]);
       }
       // Views kept: no collection can free them, and the limit answers ENOMEM.
       const kept = [];
       let error = null;
       for (let i = 0; i < 40000 && error === null; i++) {
         try {
           const m = mapFile(path);
           kept.push(m.sharedBuffer());
           m.close();
         } catch (e) { error = e; }
       }
       const atLimit = core.regionCounts()[2];
       kept.length = 0;
       for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
       const after = core.regionCounts()[2];
       const again = mapFile(path); again.close();
       process.stdout.write(JSON.stringify({ most: most / TiB, code: error?.code, message: error?.message, mapped: kept.length, atLimit: atLimit / TiB, after: after / TiB }));`,
      { ADDON: coreAddon },
      ['--expose-gc'],
    );
    assertExitedCleanly(result);
    const r = JSON.parse(result.stdout);
    assert.ok(r.most <= 8 + 1 / 1024, `${r.most} TiB stood at most while views were dropped`);
    assert.equal(r.code, 'ENOMEM');
    assert.match(r.message, /closed mappings stay reserved while Buffers or SharedArrayBuffers of them are alive/);
    assert.ok(r.atLimit <= 32 + 1 / 1024 && r.atLimit > 31, `${r.atLimit} TiB standing at the limit`);
    assert.ok(r.after < 1, `${r.after} TiB standing once the views were collected`);
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
