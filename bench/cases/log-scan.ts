/**
 * Case 7, log scan: count the ERROR lines of a cached log and keep the last five, the way a
 * Node program reads a big text file today (readline over a read stream, readFileSync +
 * split) against lines() and the worker-thread example. Each subject in a fresh process, so
 * that its time and its anonymous memory are its own.
 */
import {
  type CaseResult,
  type Context,
  goal,
  logFile,
  median,
  type Row,
  record,
  runChild,
  stats,
  warm,
} from '../lib/harness.js';

interface Scan {
  seconds: number;
  count: number;
  last: string[];
  rssAnon: number;
  error?: string;
}

const SUBJECTS: [string, Row['kind'], string][] = [
  ['memmap lines()', 'memmap', 'lines'],
  ['memmap lines() with for await', 'memmap', 'lines-async'],
  ['memmap worker threads over sharedBuffer() (examples/parallel-scan)', 'memmap', 'workers'],
  ['readline over fs.createReadStream', 'node', 'readline'],
  ['fs.readFileSync + split', 'node', 'readFileSync-split'],
];

export async function logScan(ctx: Context): Promise<CaseResult[]> {
  const size = ctx.quick ? 128 * 1024 ** 2 : 1024 ** 3;
  const path = logFile(`log-${size}.log`, size);
  warm(path);
  const gib = size / 1024 ** 3;
  ctx.log('log scan...');
  const seconds: Record<string, number[]> = {};
  const anon: Record<string, number[]> = {};
  const failed: Record<string, string> = {};
  const answers = new Set<string>();
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const [name, , variant] of SUBJECTS) {
      if (failed[name]) continue;
      const scan = runChild<Scan>('logscan', [variant, path]);
      if (scan.error) {
        failed[name] = scan.error;
        continue;
      }
      record(seconds, name, scan.seconds);
      record(anon, name, scan.rssAnon);
      answers.add(JSON.stringify([scan.count, scan.last]));
    }
  }
  if (answers.size !== 1) throw new Error(`the subjects disagree on the answer: ${[...answers].join(' / ')}`);
  const [count] = JSON.parse([...answers][0] as string) as [number];

  const why = (name: string) =>
    failed[name] === 'ERR_STRING_TOO_LONG'
      ? 'ERR_STRING_TOO_LONG: the file is longer than the longest string this runtime makes (about 512 MiB on Node 20)'
      : `failed: ${failed[name]}`;
  const rowsOf = (table: Record<string, number[]>, unit: string, scale: (v: number) => number): Row[] =>
    SUBJECTS.map(([name, kind]) =>
      failed[name]
        ? { subject: name, kind, value: null, unit, note: why(name) }
        : { subject: name, kind, value: stats((table[name] ?? []).map(scale)), unit },
    );
  const rows = rowsOf(seconds, 'GB/s', (s) => size / s / 1e9);
  const memoryRows = rowsOf(anon, 'MiB anonymous memory (RssAnon)', (v) => v / 1024 ** 2);
  const by = (name: string) => rows.find((r) => r.subject === name);
  const mem = (name: string) => memoryRows.find((r) => r.subject === name);
  const lines = median(by('memmap lines()'));
  const readFile = failed['fs.readFileSync + split'] ? null : median(by('fs.readFileSync + split'));
  const goals = [
    goal('lines() at least 4x readline', lines / median(by('readline over fs.createReadStream')), 'min', 4),
  ];
  const notes: string[] = [];
  if (readFile !== null) {
    goals.push(goal('lines() faster than readFileSync + split', lines / readFile, 'min', 1));
  } else {
    notes.push(
      `readFileSync + split could not read the ${gib} GiB log at all (${failed['fs.readFileSync + split']}): the comparison with it is made on the --quick size (128 MiB).`,
    );
  }
  const memoryGoals =
    readFile === null
      ? []
      : [
          goal(
            "lines()'s anonymous memory under 5% of readFileSync + split's",
            median(mem('memmap lines()')) / median(mem('fs.readFileSync + split')),
            'max',
            0.05,
          ),
        ];
  return [
    {
      id: 'log-scan',
      title: `Log scan: ERROR lines of a ${gib} GiB cached log`,
      method: `A ${gib} GiB log in the page cache (lines of 60 to 90 bytes, ${count} of them at level ERROR), each subject counting the lines that contain ERROR and keeping the last five, in a fresh process (start-up not counted). lines() decodes every line into a string, as readline does; the worker example (two threads here: the machine has two cores, shared with the parent) searches each range of the shared mapping for the word instead. All subjects agree on the count and the last five lines. ${ctx.reps} repetitions in alternation.`,
      lowerIsBetter: false,
      rows,
      goals,
      notes,
    },
    {
      id: 'log-scan-memory',
      title: `Log scan: anonymous memory (RssAnon) while scanning ${gib} GiB of log`,
      method:
        'RssAnon of each scanning process at the end of its scan: heap and Buffers, not the page cache. lines() reads the page cache in place; readFileSync copies the file into a Buffer and a string, then an array of strings.',
      lowerIsBetter: true,
      rows: memoryRows,
      goals: memoryGoals,
      notes: [],
    },
  ];
}
