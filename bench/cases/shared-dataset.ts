/**
 * Case 3, shared dataset: four processes each read the same file in full; their proportional
 * set sizes (PSS, shared pages divided among the sharers) are added up while all four hold
 * what they read.
 */
import {
  type CaseResult,
  type Context,
  dataFile,
  goal,
  median,
  procFigure,
  type Row,
  startChild,
  stats,
  warm,
} from '../lib/harness.js';

const PROCESSES = 4;

/** Starts four holders, waits until each has read the file, and sums their PSS. */
async function sharedPss(variant: string, path: string): Promise<number> {
  const children = Array.from({ length: PROCESSES }, () => startChild('hold', [variant, path]));
  try {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((done, fail) => {
            child.stdout?.once('data', () => done());
            child.once('exit', (code) => fail(new Error(`holder exited ${code}`)));
          }),
      ),
    );
    return children.reduce((sum, child) => sum + procFigure(child.pid as number, 'smaps_rollup', 'Pss'), 0);
  } finally {
    for (const child of children) child.stdin?.end();
    await Promise.all(children.map((child) => new Promise((done) => child.once('exit', done))));
  }
}

export async function sharedDataset(ctx: Context): Promise<CaseResult[]> {
  const size = ctx.quick ? 128 * 1024 ** 2 : 1024 ** 3;
  const gib = size / 1024 ** 3;
  const path = dataFile(`scan-${size}.bin`, size);
  warm(path);
  ctx.log('shared dataset...');
  const samples: Record<string, number[]> = { memmap: [], readFileSync: [] };
  for (let rep = 0; rep < Math.min(ctx.reps, 3); rep++) {
    for (const variant of Object.keys(samples)) samples[variant]?.push((await sharedPss(variant, path)) / 1024 ** 3);
  }
  const rows: Row[] = [
    {
      subject: `memmap: ${PROCESSES} processes map the file`,
      kind: 'memmap',
      value: stats(samples.memmap ?? []),
      unit: 'GiB PSS, summed',
    },
    {
      subject: `fs.readFileSync: ${PROCESSES} processes read it into a Buffer`,
      kind: 'node',
      value: stats(samples.readFileSync ?? []),
      unit: 'GiB PSS, summed',
    },
  ];
  return [
    {
      id: 'shared-dataset',
      title: `Shared dataset: ${PROCESSES} processes each read the same ${gib} GiB file`,
      method: `${PROCESSES} Node processes each read the whole ${gib} GiB file (memmap: map it and touch every page; fs: readFileSync) and hold it; the sum of their PSS (/proc/PID/smaps_rollup) is taken while all ${PROCESSES} are alive. PSS counts a page shared by n processes as 1/n in each, so mapped file pages count once in all. Each process's own Node runtime (about 40 MiB) is included.`,
      lowerIsBetter: true,
      rows,
      goals: [
        goal(
          `memmap's summed PSS at most 1.25x the file (${(1.25 * gib).toFixed(2)} GiB)`,
          median(rows[0]) / gib,
          'max',
          1.25,
        ),
      ],
      notes: [],
    },
  ];
}
