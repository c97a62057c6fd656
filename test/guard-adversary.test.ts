/**
 * The never-crash promise against an adversary: thousands of closes in one turn before a stale
 * Buffer writes, fault storms past vm.max_map_count, JavaScript signal listeners that come and
 * go, a third-party handler that chains back to memmap, huge pages, and faults the kernel turns
 * into EFAULT. Every case runs in a child process, so a crash fails the test.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertExitedCleanly, coreAddon, runModule, signalFixture, tempDir, withMount } from './helpers/index.js';

const dir = tempDir();
/** A child that hangs (a fault loop, a lost guard) fails its test instead of stalling the run. */
const CHILD_TIMEOUT = 120_000;
let serial = 0;

function fileOf(bytes: number, fill = 7): string {
  const path = join(dir, `f${serial++}.bin`);
  writeFileSync(path, Buffer.alloc(bytes, fill));
  return path;
}

/** Child-side: the kernel mappings (lines of /proc/self/maps) that overlap a Mapping's range. */
const KERNEL_MAPPINGS = `
  const { readFileSync: readMaps } = await import('node:fs');
  const kernelMappings = (m, length) => {
    const lo = m.address, hi = m.address + BigInt(length);
    return readMaps('/proc/self/maps', 'utf8').trim().split('\\n').filter((line) => {
      const [a, b] = line.split(' ')[0].split('-').map((x) => BigInt('0x' + x));
      return a < hi && b > lo;
    }).length;
  };
`;

/** Cycles of the long stand-in loop: AddressSanitizer makes each one several times slower. */
const CYCLES = process.env.LD_PRELOAD?.includes('libasan') ? 250_000 : 1_000_000;

/**
 * Child-side, for the stand-in tests: mapFile, readFileSync, memmap's core addon, the count of
 * kernel mappings, and turns of the event loop with full collections.
 */
const STAND_IN_CHILD = `
  const { mapFile } = await import(process.env.MEMMAP);
  const { readFileSync } = await import('node:fs');
  const { createRequire } = await import('node:module');
  const core = createRequire(import.meta.url)(process.env.CORE);
  const maps = () => readFileSync('/proc/self/maps', 'utf8').trim().split('\\n').length;
  const turns = async () => { for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); } };
`;

