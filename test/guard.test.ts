/**
 * The crash guard: a file that shrinks under a mapping, signals that are not memmap's, and use
 * after close. Every dangerous step runs in a child process, so that a crash fails the test
 * instead of killing the runner.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertExitedCleanly, runModule, signalFixture, tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;

function fileOf(pages: number, fill = 7): string {
  const path = join(dir, `g${counter++}.bin`);
  writeFileSync(path, Buffer.alloc(pages * 4096, fill));
  return path;
}

function sigbusFixture(): string {
  return signalFixture(dir);
}

/** The child-side code that reads a truncated mapping in every way the issue names. */
const READ_EVERYTHING = `
  const { createHash } = await import('node:crypto');
  const b = m.buffer;
  let sum = 0;
  for (let i = 0; i < b.length; i += 4096) sum += b[i] + b[i + 4095];
  const doubles = new Float64Array(b.buffer, b.byteOffset, b.length / 8);
  let dsum = 0;
  for (let i = 0; i < doubles.length; i += 512) dsum += doubles[i];
  const found = b.indexOf(9);
  const text = b.toString('latin1').length;
  const hash = createHash('sha256').update(b).digest('hex').length;
`;

describe('a file truncated under a mapping', () => {
  for (const mode of ['read', 'write', 'copy']) {
    it(`mode '${mode}', truncated by this process: every read completes, faulted is set, close reports ERR_MEMMAP_TRUNCATED`, async () => {
      const child = await runModule(
        `
        const { truncateSync } = await import('node:fs');
        const { mapFile, faultStats } = await import(process.env.MEMMAP);
        const m = mapFile(process.env.FILE, { mode: '${mode}' });
        const before = faultStats().absorbed;
        truncateSync(process.env.FILE, 4096);
        ${READ_EVERYTHING}
        let flushCode = null;
        try { m.flush(); } catch (e) { flushCode = e.code; }
        let closeCode = null;
        const faulted = m.faulted;
        try { m.close(); } catch (e) { closeCode = e.code; }
        process.stdout.write(JSON.stringify({ sum, dsum, found, text, hash, faulted, flushCode, closeCode,
          absorbed: faultStats().absorbed - before, closed: m.closed }));
        `,
        { FILE: fileOf(5) },
      );
      assertExitedCleanly(child);
      const r = JSON.parse(child.stdout);
      assert.equal(r.sum, 14, 'the first page still holds 7s; the pages that are gone read as zeros');
      assert.equal(r.found, -1);
      assert.equal(r.text, 5 * 4096);
      assert.equal(r.hash, 64);
      assert.equal(r.faulted, true);
      assert.equal(r.flushCode, 'ERR_MEMMAP_TRUNCATED');
      assert.equal(r.closeCode, 'ERR_MEMMAP_TRUNCATED');
      assert.equal(r.closed, true);
      assert.equal(r.absorbed, 1, 'one repair covers every page past the new end of the file');
    });
  }

  it('truncated by another process, then written into: the writes complete, the file keeps its new size', async () => {
    const path = fileOf(4);
    const child = await runModule(
      `
      const { execFileSync } = await import('node:child_process');
      const { statSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE, { mode: 'write' });
      const b = m.buffer;
      execFileSync('truncate', ['-s', '100', process.env.FILE]);
      b.fill(1, 0, 4 * 4096);          // writes into the range that is gone
      b.writeDoubleLE(3.5, 3 * 4096);
      const codes = [];
      for (const call of [() => m.buffer, () => m.sharedBuffer(), () => m.flush()]) {
        try { call(); codes.push('none'); } catch (e) { codes.push(e.code); }
      }
      await m.flushAsync().catch((e) => codes.push(e.code));
      process.stdout.write(JSON.stringify({ codes, size: statSync(process.env.FILE).size, faulted: m.faulted }));
      try { m.close(); } catch {}
      `,
      { FILE: path },
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.deepEqual(r.codes, Array(4).fill('ERR_MEMMAP_TRUNCATED'));
    assert.equal(r.size, 100);
    assert.equal(r.faulted, true);
  });

  it('faulted and flush() report a write past the new end of the file that no fault caught (the last page stays mapped)', async () => {
    const child = await runModule(
      `
      const { truncateSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE, { mode: 'write' });
      const b = m.buffer;
      truncateSync(process.env.FILE, 4096 + 100);
      b.write('lost', 4096 + 200);          // same page as the new end: no SIGBUS
      const faultedBeforeFlush = m.faulted;
      let code = null;
      try { m.flush({ offset: 4096 + 200, length: 4 }); } catch (e) { code = e.code; }
      let earlier = null;
      try { m.flush({ offset: 0, length: 100 }); } catch (e) { earlier = e.code; }
      process.stdout.write(JSON.stringify({ faultedBeforeFlush, code, faulted: m.faulted, earlier }));
      try { m.close(); } catch {}
      `,
      { FILE: fileOf(2) },
    );
    assertExitedCleanly(child);
    assert.deepEqual(JSON.parse(child.stdout), {
      faultedBeforeFlush: true, // faulted compares the file's size with the mapping
      code: 'ERR_MEMMAP_TRUNCATED',
      faulted: true,
      earlier: 'ERR_MEMMAP_TRUNCATED',
    });
  });

  it('remap() maps the file at its current size and clears the fault; a growing file can be followed', async () => {
    const child = await runModule(
      `
      const { truncateSync, appendFileSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE);
      const old = m.buffer;
      truncateSync(process.env.FILE, 4096);
      void old[2 * 4096];
      const faultedBefore = m.faulted;
      m.remap();
      const afterShrink = [m.length, m.faulted, old.length, m.buffer[0]];
      appendFileSync(process.env.FILE, Buffer.alloc(5000, 3));
      m.remap();
      const afterGrow = [m.length, m.buffer[4096 + 4999]];
      m.close();
      process.stdout.write(JSON.stringify({ faultedBefore, afterShrink, afterGrow }));
      `,
      { FILE: fileOf(3) },
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.equal(r.faultedBefore, true);
    assert.deepEqual(r.afterShrink, [4096, false, 0, 7]);
    assert.deepEqual(r.afterGrow, [4096 + 5000, 3]);
  });

  it('a worker thread reading a SharedArrayBuffer survives the truncation too', async () => {
    const child = await runModule(
      `
      const { Worker } = await import('node:worker_threads');
      const { truncateSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE);
      const worker = new Worker(\`
        import { workerData, parentPort } from 'node:worker_threads';
        const bytes = new Uint8Array(workerData);
        parentPort.once('message', () => {
          let sum = 0;
          for (let i = 0; i < bytes.length; i++) sum += bytes[i];
          parentPort.postMessage(sum);
        });
      \`, { eval: true, workerData: m.sharedBuffer() });
      truncateSync(process.env.FILE, 4096);
      worker.postMessage('go');
      const sum = await new Promise((done) => worker.once('message', done));
      await worker.terminate();
      process.stdout.write(JSON.stringify({ sum, faulted: m.faulted }));
      `,
      { FILE: fileOf(4) },
    );
    assertExitedCleanly(child);
    assert.deepEqual(JSON.parse(child.stdout), { sum: 7 * 4096, faulted: true });
  });
});

describe('signals that are not memmap’s go where they went before', () => {
  it('process.kill(pid, SIGBUS) still ends the process by SIGBUS', async () => {
    const child = await runModule(
      `
      const { mapFile } = await import(process.env.MEMMAP);
      mapFile(process.env.FILE).buffer;
      process.kill(process.pid, 'SIGBUS');
      await new Promise((r) => setTimeout(r, 1000));
      process.stdout.write('still alive');
    `,
      { FILE: fileOf(1) },
    );
    assert.equal(child.signal, 'SIGBUS');
    assert.equal(child.stdout, '');
  });

  it('a fault at an address memmap does not own still ends the process by SIGBUS', async () => {
    const fixture = sigbusFixture();
    const child = await runModule(
      `
      import { createRequire } from 'node:module';
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE);
      void m.buffer[0];
      createRequire(import.meta.url)(process.env.FIXTURE).faultOutside(process.env.SCRATCH);
      process.stdout.write('still alive');
      `,
      { FILE: fileOf(1), FIXTURE: fixture, SCRATCH: join(dir, 'scratch.bin') },
    );
    assert.equal(child.signal, 'SIGBUS');
    assert.equal(child.stdout, '');
  });

  it('a SIGBUS handler installed before memmap loads still receives faults outside memmap', async () => {
    const fixture = sigbusFixture();
    const child = await runModule(
      `
      import { createRequire } from 'node:module';
      const fixture = createRequire(import.meta.url)(process.env.FIXTURE);
      fixture.installHandler();
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE);
      const { truncateSync } = await import('node:fs');
      truncateSync(process.env.FILE, 0);
      void m.buffer[100];                       // memmap's own fault: absorbed, not passed on
      process.stdout.write(m.faulted ? 'absorbed\\n' : 'not absorbed\\n');
      fixture.faultOutside(process.env.SCRATCH);  // not memmap's: the fixture's handler exits 42
      `,
      { FILE: fileOf(1), FIXTURE: fixture, SCRATCH: join(dir, 'scratch2.bin') },
    );
    assert.equal(child.signal, null, child.stderr);
    assert.equal(child.stdout, 'absorbed\nfixture handler\n');
    assert.equal(child.status, 42);
  });

  it('a handler installed after memmap loads is chained to when memmap maps its next file', async () => {
    const fixture = sigbusFixture();
    const child = await runModule(
      `
      import { createRequire } from 'node:module';
      const { mapFile } = await import(process.env.MEMMAP);
      const fixture = createRequire(import.meta.url)(process.env.FIXTURE);
      fixture.installHandler();                   // replaces memmap's handler
      const m = mapFile(process.env.FILE);        // memmap puts its own back, in front
      const { truncateSync } = await import('node:fs');
      truncateSync(process.env.FILE, 0);
      void m.buffer[100];
      process.stdout.write(m.faulted ? 'absorbed\\n' : 'not absorbed\\n');
      fixture.faultOutside(process.env.SCRATCH);  // passed on to the fixture's handler
      `,
      { FILE: fileOf(1), FIXTURE: fixture, SCRATCH: join(dir, 'scratch3.bin') },
    );
    assert.equal(child.signal, null, child.stderr);
    assert.equal(child.stdout, 'absorbed\nfixture handler\n');
    assert.equal(child.status, 42);
  });

  it("a process.on('SIGBUS') listener added before memmap loads still hears kill()", async () => {
    const child = await runModule(
      `
      process.on('SIGBUS', () => { process.stdout.write('listener'); process.exit(0); });
      const { mapFile } = await import(process.env.MEMMAP);
      mapFile(process.env.FILE).close();
      process.kill(process.pid, 'SIGBUS');
      await new Promise((r) => setTimeout(r, 5000));
    `,
      { FILE: fileOf(1) },
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, 'listener');
  });
});

describe('use after close', () => {
  it('every method throws ERR_MEMMAP_CLOSED and stale views read as empty or zero', async () => {
    const child = await runModule(
      `
      const { mapFile, mapAnonymous } = await import(process.env.MEMMAP);
      const codes = {};
      for (const make of [() => mapFile(process.env.FILE, { mode: 'write' }), () => mapAnonymous(8192, { shared: true })]) {
        const m = make();
        const buffer = m.buffer;
        const shared = new Uint8Array(m.sharedBuffer());
        const doubles = new Float64Array(m.sharedBuffer());
        m.close();
        const calls = {
          buffer: () => m.buffer, sharedBuffer: () => m.sharedBuffer(), flush: () => m.flush(),
          remap: () => m.remap(), flushRange: () => m.flush({ offset: 0, length: 1 }),
        };
        for (const [name, call] of Object.entries(calls)) {
          try { call(); codes[name] = 'none'; } catch (e) { codes[name] = e.code; }
        }
        codes.flushAsync = await m.flushAsync().then(() => 'none', (e) => e.code);
        codes.stale = [buffer.length, buffer[0], buffer.toString(), shared[0], doubles[5]];
        shared[10] = 1; doubles[3] = 2.5;   // writes to stale views land in throwaway memory
        let threw = false;
        try { buffer.fill(1); buffer.write('x'); buffer.readUInt8(0); } catch { threw = true; }
        codes.staleMethodsThrowOrNoop = threw || buffer.length === 0;
        m.close();
      }
      process.stdout.write(JSON.stringify(codes));
      `,
      { FILE: fileOf(2) },
    );
    assertExitedCleanly(child);
    const codes = JSON.parse(child.stdout);
    for (const name of ['buffer', 'sharedBuffer', 'flush', 'remap', 'flushRange', 'flushAsync']) {
      assert.equal(codes[name], 'ERR_MEMMAP_CLOSED', name);
    }
    assert.deepEqual(codes.stale, [0, null, '', 0, 0]);
    assert.equal(codes.staleMethodsThrowOrNoop, true);
  });

  it("a caller's valueOf that closes the mapping in the middle of a Buffer method does not crash", async () => {
    const child = await runModule(
      `
      const { mapFile } = await import(process.env.MEMMAP);
      const outcomes = [];
      const attacks = [
        (b, m) => b.fill({ valueOf() { m.close(); return 65; } }),
        (b, m) => b.fill(0, { valueOf() { m.close(); return 0; } }),
        (b, m) => b.write('hello', { valueOf() { m.close(); return 0; } }),
        (b, m) => b.copy(Buffer.alloc(8192), { valueOf() { m.close(); return 0; } }),
        (b, m) => Buffer.alloc(8192, 1).copy(b, 0, { valueOf() { m.close(); return 0; } }),
        (b, m) => b.indexOf(66, { valueOf() { m.close(); return 0; } }),
        (b, m) => b.toString('utf8', { valueOf() { m.close(); return 0; } }),
        (b, m) => b.writeInt32LE({ valueOf() { m.close(); return 1; } }, 0),
        (b, m) => b.set([1, 2, 3], { valueOf() { m.close(); return 0; } }),
      ];
      for (const attack of attacks) {
        const m = mapFile(process.env.FILE, { mode: 'write' });
        try { attack(m.buffer, m); outcomes.push('completed'); } catch (e) { outcomes.push('threw'); }
        outcomes.push(m.closed);
        m.close();
      }
      process.stdout.write(JSON.stringify(outcomes));
      `,
      { FILE: fileOf(2, 0x61) },
    );
    assertExitedCleanly(child);
    const outcomes = JSON.parse(child.stdout) as unknown[];
    assert.equal(outcomes.length, 18, 'every attack ran to an outcome');
    // fill() converts its value after taking the bounds: the attack really closed the mapping
    // under a running Buffer method, and the process lived on.
    assert.equal(outcomes[1], true);
    assert.ok(outcomes.filter((closed, i) => i % 2 === 1 && closed === true).length >= 3);
  });

  it('a worker reading a SharedArrayBuffer in a loop while the main thread closes keeps running', async () => {
    const child = await runModule(
      `
      const { Worker } = await import('node:worker_threads');
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE);
      const stop = new Int32Array(new SharedArrayBuffer(4));
      // The worker says when it has read the file once, so the close always comes after (a
      // loaded machine, or AddressSanitizer, can take longer than any fixed delay to start it).
      const worker = new Worker(\`
        import { workerData, parentPort } from 'node:worker_threads';
        const bytes = new Uint8Array(workerData.shared);
        let rounds = 0, zeroRounds = 0;
        while (Atomics.load(workerData.stop, 0) === 0) {
          let sum = 0;
          for (let i = 0; i < bytes.length; i += 64) sum += bytes[i];
          rounds++;
          if (sum === 0) zeroRounds++;
          if (rounds === 1) parentPort.postMessage('reading');
        }
        parentPort.postMessage({ rounds, zeroRounds });
      \`, { eval: true, workerData: { shared: m.sharedBuffer(), stop } });
      const messages = [];
      const next = () => new Promise((done) => worker.once('message', done));
      messages.push(await next());
      m.close();
      await new Promise((r) => setTimeout(r, 100));
      Atomics.store(stop, 0, 1);
      const result = await next();
      process.stdout.write(JSON.stringify({ ...result, first: messages[0] }));
      `,
      { FILE: fileOf(16) },
    );
    assertExitedCleanly(child);
    const r = JSON.parse(child.stdout);
    assert.ok(r.rounds > 0);
    assert.ok(r.zeroRounds > 0, 'after close the worker reads zeros');
    assert.equal(r.first, 'reading');
    assert.ok(r.zeroRounds < r.rounds, 'before close it read the file');
  });
});
