/**
 * protect() and the SIGSEGV side of the guard: a stray access that a page's protection forbids
 * is absorbed on memmap's own ranges and passed on everywhere else. The accesses run in child
 * processes, so that a crash fails the test instead of killing the runner.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mapAnonymous, mapFile, pageSize } from '../src/index.js';
import { assertExitedCleanly, assertThrowsCode, runModule, signalFixture, tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;

function fileOf(pages: number, fill = 5): string {
  const path = join(dir, `p${counter++}.bin`);
  writeFileSync(path, Buffer.alloc(pages * pageSize, fill));
  return path;
}

describe('protect', () => {
  it("a write after protect('read'): the process survives, the file is unchanged, faulted is set", async () => {
    const path = fileOf(3);
    const child = await runModule(
      `const { mapFile, faultStats } = await import(process.env.MEMMAP);
       const m = mapFile(process.env.FILE, { mode: 'write' });
       const b = m.buffer;
       b[0] = 1;                                       // allowed: the first page stays writable
       m.protect('read', { offset: 4096, length: 4096 });
       b[4096 + 10] = 9;                               // forbidden: absorbed
       const codes = [];
       for (const call of [() => m.flush(), () => m.buffer, () => m.close()]) {
         try { call(); codes.push('none'); } catch (e) { codes.push(e.code); }
       }
       process.stdout.write(JSON.stringify({ seen: b.length === 0 ? 'detached' : 'attached', faulted: m.faulted, codes, protection: faultStats().protection }));`,
      { FILE: path },
    );
    assertExitedCleanly(child);
    const result = JSON.parse(child.stdout) as { faulted: boolean; codes: string[]; protection: number };
    assert.equal(result.faulted, true);
    assert.deepEqual(result.codes, ['ERR_MEMMAP_PROTECTION', 'ERR_MEMMAP_PROTECTION', 'ERR_MEMMAP_PROTECTION']);
    assert.equal(result.protection, 1);
    const file = readFileSync(path);
    assert.equal(file[0], 1, 'the allowed write reached the file');
    assert.equal(file[4096 + 10], 5, 'the forbidden write did not');
  });

  it("a write into a 'read' mapping's Buffer no longer kills the process", async () => {
    const path = fileOf(1);
    const child = await runModule(
      `const { mapFile } = await import(process.env.MEMMAP);
       const m = mapFile(process.env.FILE);
       const b = m.buffer;
       b.write('stray', 100);
       process.stdout.write(b.toString('latin1', 100, 105) + ' ' + m.faulted);`,
      { FILE: path },
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, 'stray true', 'the write landed in the private copy');
    assert.equal(readFileSync(path)[100], 5);
  });

  it("'none' catches reads too; a worker thread's stray write is caught; remap() recovers", async () => {
    const path = fileOf(2);
    const child = await runModule(
      `import { Worker } from 'node:worker_threads';
       const { mapFile, mapAnonymous } = await import(process.env.MEMMAP);
       const anon = mapAnonymous(2 * 4096);
       const a = anon.buffer;
       a[5] = 3;
       anon.protect('none');
       const read = a[5];                              // absorbed: the copy keeps the data
       const m = mapFile(process.env.FILE, { mode: 'write' });
       const shared = m.sharedBuffer();
       m.protect('read');
       const worker = new Worker('import { workerData } from "node:worker_threads"; new Uint8Array(workerData)[7] = 1;', { eval: true, workerData: shared });
       await new Promise((done, fail) => worker.once('exit', done).once('error', fail));
       const workerFault = m.faulted;
       m.remap();
       process.stdout.write(JSON.stringify({ read, anon: anon.faulted, workerFault, after: m.faulted, byte: m.buffer[7] }));`,
      { FILE: path },
    );
    assertExitedCleanly(child);
    assert.deepEqual(JSON.parse(child.stdout), { read: 3, anon: true, workerFault: true, after: false, byte: 5 });
  });

  it("protect('readwrite') undoes 'read' before any stray access; errors have codes", () => {
    using m = mapFile(fileOf(2), { mode: 'write' });
    m.protect('read');
    m.protect('readwrite');
    m.buffer[0] = 2;
    assert.equal(m.faulted, false);
    using r = mapFile(fileOf(1));
    assert.throws(
      () => r.protect('readwrite'),
      (e: NodeJS.ErrnoException) => e.code === 'EACCES' && e.syscall === 'mprotect' && /open read-only/.test(e.message),
    );
    assertThrowsCode(() => m.protect('rwx' as 'read'), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.protect('read', { offset: 3 * pageSize }), 'ERR_MEMMAP_OUT_OF_RANGE');
    const closed = mapAnonymous(pageSize);
    closed.close();
    assertThrowsCode(() => closed.protect('read'), 'ERR_MEMMAP_CLOSED');
  });
});

describe("SIGSEGV that is not memmap's", () => {
  it('a protection fault at an address memmap does not own still ends the process by SIGSEGV', async () => {
    const child = await runModule(
      `import { createRequire } from 'node:module';
       const { mapAnonymous } = await import(process.env.MEMMAP);
       mapAnonymous(4096).protect('read');
       createRequire(import.meta.url)(process.env.FIXTURE).writeReadOnly();
       process.stdout.write('still alive');`,
      { FIXTURE: signalFixture(dir) },
    );
    assert.equal(child.signal, 'SIGSEGV');
    assert.equal(child.stdout, '');
  });

  it('a SIGSEGV handler installed before memmap loads still receives faults outside memmap', async () => {
    const child = await runModule(
      `import { createRequire } from 'node:module';
       const fixture = createRequire(import.meta.url)(process.env.FIXTURE);
       fixture.installHandler(true);
       const { mapAnonymous } = await import(process.env.MEMMAP);
       const m = mapAnonymous(4096);
       const b = m.buffer;
       m.protect('read');
       b[0] = 1;                                       // memmap's own: absorbed
       process.stdout.write(m.faulted ? 'absorbed\\n' : 'not absorbed\\n');
       fixture.writeReadOnly();                        // not memmap's: the fixture's handler exits 42`,
      { FIXTURE: signalFixture(dir) },
    );
    assert.equal(child.stdout, 'absorbed\nfixture handler\n');
    assert.equal(child.status, 42);
  });

  it('WebAssembly out-of-bounds accesses still trap as RuntimeError', async () => {
    const child = await runModule(
      `const { mapAnonymous } = await import(process.env.MEMMAP);
       mapAnonymous(4096).protect('read');
       // (func (export "load") (param i32) (result i32) (i32.load (local.get 0))), one page of memory
       const bytes = new Uint8Array([0,97,115,109,1,0,0,0,1,6,1,96,1,127,1,127,3,2,1,0,5,3,1,0,1,7,8,1,4,108,111,97,100,0,0,10,9,1,7,0,32,0,40,2,0,11]);
       const { instance } = await WebAssembly.instantiate(bytes);
       try { instance.exports.load(100000000); process.stdout.write('no trap'); }
       catch (e) { process.stdout.write(e.constructor.name); }`,
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, 'RuntimeError');
  });
});