describe('stale Buffers and the stand-ins that keep them harmless', () => {
  it('after 3,000 closes in one turn, a Buffer method whose valueOf closes its mapping writes into no other file', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const a = fileOf(64 * 1024, 1);
    const victim = fileOf(64 * 1024, 0x2e);
    const child = await runModule(
      `
      const { mapFile } = await import(process.env.MEMMAP);
      const { createRequire } = await import('node:module');
      const core = createRequire(import.meta.url)(process.env.CORE);
      for (let i = 0; i < 3000; i++) { const m = mapFile(process.env.A); void m.buffer[0]; m.close(); }
      const m = mapFile(process.env.A, { mode: 'write' });
      let v = null;
      m.buffer.fill({ valueOf() { m.close(); v = mapFile(process.env.VICTIM, { mode: 'write' }); return 0x58; } });
      v.flush();
      v.close();
      const standingInTurn = core.regionCounts()[2];
      for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
      const standingAfter = core.regionCounts()[2];
      process.stdout.write(JSON.stringify({ standingInTurn, standingAfter }));
      `,
      { A: a, VICTIM: victim, CORE: coreAddon },
      ['--expose-gc'],
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.ok(
      readFileSync(victim).every((byte) => byte === 0x2e),
      "the other file's bytes are unchanged",
    );
    assert.ok(
      readFileSync(a).every((byte) => byte === 1),
      'the closed file is unchanged too',
    );
    assert.ok(r.standingInTurn > 0, `ranges closed in the turn are held (${r.standingInTurn} bytes)`);
    assert.equal(r.standingAfter, 0, 'and given back once their Buffers were collected');
  });

  it('a synchronous loop of map, view and close whose stand-ins cannot merge stops at ENOMEM short of vm.max_map_count, and maps again after a turn', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const a = fileOf(64 * 1024, 1);
    // A live anonymous mapping after each closed one sits between the stand-ins, so the kernel
    // cannot merge them: every cycle costs two kernel mappings until the loop gives way.
    const child = await runModule(
      `
      ${STAND_IN_CHILD}
      const { mapAnonymous } = await import(process.env.MEMMAP);
      const cap = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
      let kept = [];
      let error = null;
      let cycles = 0;
      try {
        for (; cycles < cap; cycles++) {
          const m = mapFile(process.env.A, { length: 4096 });
          void m.buffer[0];
          m.close();
          kept.push(mapAnonymous(4096));
        }
      } catch (e) {
        error = { code: e.code, syscall: e.syscall, message: e.message };
      }
      const atRefusal = maps();
      // V8 and a new thread still have room: a Worker starts and answers.
      const { Worker } = await import('node:worker_threads');
      const worker = new Worker('import("node:worker_threads").then((w) => w.parentPort.postMessage(6 * 7))', { eval: true });
      const answer = await new Promise((r) => worker.once('message', r));
      await worker.terminate();
      for (const k of kept) k.close();
      kept = null;
      await turns();
      const standingAfter = core.regionCounts()[3];
      const again = mapFile(process.env.A, { length: 4096 });
      const byte = again.buffer[0];
      again.close();
      process.stdout.write(JSON.stringify({ cap, cycles, error, atRefusal, answer, standingAfter, byte }));
      `,
      { A: a, CORE: coreAddon },
      ['--expose-gc'],
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.equal(r.error?.code, 'ENOMEM', `the loop ends with ENOMEM (${JSON.stringify(r.error)})`);
    assert.equal(r.error.syscall, 'mmap');
    assert.match(r.error.message, /vm\.max_map_count/);
    assert.match(r.error.message, /memmap keeps the rest/, "memmap's own check refused, not the kernel");
    assert.match(r.error.message, /let the event loop turn/);
    assert.ok(r.cycles > 1000, `after many cycles (${r.cycles})`);
    assert.ok(r.atRefusal < r.cap, `short of the cap (${r.atRefusal} of ${r.cap} mappings)`);
    assert.equal(r.answer, 42, 'a Worker still starts');
    assert.equal(r.standingAfter, 0, 'the stand-ins go once their Buffers are collected');
    assert.equal(r.byte, 1, 'and mapping works again');
  });

  it('a million cycles of map, view and close in one turn (a quarter under AddressSanitizer): the stand-ins merge, and go again without splitting past vm.max_map_count', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const a = fileOf(1 << 20, 3);
    const child = await runModule(
      `
      ${STAND_IN_CHILD}
      const before = maps();
      let sum = 0;
      for (let i = 0; i < ${CYCLES}; i++) {
        // 1,000 bytes: a region is not a whole number of pages, its stand-in's range is.
        const m = mapFile(process.env.A, { offset: (i * 4096) % (1 << 20), length: 1000 });
        sum += m.buffer[i % 1000];
        m.close();
        // Other memory of the process's comes and goes between the cycles.
        if (i % 7 === 0) new ArrayBuffer(1 << 20);
      }
      const during = maps();
      const standing = core.regionCounts()[3];
      // The views are collected in whatever order the collector finds them: each one dropped
      // from the middle of the merged stand-ins would split them, a million times over.
      await turns();
      const after = maps();
      const counts = core.regionCounts().slice(0, 4);
      process.stdout.write(JSON.stringify({ before, during, standing, after, counts, sum }));
      `,
      { A: a, CORE: coreAddon },
      ['--expose-gc'],
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.equal(r.sum, 3 * CYCLES);
    assert.equal(r.standing, CYCLES, 'every closed range is still held in the turn');
    assert.ok(r.during - r.before < 2000, `kernel mappings in the turn ${r.before} → ${r.during}`);
    assert.deepEqual(r.counts, [0, 0, 0, 0], 'regions, bytes mapped, stand-in bytes and stand-ins all back to 0');
    // V8's heap grew by a million finalizer records meanwhile: a few hundred pages of its own
    // (Node 24 keeps about 115 more than before).
    assert.ok(r.after - r.before < 1000, `kernel mappings after ${r.before} → ${r.after}`);
  });

  it('every other Buffer kept: the gone stand-ins between live ones split the run only as far as the room allows, the rest are held and counted, and all go with the kept ones', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const a = fileOf(1 << 20, 5);
    const child = await runModule(
      `
      ${STAND_IN_CHILD}
      const cap = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
      const before = maps();
      let kept = [];
      for (let i = 0; i < 100000; i++) {
        const m = mapFile(process.env.A, { offset: (i * 4096) % (1 << 20), length: 4096 });
        const b = m.buffer;
        void b[0];
        m.close();
        if (i % 2 === 0) kept.push(b);
      }
      await turns();
      // Reading kept here keeps it alive through the collections above.
      const whileKept = { maps: maps(), standing: core.regionCounts()[3], kept: kept.length };
      kept = null;
      await turns();
      const after = { maps: maps(), counts: core.regionCounts().slice(0, 4) };
      process.stdout.write(JSON.stringify({ cap, before, whileKept, after }));
      `,
      { A: a, CORE: coreAddon },
      ['--expose-gc'],
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.ok(r.whileKept.maps < r.cap - r.cap / 8, `short of the cap while kept: ${r.whileKept.maps} of ${r.cap}`);
    assert.ok(
      r.whileKept.standing > 50000,
      `the kept stand-ins and the held ones between them count as standing (${r.whileKept.standing})`,
    );
    assert.deepEqual(r.after.counts, [0, 0, 0, 0], 'all given back with the kept Buffers');
    // V8's heap grew by 100,000 objects meanwhile: a few hundred pages of its own.
    assert.ok(r.after.maps - r.before < 1000, `kernel mappings after ${r.before} → ${r.after.maps}`);
  });

  it('SharedArrayBuffer stand-ins freed on worker threads while the main thread closes and maps: nothing left, no crash', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const a = fileOf(1 << 20, 9);
    // Each SharedArrayBuffer goes to one of two workers, which read it, drop it and collect:
    // the backing store's deleter (and the stand-in table) then runs on that worker's thread
    // while the main thread goes on closing ranges under live views and mapping new ones.
    const child = await runModule(
      `
      ${STAND_IN_CHILD}
      const { Worker } = await import('node:worker_threads');
      const source = 'import("node:worker_threads").then(({ parentPort }) => {' +
        'let seen = 0, odd = 0; parentPort.on("message", (m) => {' +
        'if (m === "done") { globalThis.gc(); parentPort.postMessage({ seen, odd }); return; }' +
        // The file's byte before the close, a stand-in's zero after it: nothing else.
        'const b = new Uint8Array(m)[0]; if (b !== 9 && b !== 0) odd++; if (++seen % 64 === 0) globalThis.gc(); }); });';
      // --expose-gc is a process-wide V8 flag: the workers have gc() too.
      const workers = [0, 1].map(() => new Worker(source, { eval: true }));
      const before = maps();
      let views = 0;
      for (let round = 0; round < 40; round++) {
        for (let i = 0; i < 500; i++) {
          const m = mapFile(process.env.A, { offset: ((round * 500 + i) * 4096) % (1 << 20), length: 4096 });
          workers[i & 1].postMessage(m.sharedBuffer());
          void m.buffer[0];
          m.close();
          views++;
        }
        await new Promise((r) => setImmediate(r));
      }
      const sums = await Promise.all(workers.map((w) => new Promise((r) => { w.once('message', r); w.postMessage('done'); })));
      await Promise.all(workers.map((w) => w.terminate()));
      await turns();
      const after = maps();
      const counts = core.regionCounts().slice(0, 4);
      process.stdout.write(JSON.stringify({ views, sums, before, after, counts }));
      `,
      { A: a, CORE: coreAddon },
      ['--expose-gc'],
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.equal(r.sums[0].seen + r.sums[1].seen, r.views, 'the workers got every SharedArrayBuffer');
    assert.equal(r.sums[0].odd + r.sums[1].odd, 0, "each read the file's byte or a stand-in's zero");
    assert.deepEqual(r.counts, [0, 0, 0, 0], 'every stand-in given back, whichever thread freed it');
    assert.ok(r.after - r.before < 1000, `kernel mappings ${r.before} → ${r.after}`);
  });

  it('remap() and resize() hold their old range while an old Buffer is alive, and give it back when it is collected', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const path = fileOf(8192);
    const child = await runModule(
      `
      const { mapFile } = await import(process.env.MEMMAP);
      const { createRequire } = await import('node:module');
      const core = createRequire(import.meta.url)(process.env.CORE);
      const turns = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); } };
      await turns();
      const [regionsBefore] = core.regionCounts();
      const m = mapFile(process.env.FILE, { mode: 'write' });
      let held = [];
      for (let i = 0; i < 50; i++) { held.push(m.buffer); m.remap(); }
      for (let i = 0; i < 50; i++) { held.push(m.buffer); m.resize(8192 + 4096 * (i % 2)); }
      await turns();
      const whileHeld = core.regionCounts();
      const detached = held.every((b) => b.length === 0);
      held = null;
      await turns();
      const afterwards = core.regionCounts();
      m.close();
      process.stdout.write(JSON.stringify({ regionsBefore, whileHeld, afterwards, detached }));
      `,
      { FILE: path, CORE: coreAddon },
      ['--expose-gc'],
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.equal(r.detached, true, 'every old Buffer is detached');
    assert.ok(
      r.whileHeld[2] >= 100 * 8192,
      `the old ranges stay reserved while their Buffers live (${r.whileHeld[2]})`,
    );
    assert.equal(r.afterwards[2], 0, 'no stand-in outlives its Buffers');
    assert.equal(r.afterwards[0], r.regionsBefore + 1, 'only the live mapping is left');
  });

  it('an fs.read still running on the thread pool after close() writes into no other file', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const size = 1 << 20;
    const a = fileOf(size, 0x61);
    const victim = fileOf(size, 0x2e);
    const source = fileOf(size, 0x58);
    const child = await runModule(
      `
      const { openSync, read } = await import('node:fs');
      const { pbkdf2 } = await import('node:crypto');
      const { mapFile } = await import(process.env.MEMMAP);
      // Keep libuv's four pool threads busy, so that the read runs several turns later.
      for (let i = 0; i < 4; i++) pbkdf2('p', 's', 200000, 32, 'sha256', () => {});
      const m = mapFile(process.env.A, { mode: 'write' });
      const fd = openSync(process.env.SOURCE, 'r');
      const done = new Promise((r) => read(fd, m.buffer, 0, ${size}, 0, (err, n) => r([err?.code ?? null, n])));
      m.close();
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      const v = mapFile(process.env.VICTIM, { mode: 'write' });
      const result = await done;
      v.flush();
      v.close();
      process.stdout.write(JSON.stringify({ result }));
      `,
      { A: a, VICTIM: victim, SOURCE: source },
    );
    assertExitedCleanly(child);
    assert.ok(
      readFileSync(victim).every((byte) => byte === 0x2e),
      "the other file's bytes are unchanged",
    );
    assert.ok(
      readFileSync(a).every((byte) => byte === 0x61),
      'the closed file is unchanged',
    );
  });

  it('an fs.write still running after close() sends no other file’s bytes', { timeout: CHILD_TIMEOUT }, async () => {
    const size = 1 << 20;
    const a = fileOf(size, 0x61);
    const secret = fileOf(size, 0x53);
    const out = join(dir, `out${serial++}.bin`);
    const child = await runModule(
      `
      const { openSync, write } = await import('node:fs');
      const { pbkdf2 } = await import('node:crypto');
      const { mapFile } = await import(process.env.MEMMAP);
      for (let i = 0; i < 4; i++) pbkdf2('p', 's', 200000, 32, 'sha256', () => {});
      const m = mapFile(process.env.A);
      const fd = openSync(process.env.OUT, 'w');
      const done = new Promise((r) => write(fd, m.buffer, 0, ${size}, 0, (err, n) => r([err?.code ?? null, n])));
      m.close();
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      const s = mapFile(process.env.SECRET);
      void s.buffer[0];
      const result = await done;
      s.close();
      process.stdout.write(JSON.stringify({ result }));
      `,
      { A: a, SECRET: secret, OUT: out },
    );
    assertExitedCleanly(child);
    assert.equal(readFileSync(out).indexOf(0x53), -1, 'none of the other file reached the output');
  });

  it('close() while a worker reads a lost page through a SharedArrayBuffer: no signal, ever', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const path = join(dir, `race${serial++}.bin`);
    writeFileSync(path, Buffer.alloc(8192));
    const child = await runModule(
      `
      const { Worker } = await import('node:worker_threads');
      const { openSync, ftruncateSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const ctl = new Int32Array(new SharedArrayBuffer(12));
      const w = new Worker(\`
        const { parentPort, workerData: { ctl } } = require('node:worker_threads');
        parentPort.on('message', ({ sab, delay }) => {
          const v = new Uint8Array(sab);
          Atomics.store(ctl, 1, 1);
          while (Atomics.load(ctl, 0) === 0) {}
          for (let k = 0; k < delay; k++) {}
          const x = v[4096];
          Atomics.store(ctl, 0, 0); Atomics.store(ctl, 1, 0);
          parentPort.postMessage(x);
        });\`, { eval: true, workerData: { ctl }, execArgv: [] }); // not --input-type=module: the code uses require
      w.on('error', (error) => { console.error(error); process.exit(3); });
      const fd = openSync(process.env.FILE, 'r+');
      let rounds = 0;
      const until = Date.now() + 20000;
      for (let i = 0; i < 3000 && Date.now() < until; i++, rounds++) {
        ftruncateSync(fd, 0); ftruncateSync(fd, 8192);
        const m = mapFile(process.env.FILE, { mode: 'write' });
        w.postMessage({ sab: m.sharedBuffer(), delay: (i * 37) % 2400 });
        while (Atomics.load(ctl, 1) === 0) {}
        ftruncateSync(fd, 4096);
        Atomics.store(ctl, 0, 1);
        try { m.close(); } catch {}
        await new Promise((r) => w.once('message', r));
      }
      await w.terminate();
      process.stdout.write(JSON.stringify({ rounds }));
      `,
      { FILE: path },
    );
    assertExitedCleanly(child);
    assert.ok(JSON.parse(child.stdout).rounds >= 100);
  });
});

