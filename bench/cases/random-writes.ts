/**
 * Case 4, random writes: 8-byte writes at pseudo-random offsets into a file, through a shared
 * mapping and through fs.writeSync; the mapping's one flush at the end is timed on its own.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
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

const SEED = 88675123;

function timed(count: number, slots: number, body: (offset: number, value: number) => void): number {
  const next = xorshift32(SEED);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) body((next() % slots) * 8, i);
  return Number(process.hrtime.bigint() - start) / count;
}

function ms(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function randomWrites(ctx: Context, peers: Peers): Promise<CaseResult[]> {
  const size = ctx.quick ? 128 * 1024 ** 2 : 1024 ** 3;
  const count = ctx.quick ? 100_000 : 1_000_000;
  const path = dataFile(`writes-${size}.bin`, size);
  warm(path);
  const slots = size / 8;
  const eight = Buffer.alloc(8);
  const binary = compileC('random_write');
  ctx.log('random writes...');
  const samples: Record<string, number[]> = {};
  const flushes: Record<string, number[]> = {};
  const push = record;
  for (let rep = 0; rep < ctx.reps; rep++) {
    {
      using m = mapFile(path, { mode: 'write' });
      const b = m.buffer;
      push(
        samples,
        'memmap buffer.writeDoubleLE',
        timed(count, slots, (o, v) => b.writeDoubleLE(v, o)),
      );
      push(
        flushes,
        'memmap flush()',
        ms(() => m.flush()),
      );
    }
    const fd = openSync(path, 'r+');
    push(
      samples,
      'fs.writeSync 8 bytes',
      timed(count, slots, (o, v) => {
        eight.writeDoubleLE(v, 0);
        writeSync(fd, eight, 0, 8, o);
      }),
    );
    if (peers.mmapIo) {
      const mm = peers.mmapIo;
      const pb = mm.map(size, mm.PROT_READ | mm.PROT_WRITE, mm.MAP_SHARED, fd, 0);
      push(
        samples,
        '@riaskov/mmap-io writeDoubleLE',
        timed(count, slots, (o, v) => pb.writeDoubleLE(v, o)),
      );
      push(
        flushes,
        '@riaskov/mmap-io sync()',
        ms(() => mm.sync(pb, 0, size, true)),
      );
    }
    closeSync(fd);
    const c = runC<{ ns_per_op: number; flush_ms: number }>(binary, [path, String(count)]);
    push(samples, 'C pointer store (-O2)', c.ns_per_op);
    push(flushes, 'C msync(MS_SYNC)', c.flush_ms);
  }
  const rows: Row[] = Object.entries(samples).map(([subject, values]) => ({
    subject,
    kind: kindOf(subject),
    value: stats(values),
    unit: 'ns per write',
  }));
  const flushRows: Row[] = Object.entries(flushes).map(([subject, values]) => ({
    subject,
    kind: kindOf(subject),
    value: stats(values),
    unit: 'ms for one flush',
  }));
  const mb = size / 1024 ** 2;
  return [
    {
      id: 'random-writes',
      title: `Random writes: ${count.toLocaleString('en')} 8-byte writes into a ${mb >= 1024 ? `${mb / 1024} GiB` : `${mb} MiB`} file`,
      method: `${count.toLocaleString('en')} 8-byte writes at pseudo-random 8-aligned offsets (xorshift32, the same sequence in JavaScript and C) into a cached file: through a shared writable mapping, and with one fs.writeSync (pwrite) per write. The mappings' single flush at the end is timed separately below. ${ctx.reps} repetitions in alternation.`,
      lowerIsBetter: true,
      rows,
      goals: [
        goal(
          'memmap at least 10x faster than fs.writeSync before the flush',
          median(rows.find((r) => r.subject.startsWith('fs.'))) / median(rows[0]),
          'min',
          10,
        ),
      ],
      notes: [],
    },
    {
      id: 'random-writes-flush',
      title: 'Random writes: the one flush after them',
      method:
        'The time of the single msync(MS_SYNC) over the whole file that makes the mapped writes durable: what the mapping defers, which fs.writeSync pays only at its own fsync.',
      lowerIsBetter: true,
      rows: flushRows,
      goals: [],
      notes: [],
    },
  ];
}
