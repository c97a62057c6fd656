/**
 * `npm run bench`: every case in turn, then bench/results/latest.json (every figure),
 * bench/results/latest.md (the tables), an SVG chart per case, the results section of
 * docs/benchmarks.md and the headline ratios in README.md.
 *
 *   npm run bench                  the full suite (about ten minutes on two cores)
 *   npm run bench -- --quick       small sizes, one repetition each: a smoke test (about a minute)
 *   npm run bench -- scan writes   only the cases whose id contains one of the words (random-reads,
 *                                  sequential-scan, shared-dataset, random-writes, open-close, sync,
 *                                  log-scan, array-files, channel)
 *
 * No goal is asserted: this machine is shared and noisy. Goals are reported met or missed.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { arrayFiles } from './cases/array-files.js';
import { channel } from './cases/channel.js';
import { logScan } from './cases/log-scan.js';
import { openClose } from './cases/open-close.js';
import { randomReads } from './cases/random-reads.js';
import { randomWrites } from './cases/random-writes.js';
import { sequentialScan } from './cases/sequential-scan.js';
import { sharedDataset } from './cases/shared-dataset.js';
import { sync } from './cases/sync.js';
import { type CaseResult, type Context, cleanUp, machine, type Row, resultsDir, root } from './lib/harness.js';
import { installPeers, loadPeers, type Peers, tryOriginalMmapIo } from './lib/peers.js';

type CaseRunner = (ctx: Context, peers: Peers) => Promise<CaseResult[]>;
const CASES: [string, CaseRunner][] = [
  ['random-reads', randomReads],
  ['sequential-scan', sequentialScan],
  ['shared-dataset', sharedDataset],
  ['random-writes', randomWrites],
  ['open-close', openClose],
  ['sync', sync],
  ['log-scan', logScan],
  ['array-files', arrayFiles],
  ['channel', channel],
];

function formatValue(row: Row): string {
  if (!row.value) return `n/a (${row.note ?? 'not measured'})`;
  const { median, spread } = row.value;
  const digits = median >= 100 ? 0 : median >= 10 ? 1 : median >= 1 ? 2 : 3;
  return `${median.toFixed(digits)} ±${Math.round(spread * 50)}%`;
}

function markdown(
  cases: CaseResult[],
  info: Record<string, string | number>,
  peerStatus: Record<string, string>,
): string {
  const lines = [
    `Machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, Linux ${info.kernel}, ${info.filesystem}, Node ${info.node}; ${info.date}.`,
    `Peers: ${Object.entries(peerStatus)
      .map(([name, status]) => `${name}: ${status}`)
      .join('; ')}.`,
    '',
    'Figures are medians over the repetitions; ± is half the spread between the fastest and slowest repetition, as a share of the median.',
  ];
  for (const c of cases) {
    lines.push('', `### ${c.title}`, '', c.method, '', `| subject | ${c.rows[0]?.unit ?? ''} |`, '|---|---|');
    for (const row of c.rows) lines.push(`| ${row.subject}${row.note ? ` (${row.note})` : ''} | ${formatValue(row)} |`);
    if (c.goals.length > 0) {
      lines.push('');
      for (const g of c.goals) {
        lines.push(
          `- ${g.met ? 'Met' : '**Missed**'}: ${g.text} (measured ${g.measured.toFixed(2)}, ${g.bound === 'min' ? 'needs ≥' : 'needs ≤'} ${g.target}).`,
        );
      }
    }
    for (const note of c.notes) lines.push('', note);
    lines.push('', `![${c.title}](${c.id}.svg)`);
  }
  return `${lines.join('\n')}\n`;
}

/** Replaces what stands between two marker comments of a file. */
function replaceBetween(path: string, marker: string, content: string): void {
  const text = readFileSync(path, 'utf8');
  const start = `<!-- ${marker}:start -->`;
  const end = `<!-- ${marker}:end -->`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) return;
  writeFileSync(path, `${text.slice(0, from + start.length)}\n${content}\n${text.slice(to)}`);
}

function headline(cases: CaseResult[]): string {
  const lines: string[] = [];
  for (const c of cases) {
    for (const g of c.goals) {
      lines.push(
        `| ${c.title.split(':')[0]} | ${g.text} | ${g.measured.toFixed(g.measured < 10 ? 2 : 1)} | ${g.met ? 'met' : 'missed'} |`,
      );
    }
  }
  return ['| case | goal | measured | |', '|---|---|---|---|', ...lines].join('\n');
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const filters = args.filter((a) => !a.startsWith('--'));
  const ctx: Context = { quick, reps: quick ? 1 : 5, log: (line) => process.stdout.write(`${line}\n`) };
  const info = machine();
  ctx.log(`memmap benchmarks${quick ? ' (--quick)' : ''} on ${info.cpu}, ${info.cores} cores, Node ${info.node}`);
  installPeers(ctx.log);
  const peers = loadPeers();
  if (!quick) peers.status['mmap-io'] = tryOriginalMmapIo();

  const cases: CaseResult[] = [];
  try {
    for (const [id, run] of CASES) {
      if (filters.length > 0 && !filters.some((f) => id.includes(f))) continue;
      cases.push(...(await run(ctx, peers)));
    }
  } finally {
    cleanUp();
  }

  mkdirSync(resultsDir, { recursive: true });
  const stem = quick ? 'quick' : 'latest';
  writeFileSync(
    join(resultsDir, `${stem}.json`),
    `${JSON.stringify({ machine: info, quick, peers: peers.status, cases }, null, 2)}\n`,
  );
  const table = markdown(cases, info, peers.status);
  writeFileSync(join(resultsDir, `${stem}.md`), table);
  for (const c of cases) {
    for (const g of c.goals) ctx.log(`${g.met ? 'met   ' : 'MISSED'} ${c.id}: ${g.text} (${g.measured.toFixed(2)})`);
  }
  // Only a full, unfiltered run speaks for the project: it draws the charts and rewrites the
  // results in the docs and the README.
  if (!quick && filters.length === 0) {
    const charts = spawnSync(process.execPath, [join(root, 'bench', 'charts.mjs'), resultsDir], { stdio: 'inherit' });
    if (charts.status !== 0) ctx.log('the charts could not be drawn');
    replaceBetween(join(root, 'docs', 'benchmarks.md'), 'results', table.replaceAll('](', '](../bench/results/'));
    replaceBetween(join(root, 'README.md'), 'benchmarks', headline(cases));
  }
  const measured = cases.reduce((n, c) => n + c.rows.filter((r) => r.value !== null).length, 0);
  const missing = cases.reduce((n, c) => n + c.rows.filter((r) => r.value === null).length, 0);
  ctx.log(`results in ${join(resultsDir, `${stem}.md`)}`);
  // The closing line: subjects measured, and subjects that could not be (a peer that failed).
  ctx.log(`bench: ${measured} passed, ${missing} failed`);
  return 0;
}

process.exitCode = await main();