describe('fault storms', () => {
  it('100,000 lost pages read after a truncation: one repair, a constant number of kernel mappings', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const path = join(dir, `storm${serial++}.bin`);
    writeFileSync(path, Buffer.alloc(4096, 7));
    const pages = 100_001;
    const child = await runModule(
      `
      const { truncateSync } = await import('node:fs');
      const { mapFile, faultStats } = await import(process.env.MEMMAP);
      ${KERNEL_MAPPINGS}
      truncateSync(process.env.FILE, ${pages} * 4096); // sparse: no disk blocks
      const m = mapFile(process.env.FILE);
      const b = m.buffer;
      const before = faultStats().absorbed;
      truncateSync(process.env.FILE, 4096);
      let sum = 0;
      // Backwards and forwards, so that faults come in every order.
      for (let p = ${pages} - 1; p >= 1; p -= 2) sum += b[p * 4096 + 1];
      for (let p = 2; p < ${pages}; p += 2) sum += b[p * 4096 + 2];
      sum += b[5];
      process.stdout.write(JSON.stringify({ sum, absorbed: faultStats().absorbed - before,
        kernel: kernelMappings(m, ${pages} * 4096), faulted: m.faulted }));
      try { m.close(); } catch {}
      `,
      { FILE: path },
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.equal(r.sum, 7, 'the page that stayed reads as before; the rest read zeros');
    assert.equal(r.faulted, true);
    assert.ok(r.absorbed >= 1 && r.absorbed <= 2, `${r.absorbed} repairs`);
    assert.ok(r.kernel <= 3, `${r.kernel} kernel mappings`);
  });

  for (const kind of ['write', 'read', 'copy', 'anonymous', 'shared anonymous'] as const) {
    it(`75,000 stray writes into a protected ${kind} mapping: absorbed, the file untouched, few kernel mappings`, {
      timeout: CHILD_TIMEOUT,
    }, async () => {
      const pages = 75_000;
      const path = join(dir, `prot${serial++}.bin`);
      writeFileSync(path, Buffer.alloc(0));
      const make =
        kind === 'anonymous'
          ? `mapAnonymous(${pages} * 4096)`
          : kind === 'shared anonymous'
            ? `mapAnonymous(${pages} * 4096, { shared: true })`
            : `mapFile(process.env.FILE, { mode: '${kind}' })`;
      const child = await runModule(
        `
        const { truncateSync } = await import('node:fs');
        const { mapFile, mapAnonymous, faultStats } = await import(process.env.MEMMAP);
        ${KERNEL_MAPPINGS}
        truncateSync(process.env.FILE, ${pages} * 4096);
        const m = ${make};
        const b = m.buffer;
        ${kind === 'read' ? '' : 'b[0] = 3; // a write before protection'}
        ${kind === 'read' ? '' : "m.protect('read');"}
        const before = faultStats().protection;
        for (let p = 0; p < ${pages}; p++) b[p * 4096 + 9] = 5;
        let readBack = 0;
        for (let p = 0; p < ${pages}; p += 997) readBack += b[p * 4096 + 9];
        process.stdout.write(JSON.stringify({ violations: faultStats().protection - before,
          kernel: kernelMappings(m, ${pages} * 4096), faulted: m.faulted, first: b[0], readBack }));
        try { m.close(); } catch {}
        `,
        { FILE: path },
      );
      assertExitedCleanly(child);
      const r = JSON.parse(child.stdout);
      assert.equal(r.faulted, true);
      assert.equal(r.readBack, 5 * Math.ceil(pages / 997), 'the stray writes landed somewhere the view can read');
      assert.equal(r.first, kind === 'read' ? 0 : 3, 'what was there before the fault stays');
      // Anonymous shared memory has no file to map privately: a few pages are copied one by
      // one before the whole range is (native kPageCopies).
      const maxViolations = kind === 'shared anonymous' ? 65 : 1;
      assert.ok(r.violations >= 1 && r.violations <= maxViolations, `${r.violations} repairs`);
      assert.ok(r.kernel <= (kind === 'shared anonymous' ? 3 : 2), `${r.kernel} kernel mappings`);
      if (kind === 'write' || kind === 'read') {
        const file = readFileSync(path);
        assert.equal(file.indexOf(5), -1, 'no stray write reached the file');
      }
    });
  }

  it('a fault that is not a truncation (a full tmpfs) repairs that page alone: the data beside it is kept', {
    timeout: CHILD_TIMEOUT,
  }, async (t) => {
    await withMount(t, dir, 'tmpfs', 'size=1m', async (at) => {
      const path = join(at, 'sparse.bin');
      const child = await runModule(
        `
        const { openSync, ftruncateSync, readSync, closeSync } = await import('node:fs');
        const { mapFile } = await import(process.env.MEMMAP);
        const fd = openSync(process.env.FILE, 'w+');
        ftruncateSync(fd, 2 << 20); // 512 pages, sparse, on a 1 MiB file system
        closeSync(fd);
        const m = mapFile(process.env.FILE, { mode: 'write', sparse: true });
        const b = m.buffer;
        b[500 * 4096] = 0x55; // a page the file holds
        let p = 0;
        for (; p < 400; p++) { b[p * 4096] = 1; if (m.faulted) break; } // until tmpfs is full
        const kept = b[500 * 4096];
        const probe = Buffer.alloc(1);
        const rfd = openSync(process.env.FILE, 'r');
        b[500 * 4096] = 0x66;
        readSync(rfd, probe, 0, 1, 500 * 4096);
        let code = null;
        try { m.close(); } catch (e) { code = e.code; }
        process.stdout.write(JSON.stringify({ full: p, kept, onDisk: probe[0], code }));
        `,
        { FILE: path },
      );
      assertExitedCleanly(child);
      const r = JSON.parse(child.stdout);
      assert.ok(r.full < 400, `the file system filled at page ${r.full}`);
      assert.equal(r.kept, 0x55, 'a page the file holds still reads its data');
      assert.equal(r.onDisk, 0x66, 'and a write there still reaches the file');
      assert.equal(r.code, 'ERR_MEMMAP_TRUNCATED');
    });
  });

  it('a huge page the pool cannot supply reads as zeros instead of ending the process', {
    timeout: CHILD_TIMEOUT,
  }, async (t) => {
    const free = Number(/HugePages_Free:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
    if (free > 0) {
      t.skip(`this machine has ${free} free huge pages, so the pool would supply them`);
      return;
    }
    const child = await runModule(
      `
      const { mapAnonymous, faultStats } = await import(process.env.MEMMAP);
      let m;
      try { m = mapAnonymous(8 << 20, { hugePages: '2MB', noReserve: true }); }
      catch (e) { process.stdout.write(JSON.stringify({ refused: e.code })); process.exit(0); }
      const b = m.buffer;
      for (let i = 0; i < b.length; i += 4096) b[i] = 1;
      let sum = 0;
      for (let i = 0; i < b.length; i += 4096) sum += b[i];
      process.stdout.write(JSON.stringify({ sum, faulted: m.faulted, absorbed: faultStats().absorbed }));
      try { m.close(); } catch {}
      `,
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    if (r.refused) {
      t.skip(`this kernel refuses an unreserved huge-page mapping up front (${r.refused})`);
      return;
    }
    assert.equal(r.faulted, true);
    assert.equal(r.sum, (8 << 20) / 4096, 'writes into the repaired range read back');
    assert.ok(r.absorbed >= 1 && r.absorbed <= 4, `${r.absorbed} repairs`);
  });
});

describe('other signal handlers in the process', () => {
  it("process.on('SIGBUS') and off again leave the guard in charge of its own faults", {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const path = fileOf(4 * 4096);
    const child = await runModule(
      `
      const { truncateSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE);
      const listener = () => {};
      process.on('SIGBUS', listener);
      process.off('SIGBUS', listener);
      process.on('SIGSEGV', listener);
      process.off('SIGSEGV', listener);
      truncateSync(process.env.FILE, 4096);
      const value = m.buffer[3 * 4096];
      process.stdout.write(JSON.stringify({ value, faulted: m.faulted }));
      `,
      { FILE: path },
    );
    assertExitedCleanly(child);
    assert.deepEqual(JSON.parse(child.stdout), { value: 0, faulted: true });
  });

  it("with a process.on('SIGBUS') listener kept, memmap's faults are absorbed and kill() still reaches the listener", {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const path = fileOf(4 * 4096);
    const child = await runModule(
      `
      const { truncateSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE);
      let heard = 0;
      process.on('SIGBUS', () => { heard++; });
      truncateSync(process.env.FILE, 4096);
      const value = m.buffer[2 * 4096];
      process.kill(process.pid, 'SIGBUS');
      await new Promise((r) => setTimeout(r, 100));
      process.stdout.write(JSON.stringify({ value, faulted: m.faulted, heard }));
      process.exit(0);
      `,
      { FILE: path },
    );
    assertExitedCleanly(child);
    assert.deepEqual(JSON.parse(child.stdout), { value: 0, faulted: true, heard: 1 });
  });

  for (const order of ['after', 'before'] as const) {
    it(`a crash reporter installed ${order} memmap that chains to its previous handler: a foreign SIGBUS runs it once and ends the process by SIGBUS`, {
      timeout: CHILD_TIMEOUT,
    }, async () => {
      const path = fileOf(4 * 4096);
      const child = await runModule(
        `
        const { truncateSync } = await import('node:fs');
        const { createRequire } = await import('node:module');
        const fixture = createRequire(import.meta.url)(process.env.FIXTURE);
        ${order === 'before' ? 'fixture.installChainingHandler(false);' : ''}
        const { mapFile } = await import(process.env.MEMMAP);
        const first = mapFile(process.env.FILE);
        ${order === 'after' ? 'fixture.installChainingHandler(false);' : ''}
        const m = mapFile(process.env.FILE); // memmap goes back in front here
        truncateSync(process.env.FILE, 4096);
        const own = m.buffer[3 * 4096] + first.buffer[2 * 4096];
        process.stdout.write('own faults absorbed ' + own + ' ' + m.faulted + '\\n');
        fixture.faultOutside(process.env.OTHER);
        process.stdout.write('survived a foreign fault\\n');
        `,
        { FILE: path, OTHER: join(dir, `other${serial++}.bin`), FIXTURE: signalFixture(dir) },
      );
      assert.equal(child.signal, 'SIGBUS', `ended by ${child.signal}, status ${child.status}\n${child.stderr}`);
      const lines = child.stdout.trim().split('\n');
      assert.equal(lines[0], 'own faults absorbed 0 true');
      assert.equal(lines.filter((l) => l === 'chaining handler').length, 1, child.stdout);
      assert.ok(!child.stdout.includes('survived'));
    });
  }
});

describe('handlers that send a fault back', () => {
  /** Runs `setup` (fixture calls) around memmap's mappings, then a fault outside memmap. */
  const foreignFault = (setup: string) =>
    runModule(
      `
      const { createRequire } = await import('node:module');
      const fixture = createRequire(import.meta.url)(process.env.FIXTURE);
      const { mapFile } = await import(process.env.MEMMAP);
      const map = () => mapFile(process.env.FILE);
      ${setup}
      fixture.faultOutside(process.env.OTHER);
      process.stdout.write('survived a foreign fault\\n');
      `,
      { FILE: fileOf(4096), OTHER: join(dir, `other${serial++}.bin`), FIXTURE: signalFixture(dir) },
    );

  it('two chaining reporters installed at different times each run once, newest first', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const child = await foreignFault(
      'map(); fixture.installChainingHandler(false); map(); fixture.installSecondChainingHandler(); map();',
    );
    assert.equal(child.signal, 'SIGBUS', `ended by ${child.signal}, status ${child.status}\n${child.stderr}`);
    assert.deepEqual(child.stdout.trim().split('\n'), ['second chaining handler', 'chaining handler']);
  });

  it('a reporter that puts its predecessor back and returns runs once, and the process ends by SIGBUS', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const child = await foreignFault('map(); fixture.installRestoringHandler(false); map();');
    assert.equal(child.signal, 'SIGBUS', `ended by ${child.signal}, status ${child.status} (77: it looped)`);
    assert.deepEqual(child.stdout.trim().split('\n'), ['restoring handler']);
  });

  it('a prober that leaves its handler by siglongjmp recovers every time', { timeout: CHILD_TIMEOUT }, async () => {
    const child = await runModule(
      `
      const { createRequire } = await import('node:module');
      const fixture = createRequire(import.meta.url)(process.env.FIXTURE);
      const { mapFile } = await import(process.env.MEMMAP);
      mapFile(process.env.FILE);
      fixture.installProber();
      mapFile(process.env.FILE);
      const results = [];
      for (let i = 0; i < 5; i++) results.push(fixture.probe(process.env.DIR));
      process.stdout.write(JSON.stringify(results));
      `,
      { FILE: fileOf(4096), DIR: dir, FIXTURE: signalFixture(dir) },
    );
    assertExitedCleanly(child);
    assert.deepEqual(JSON.parse(child.stdout), [true, true, true, true, true]);
  });

  it("with a process.on('SIGBUS') listener, a foreign fault ends the process by SIGBUS instead of looping", {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const child = await foreignFault("process.on('SIGBUS', () => {}); map();");
    assert.equal(child.signal, 'SIGBUS', `ended by ${child.signal}, status ${child.status}`);
  });
});

