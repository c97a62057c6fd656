/**
 * The 'fault' event: the guard wakes the event loop after a fault it absorbed, and the mapping
 * tells its listeners what happened first (kind, access, offset, time) without waiting for the
 * next call on it. Every case runs in a child process.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mapAnonymous } from '../src/index.js';
import { assertExitedCleanly, assertThrowsCode, runModule, tempDir } from './helpers/index.js';

const dir = tempDir();
let serial = 0;

function fileOf(bytes: number): string {
  const path = join(dir, `fe${serial++}.bin`);
  writeFileSync(path, Buffer.alloc(bytes, 7));
  return path;
}

async function child(source: string, env: Record<string, string>): Promise<Record<string, unknown>> {
  const result = await runModule(
    `
    const { mapFile, mapAnonymous } = await import(process.env.MEMMAP);
    const { truncateSync } = await import('node:fs');
    const out = {};
    ${source}
    process.stdout.write(JSON.stringify(out));
    `,
    env,
  );
  assertExitedCleanly(result);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

describe("the 'fault' event", () => {
  it('a read past a truncation: reported within a turn, with no call on the mapping, then named by the next error', async () => {
    const out = await child(
      `
      const m = mapFile(process.env.FILE);
      const b = m.buffer;
      const events = [];
      m.on('fault', (f) => events.push(f));
      truncateSync(process.env.FILE, 4096);
      const before = Date.now();
      out.byte = b[20000];
      const after = Date.now();
      // Only a timer after the fault: no call on the mapping, so only the guard's wake-up
      // can bring the event.
      await new Promise((r) => setTimeout(r, 200));
      out.events = events;
      out.inTime = events.length === 1 && events[0].time >= before - 1 && events[0].time <= after + 1;
      try { m.flush(); } catch (e) { out.code = e.code; out.message = e.message; }
      try { m.close(); } catch {}
      `,
      { FILE: fileOf(65536) },
    );
    assert.equal(out.byte, 0);
    assert.deepEqual(
      (out.events as { kind: string; access: string; offset: number; count: number }[]).map(
        ({ kind, access, offset, count }) => ({ kind, access, offset, count }),
      ),
      [{ kind: 'truncated', access: 'read', offset: 20000, count: 1 }],
    );
    assert.equal(out.inTime, true, 'the time is when the fault happened');
    assert.equal(out.code, 'ERR_MEMMAP_TRUNCATED');
    assert.match(out.message as string, /first a read at offset 20000 of a page the file no longer has/);
  });

  it("a write into a 'read' mapping at an unaligned offset: 'protection', 'write', the offset in the mapping", async () => {
    const out = await child(
      `
      const m = mapFile(process.env.FILE, { offset: 100, length: 8000 });
      const events = [];
      m.on('fault', (f) => events.push(f));
      m.buffer[4000] = 1;
      await new Promise((r) => setTimeout(r, 200));
      out.events = events.map(({ kind, access, offset, count }) => ({ kind, access, offset, count }));
      try { m.close(); } catch (e) { out.code = e.code; out.message = e.message; }
      `,
      { FILE: fileOf(16384) },
    );
    assert.deepEqual(out.events, [{ kind: 'protection', access: 'write', offset: 4000, count: 1 }]);
    assert.equal(out.code, 'ERR_MEMMAP_PROTECTION');
    assert.match(out.message as string, /first a write at offset 4000 into a read-only mapping/);
  });

  it('ten mappings faulting one per turn: each listener once, with its own fault; once and off', async () => {
    const out = await child(
      `
      const events = [];
      let onceCalls = 0;
      const removed = () => events.push('removed listener called');
      const maps = [];
      for (let i = 0; i < 10; i++) {
        const m = mapAnonymous(4 * 4096);
        m.protect('read');
        m.on('fault', (f) => events.push(i + ':' + f.access + ':' + f.offset + ':' + f.count));
        if (i === 0) {
          m.once('fault', () => onceCalls++);
          m.on('fault', removed);
          m.off('fault', removed);
        }
        maps.push(m);
      }
      for (let i = 0; i < 10; i++) {
        // A thousand stray writes each: the first faults, the rest land on the private copy.
        const b = maps[i].buffer;
        for (let j = 0; j < 1000; j++) b[(i * 100 + j * 13) % (4 * 4096)] = 1;
        await new Promise((r) => setTimeout(r, 20));
      }
      // Copied before close(), which reports what was not reported yet.
      out.events = [...events];
      out.onceCalls = onceCalls;
      out.codes = maps.map((m) => { try { m.close(); return 'ok'; } catch (e) { return e.code; } });
      `,
      {},
    );
    assert.deepEqual(
      out.events,
      Array.from({ length: 10 }, (_, i) => `${i}:write:${i * 100}:1`),
    );
    assert.equal(out.onceCalls, 1);
    assert.deepEqual(out.codes, Array(10).fill('ERR_MEMMAP_PROTECTION'));
  });

  it('a listener that throws, on and once of one function, a late listener, remap() after faulted, close() inside', async () => {
    const out = await child(
      `
      const uncaught = [];
      process.on('uncaughtException', (e) => uncaught.push(e.message));
      const m = mapFile(process.env.FILE, { mode: 'write' });
      const b = m.buffer;
      const heard = [];
      const f = () => heard.push('f');
      m.on('fault', () => { throw new Error('listener failed'); });
      m.on('fault', f);
      m.once('fault', f);
      m.on('fault', () => heard.push('after the thrower'));
      truncateSync(process.env.FILE, 4096);
      void b[40000];
      await new Promise((r) => setTimeout(r, 100));
      out.first = [...heard];
      // A listener added now hears of the fault that came before it.
      m.on('fault', (e) => heard.push('late ' + e.offset));
      await new Promise((r) => setTimeout(r, 20));
      out.late = heard.at(-1);
      // remap() clears the fault; a new fault after it is reported again.
      m.remap();
      const c = m.buffer;
      truncateSync(process.env.FILE, 0);
      void c[100];
      await new Promise((r) => setTimeout(r, 100));
      out.afterRemap = heard.slice(out.first.length + 1);
      // close() while a listener throws: the close still releases everything.
      const n = mapFile(process.env.FILE2);
      n.on('fault', () => { throw new Error('in close'); });
      const nb = n.buffer;
      truncateSync(process.env.FILE2, 0);
      void nb[5];
      try { n.close(); } catch (e) { out.closeCode = e.code; }
      out.closed = n.closed;
      try { m.close(); } catch {}
      await new Promise((r) => setTimeout(r, 20));
      out.uncaught = uncaught;
      `,
      { FILE: fileOf(65536), FILE2: fileOf(8192) },
    );
    assert.deepEqual(
      out.first,
      ['f', 'f', 'after the thrower'],
      'on and once of f both heard it; the thrower stopped no one',
    );
    assert.equal(out.late, 'late 40000');
    assert.deepEqual(
      out.afterRemap,
      ['f', 'after the thrower', 'late 100'],
      'the once entry went; the rest hear the new fault',
    );
    assert.equal(out.closeCode, 'ERR_MEMMAP_TRUNCATED');
    assert.equal(out.closed, true);
    assert.ok(
      (out.uncaught as string[]).includes('listener failed') && (out.uncaught as string[]).includes('in close'),
    );
  });

  it('in a worker thread: the listener hears of the fault when the mapping next notices it', async () => {
    const out = await child(
      `
      const { Worker } = await import('node:worker_threads');
      const source = 'import(process.env.MEMMAP).then(async ({ mapFile }) => {' +
        'const { parentPort } = await import("node:worker_threads");' +
        'const m = mapFile(process.env.FILE); const got = [];' +
        'm.on("fault", (f) => got.push(f.kind + " " + f.access + " " + f.offset));' +
        'm.buffer[10] = 1; void m.faulted; await new Promise((r) => setTimeout(r, 20));' +
        'parentPort.postMessage(got); });';
      const w = new Worker(source, { eval: true });
      out.got = await new Promise((r) => w.once('message', r));
      await w.terminate();
      `,
      { FILE: fileOf(8192) },
    );
    assert.deepEqual(out.got, ['protection write 10']);
  });

  it('bad arguments have codes', () => {
    using m = mapAnonymous(4096);
    assertThrowsCode(() => m.on('faults' as 'fault', () => {}), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.on('fault', 'f' as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => m.off('close' as 'fault', () => {}), 'ERR_INVALID_ARG_VALUE');
  });
});
