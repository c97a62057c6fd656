/**
 * Case 5, open and close: map a whole 1 GiB file, read one byte, unmap, many times; then a
 * long run that checks nothing is left behind.
 */
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { mapFile } from '../../src/index.js';
import {
  type CaseResult,
  type Context,
  compileC,
  dataFile,
  goal,
  kindOf,
  median,
  procFigure,
  type Row,
  record,
  root,
  runC,
  stats,
} from '../lib/harness.js';
import type { Peers } from '../lib/peers.js';

function perOp(count: number, body: (i: number) => number): number {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) sink += body(i);
  const ns = Number(process.hrtime.bigint() - start) / count;
  // Using the result keeps the loop from being optimised away; the value never matches.
  if (sink === Number.MIN_VALUE) process.stdout.write('');
  return ns;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setImmediate(r));
  }
}

export async function openClose(ctx: Context, peers: Peers): Promise<CaseResult[]> {
  const fileSize = ctx.quick ? 128 * 1024 ** 2 : 1024 ** 3;
  const count = ctx.quick ? 10_000 : 100_000;
  // Through buffer each cycle pays for a full collection (see the notes), about 10 ms over a
  // 1 GiB file: a thousand cycles give a steady figure.
  const viaBufferCount = 1000;
  const path = dataFile(`scan-${fileSize}.bin`, fileSize);
  const binary = compileC('open_close');
  ctx.log('open and close...');
  const samples: Record<string, number[]> = {};
  const push = (name: string, value: number) => record(samples, name, value);
  const page = (i: number) => (i * 4096) % fileSize;
  for (let rep = 0; rep < ctx.reps; rep++) {
    // A tenth of the cycles: each one costs a garbage collection (see the note below).
    push(
      'memmap mapFile + read a byte + close',
      perOp(viaBufferCount, (i) => {
        const m = mapFile(path);
        const byte = m.buffer[page(i)] as number;
        m.close();
        return byte;
      }),
    );
    push(
      'memmap mapFile + read a byte through sharedBuffer() + close',
      perOp(count, (i) => {
        const m = mapFile(path);
        const byte = new Uint8Array(m.sharedBuffer())[page(i)] as number;
        m.close();
        return byte;
      }),
    );
    const c = runC<{ mmap_munmap_ns: number; full_ns: number }>(binary, [path, String(count)]);
    push('C mmap + read + munmap, file kept open', c.mmap_munmap_ns);
    push('C open + fstat + mmap + read + munmap + close', c.full_ns);
    if (peers.mmapIo) {
      // The peer cannot unmap: its mappings go when the garbage collector frees their Buffers.
      // Fewer rounds, so that a run does not exhaust the address space before it does.
      const mm = peers.mmapIo;
      push(
        '@riaskov/mmap-io open + map + read (no unmap)',
        perOp(Math.min(count, 10_000), (i) => {
          const fd = openSync(path, 'r');
          const b = mm.map(fileSize, mm.PROT_READ, mm.MAP_SHARED, fd, 0);
          closeSync(fd);
          return b[page(i)] as number;
        }),
      );
      await settle();
    }
  }
  const rows: Row[] = Object.entries(samples).map(([subject, values]) => ({
    subject,
    kind: kindOf(subject),
    value: stats(values),
    unit: 'µs per cycle',
  }));
  for (const row of rows) {
    if (row.value) row.value = stats(row.value.samples.map((ns) => ns / 1000));
  }

  // The long run: a million cycles (a hundred thousand with --quick), then descriptors,
  // memmap's own count of mapped regions, and mappings of the file, against the start.
  const cycles = ctx.quick ? 100_000 : 1_000_000;
  const core = createRequire(import.meta.url)(join(root, 'build', 'Release', 'memmap.node')) as {
    regionCounts(): [number, number, number, number, number];
  };
  const snapshot = async () => {
    await settle();
    return {
      fds: readdirSync('/proc/self/fd').length,
      // Regions alive, bytes mapped, stand-in bytes, stand-ins (the fifth figure only grows).
      regions: core.regionCounts().slice(0, 4).join('/'),
      fileMappings: readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .filter((l) => l.includes(path)).length,
      rssAnonMiB: Math.round(procFigure('self', 'status', 'RssAnon') / 1024 ** 2),
    };
  };
  const before = await snapshot();
  const started = process.hrtime.bigint();
  for (let i = 0; i < cycles; i++) {
    // A page of the file at a time, through a Buffer: the detach, stand-in and retire path.
    const m = mapFile(path, { offset: page(i), length: 4096 });
    void m.buffer[i & 4095];
    m.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = await snapshot();
  const clean = before.fds === after.fds && before.regions === after.regions && after.fileMappings === 0;

  const viaBuffer = median(rows[0]);
  const viaShared = median(rows[1]);
  const bare = median(rows.find((r) => r.subject.startsWith('C mmap')));
  return [
    {
      id: 'open-close',
      title: `Open and close: map a ${fileSize / 1024 ** 3} GiB file, read one byte, unmap`,
      method: `${count.toLocaleString('en')} cycles per repetition (${viaBufferCount.toLocaleString('en')} through buffer) of mapping the whole file, reading one byte of a different page each time, and unmapping. memmap's cycle includes what the file path costs (open, fstat, close) and its bookkeeping (fault-guard registration, Buffer, detach); the C references show the bare mmap + munmap pair on a file kept open, and the same with open, fstat and close. ${ctx.reps} repetitions in alternation.`,
      lowerIsBetter: true,
      rows,
      goals: [
        goal('memmap (read through sharedBuffer()) within 2.5x of C mmap + munmap', viaShared / bare, 'max', 2.5),
        goal('memmap (read through buffer) within 2.5x of C mmap + munmap', viaBuffer / bare, 'max', 2.5),
      ],
      notes: [
        `Why buffer costs more here: V8 adds the byte length of every non-shared ArrayBuffer to its external-memory counter, as if the bytes had been allocated for it, and starts incremental marking when that counter has grown by 64 MiB since the last full collection (--trace-incremental-marking says "Start (external memory pressure)"). Each Buffer over a ${fileSize / 1024 ** 3} GiB mapping is such a rise, so the cycle pays for a Mark-Compact most times. Taking the length off the counter around the view with napi_adjust_external_memory does not help (tried: the counter still rises by the view's length when the ArrayBuffer is made, and collections were no fewer). A SharedArrayBuffer is not counted that way. So: keep a mapping's buffer for the life of the mapping, map only the range you need (64 MiB or less), or read through sharedBuffer() when you open and close large files in a loop.`,
        `Long run: ${cycles.toLocaleString('en')} cycles of mapping one page of the file, reading it through buffer and closing, in ${seconds.toFixed(1)} s; before → after: open descriptors ${before.fds} → ${after.fds}, memmap regions/bytes mapped ${before.regions} → ${after.regions}, mappings of the file ${before.fileMappings} → ${after.fileMappings}: ${clean ? 'nothing left behind' : 'SOMETHING WAS LEFT BEHIND'}. Anonymous memory (RssAnon) ${before.rssAnonMiB} → ${after.rssAnonMiB} MiB: Node-API runs finalizers only between turns of the event loop, so one synchronous loop of a million cycles holds a million finalizer records (a few hundred bytes each) until it ends; the allocator keeps that memory for reuse. test/lifetime.test.ts checks that with turns of the event loop in between it levels off.`,
      ],
    },
  ];
}