describe('faults the kernel reports as EFAULT', () => {
  it('fs.writeSync of a truncated mapping fails with EFAULT, and faulted then says so', {
    timeout: CHILD_TIMEOUT,
  }, async () => {
    const path = fileOf(4 * 4096);
    const child = await runModule(
      `
      const { truncateSync, openSync, writeSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE);
      const b = m.buffer;
      truncateSync(process.env.FILE, 4096);
      let code = null;
      try { writeSync(openSync(process.env.OUT, 'w'), b, 2 * 4096, 4096); } catch (e) { code = e.code; }
      process.stdout.write(JSON.stringify({ code, faulted: m.faulted }));
      `,
      { FILE: path, OUT: join(dir, `efault${serial++}.out`) },
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.equal(r.code, 'EFAULT', 'the kernel failed the write (a file, which reads the buffer; /dev/null would not)');
    assert.equal(r.faulted, true);
  });
});

describe('remap() and resize() keep the flags the mapping was made with', () => {
  it('noReserve survives remap() and a resize() that maps anew', { timeout: CHILD_TIMEOUT }, async () => {
    const path = fileOf(4 * 4096);
    const child = await runModule(
      `
      const { readFileSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const flagsAt = (address) => {
        const lines = readFileSync('/proc/self/smaps', 'utf8').split('\\n');
        let inside = false;
        for (const line of lines) {
          const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
          if (range) inside = BigInt('0x' + range[1]) <= address && address < BigInt('0x' + range[2]);
          else if (inside && line.startsWith('VmFlags:')) return line.slice(8).trim().split(' ');
        }
        return [];
      };
      const m = mapFile(process.env.FILE, { mode: 'write', noReserve: true });
      const made = flagsAt(m.address).includes('nr');
      m.remap();
      const remapped = flagsAt(m.address).includes('nr');
      const held = m.buffer; // a view alive: resize maps anew
      m.resize(8 * 4096);
      const resized = flagsAt(m.address).includes('nr');
      process.stdout.write(JSON.stringify({ made, remapped, resized, detached: held.length }));
      m.close();
      `,
      { FILE: path },
    );
    assertExitedCleanly(child);
    assert.deepEqual(JSON.parse(child.stdout), { made: true, remapped: true, resized: true, detached: 0 });
  });
});
