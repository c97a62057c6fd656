/**
 * Case 2, sequential scan: the byte sum of a cached file, each subject in a fresh process so
 * that its time and its anonymous memory are its own.
 */
import {
  type CaseResult,
  type Context,
  compileC,
  dataFile,
  goal,
  median,
  type Row,
  record,
  runC,
  runChild,
  stats,
  warm,
} from '../lib/harness.js';
import type { Peers } from '../lib/peers.js';

interface Scan {
  seconds: number;
  sum: number;
  rssAnon: number;
}

export async function sequentialScan(ctx: Context, peers: Peers): Promise<CaseResult[]> {
  const size = ctx.quick ? 128 * 1024 ** 2 : 1024 ** 3;
  const path = dataFile(`scan-${size}.bin`, size);
  warm(path);
  const gib = size / 1024 ** 3;
  const subjects: [string, Row['kind'], string][] = [
    ['memmap checksum (map + native sum)', 'memmap', 'memmap'],
    ['memmap map + JavaScript loop', 'memmap', 'memmap-js-loop'],
    ['fs.readFileSync + JavaScript loop', 'node', 'readFileSync'],
    ['fs.readSync 1 MiB chunks + loop', 'node', 'readSync-1MiB'],
  ];
  if (peers.mmapIo) subjects.push(['@riaskov/mmap-io map + JavaScript loop', 'peer', 'peer']);
  const o2 = compileC('checksum');
  const o3 = compileC('checksum', ['-O3', '-march=native']);

  ctx.log('sequential scan...');
  const seconds: Record<string, number[]> = {};
  const anon: Record<string, number[]> = {};
  const sums = new Set<number>();
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const [name, , variant] of subjects) {
      const scan = runChild<Scan>('scan', [variant, path]);
      record(seconds, name, scan.seconds);
      record(anon, name, scan.rssAnon);
      sums.add(scan.sum);
    }
    for (const [name, binary] of [
      ['C mmap + byte loop (-O2)', o2],
      ['C mmap + byte loop (-O3 -march=native)', o3],
    ] as const) {
      const result = runC<{ seconds: number; sum: number }>(binary, [path]);
      record(seconds, name, result.seconds);
      sums.add(result.sum);
    }
  }
  if (sums.size !== 1) throw new Error(`the subjects disagree on the sum: ${[...sums].join(', ')}`);

  const throughput = (name: string): Row => {
    const values = (seconds[name] ?? []).map((s) => size / s / 1e9);
    const kind: Row['kind'] = name.startsWith('C ') ? 'c' : (subjects.find(([n]) => n === name)?.[1] ?? 'node');
    return { subject: name, kind, value: stats(values), unit: 'GB/s' };
  };
  const rows = Object.keys(seconds).map(throughput);
  const memoryRows: Row[] = Object.entries(anon).map(([name, values]) => ({
    subject: name,
    kind: subjects.find(([n]) => n === name)?.[1] ?? 'node',
    value: stats(values.map((v) => v / 1024 ** 2)),
    unit: 'MiB anonymous memory (RssAnon)',
  }));
  const by = (name: string) => rows.find((r) => r.subject === name);
  const mem = (name: string) => memoryRows.find((r) => r.subject === name);
  const memmap = median(by('memmap checksum (map + native sum)'));
  return [
    {
      id: 'sequential-scan',
      title: `Sequential scan: byte sum of a ${gib} GiB cached file`,
      method: `Every byte of a ${gib} GiB file in the page cache added into one total, each subject in a fresh process (start-up not counted; opening, mapping or reading counted). memmap checksum is what \`memmap checksum\` runs: a read-only mapping with sequential advice and a vectorised native sum. The C programs are the classic mmap + MAP_POPULATE + byte loop. All subjects agree on the sum. ${ctx.reps} repetitions in alternation.`,
      lowerIsBetter: false,
      rows,
      goals: [
        goal(
          'memmap checksum at least 4x faster than readFileSync + JavaScript loop',
          memmap / median(by('fs.readFileSync + JavaScript loop')),
          'min',
          4,
        ),
        goal(
          'memmap checksum at least as fast as the C -O2 program',
          memmap / median(by('C mmap + byte loop (-O2)')),
          'min',
          1,
        ),
      ],
      notes: [],
    },
    {
      id: 'sequential-scan-memory',
      title: `Sequential scan: anonymous memory (RssAnon) while scanning ${gib} GiB`,
      method:
        'RssAnon of each scanning process at the end of its scan: heap and Buffers, not the page cache. The mapping reads the page cache in place; readFileSync copies the whole file into a Buffer.',
      lowerIsBetter: true,
      rows: memoryRows,
      goals: [
        goal(
          "memmap's anonymous memory under 5% of the readFileSync path's",
          median(mem('memmap checksum (map + native sum)')) / median(mem('fs.readFileSync + JavaScript loop')),
          'max',
          0.05,
        ),
      ],
      notes: [],
    },
  ];
}
