/**
 * Case 1, random reads: page-aligned 4 KiB records at pseudo-random offsets of a cached file,
 * (a) reading 8 bytes of each and (b) copying each out.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { mapFile } from '../../src/index.js';
import {
  type CaseResult,
  type Context,
  compileC,
  dataFile,
  goal,
  kindOf,
  median,
  type Row,
  record,
  runC,
  stats,
  warm,
  xorshift32,
} from '../lib/harness.js';
import type { Peers } from '../lib/peers.js';

const RECORD = 4096;
const SEED = 2463534242;

/** Nanoseconds per record since `start`; uses `check` so the loop cannot be optimised away. */
function finish(start: bigint, count: number, check: number): number {
  const ns = Number(process.hrtime.bigint() - start) / count;
  if (check === Number.MIN_VALUE) process.stdout.write('');
  return ns;
}

export async function randomReads(ctx: Context, peers: Peers): Promise<CaseResult[]> {
  const size = ctx.quick ? 256 * 1024 ** 2 : 4 * 1024 ** 3;
  const count = ctx.quick ? 100_000 : 1_000_000;
  const path = dataFile(`random-${size}.bin`, size);
  warm(path);
  const pages = size / RECORD;
  const out = Buffer.alloc(RECORD);
  const eight = Buffer.alloc(8);
  const fd = openSync(path, 'r');
  using mapping = mapFile(path, { populate: true });
  const b = mapping.buffer;

  // The peer's 32-bit sizes: it maps at most a little under 2 GiB.
  let peerBuffer: Buffer | null = null;
  let peerNote = 'not installed';
  let peerPages = pages;
  if (peers.mmapIo) {
    const mm = peers.mmapIo;
    for (const attempt of [size, 2 ** 31 - RECORD, 2 ** 30]) {
      if (attempt > size) continue;
      try {
        peerBuffer = mm.map(attempt, mm.PROT_READ, mm.MAP_SHARED, fd, 0);
        peerPages = attempt / RECORD;
        peerNote =
          attempt === size
            ? 'maps the whole file'
            : `cannot map ${size / 1024 ** 3} GiB (its sizes are 32-bit); measured over its largest mapping, ${(attempt / 1024 ** 3).toFixed(2)} GiB`;
        break;
      } catch (error) {
        peerNote = `map(${attempt}) failed: ${(error as Error).message}`;
      }
    }
  }

  // Each subject has its own loop, written as a user would: one call site per subject, so
  // that no subject pays for another's shape at a shared call.
  const views = new Float64Array(b.buffer, b.byteOffset, b.length / 8);
  // Page counts are powers of two, so a mask picks the same records as the C reference's
  // modulo, in integer arithmetic (a uint32 above 2^31 would make % a floating-point fmod).
  const mask = pages - 1;
  const eights = new Float64Array(eight.buffer, eight.byteOffset, 1);
  const subjects: Record<'read8' | 'copy', Record<string, () => number>> = {
    read8: {
      'memmap Float64Array view': () => {
        const next = xorshift32(SEED);
        let check = 0;
        const start = process.hrtime.bigint();
        for (let i = 0; i < count; i++) check += views[(next() & mask) * (RECORD / 8)] as number;
        return finish(start, count, check);
      },
      'fs.readSync 8 bytes': () => {
        const next = xorshift32(SEED);
        let check = 0;
        const start = process.hrtime.bigint();
        for (let i = 0; i < count; i++) {
          readSync(fd, eight, 0, 8, (next() & mask) * RECORD);
          check += eights[0] as number;
        }
        return finish(start, count, check);
      },
      // The natural loop a user writes: the getter on every read. It checks that the mapping
      // is open and has not faulted (a memory read), then returns the same Buffer.
      'memmap mapping.buffer[i] (getter on every read)': () => {
        const next = xorshift32(SEED);
        let check = 0;
        const start = process.hrtime.bigint();
        for (let i = 0; i < count; i++) check += mapping.buffer[(next() & mask) * RECORD] as number;
        return finish(start, count, check);
      },
      'memmap held Buffer b[i]': () => {
        const next = xorshift32(SEED);
        let check = 0;
        const start = process.hrtime.bigint();
        for (let i = 0; i < count; i++) check += b[(next() & mask) * RECORD] as number;
        return finish(start, count, check);
      },
    },
    copy: {
      'memmap buffer.copy 4 KiB': () => {
        const next = xorshift32(SEED);
        let check = 0;
        const start = process.hrtime.bigint();
        for (let i = 0; i < count; i++) {
          const o = (next() & mask) * RECORD;
          b.copy(out, 0, o, o + RECORD);
          check += out[i & 4095] as number;
        }
        return finish(start, count, check);
      },
      'fs.readSync 4 KiB': () => {
        const next = xorshift32(SEED);
        let check = 0;
        const start = process.hrtime.bigint();
        for (let i = 0; i < count; i++) {
          readSync(fd, out, 0, RECORD, (next() & mask) * RECORD);
          check += out[i & 4095] as number;
        }
        return finish(start, count, check);
      },
    },
  };
  if (peerBuffer) {
    const pb = peerBuffer;
    const peerViews = new Float64Array(pb.buffer, pb.byteOffset, pb.length / 8);
    // The peer's largest mapping may not be a power-of-two number of pages: round down.
    const peerMask = 2 ** Math.floor(Math.log2(peerPages)) - 1;
    subjects.read8['@riaskov/mmap-io Float64Array view'] = () => {
      const next = xorshift32(SEED);
      let check = 0;
      const start = process.hrtime.bigint();
      for (let i = 0; i < count; i++) check += peerViews[(next() & peerMask) * (RECORD / 8)] as number;
      return finish(start, count, check);
    };
    subjects.copy['@riaskov/mmap-io copy 4 KiB'] = () => {
      const next = xorshift32(SEED);
      let check = 0;
      const start = process.hrtime.bigint();
      for (let i = 0; i < count; i++) {
        const o = (next() & peerMask) * RECORD;
        pb.copy(out, 0, o, o + RECORD);
        check += out[i & 4095] as number;
      }
      return finish(start, count, check);
    };
  }

  const binary = compileC('random_read');
  const results: CaseResult[] = [];
  for (const mode of ['read8', 'copy'] as const) {
    ctx.log(`random reads (${mode})...`);
    const samples: Record<string, number[]> = {};
    const c: number[] = [];
    // Subjects in alternation, repetition by repetition, so that a slow moment of this shared
    // machine lands on all of them alike.
    // One unrecorded round first, so that every subject's loop is compiled before it is timed.
    for (const run of Object.values(subjects[mode])) run();
    for (let rep = 0; rep < ctx.reps; rep++) {
      for (const [name, run] of Object.entries(subjects[mode])) record(samples, name, run());
      c.push(runC<{ ns_per_op: number }>(binary, [path, String(count), mode]).ns_per_op);
    }
    const rows: Row[] = Object.entries(samples).map(([subject, values]) => ({
      subject,
      kind: kindOf(subject),
      value: stats(values),
      unit: 'ns per record',
      ...(subject.startsWith('@') ? { note: peerNote } : {}),
    }));
    if (!peerBuffer)
      rows.push({ subject: '@riaskov/mmap-io', kind: 'peer', value: null, unit: 'ns per record', note: peerNote });
    rows.push({
      subject: mode === 'read8' ? 'C pointer read (-O2)' : 'C memcpy 4 KiB (-O2)',
      kind: 'c',
      value: stats(c),
      unit: 'ns per record',
    });
    const memmap = median(rows[0]);
    const fs = median(rows[1]);
    const cFigure = median(rows[rows.length - 1]);
    const getter = median(rows.find((r) => r.subject.includes('getter')));
    const held = median(rows.find((r) => r.subject.includes('held Buffer')));
    const goals =
      mode === 'read8'
        ? [
            goal('memmap at least 10x faster than fs.readSync', fs / memmap, 'min', 10),
            goal('memmap within 3x of C pointer access', memmap / cFigure, 'max', 3),
            goal('mapping.buffer[i] within 2x of a held Buffer b[i]', getter / held, 'max', 2),
          ]
        : [goal('memmap at least 2.5x faster than fs.readSync', fs / memmap, 'min', 2.5)];
    results.push({
      id: `random-reads-${mode}`,
      title: `Random ${mode === 'read8' ? '8-byte reads' : '4 KiB copies'}: ${count.toLocaleString('en')} records of a ${size / 1024 ** 3} GiB cached file`,
      method: `${count.toLocaleString('en')} page-aligned 4 KiB records at pseudo-random offsets (xorshift32, the same sequence in JavaScript and C) of a ${size / 1024 ** 3} GiB file in the page cache; ${
        mode === 'read8' ? 'reading 8 bytes of each' : 'copying each record into a 4 KiB buffer'
      }. memmap and C map the file with MAP_POPULATE; fs.readSync issues one pread per record. ${ctx.reps} repetitions in alternation.`,
      lowerIsBetter: true,
      rows,
      goals,
      notes: peerBuffer ? [`@riaskov/mmap-io: ${peerNote}`] : [],
    });
  }
  closeSync(fd);
  return results;
}
