/**
 * A pool of worker processes fed through channels, next to the same pool over process.send:
 *
 *   npm run example:channel-pool
 *
 * Each worker gets its own jobs channel (fd 3) and writes results into one shared results
 * channel (fd 4): many producers, one consumer. Each job is a range of numbers to sum; the
 * results of both pools must agree.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Channel } from '../../src/index.js';

const WORKERS = 2;
const JOBS = 100_000;
const worker = fileURLToPath(new URL('./worker.js', import.meta.url));

interface Job {
  id: number;
  from: number;
  to: number;
}
/** Resolves when `child` has exited (also if it already has). */
function exited(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', done));
}

const jobs: Job[] = Array.from({ length: JOBS }, (_, id) => ({ id, from: id * 10, to: id * 10 + 10 }));

async function overChannels(): Promise<[number, number]> {
  using results = Channel.create({ capacity: 1 << 20 });
  const feeds = Array.from({ length: WORKERS }, () => Channel.create({ capacity: 1 << 20 }));
  const children: ChildProcess[] = feeds.map((feed) =>
    spawn(process.execPath, [worker, 'channel'], { stdio: ['inherit', 'inherit', 'inherit', feed.fd, results.fd] }),
  );
  const start = performance.now();
  const senders = feeds.map((feed) => feed.producer({ codec: 'json' }));
  const rx = results.consumer({ codec: 'json' });
  const sending = (async () => {
    for (const job of jobs) await (senders[job.id % WORKERS] as (typeof senders)[number]).send(job);
    for (const tx of senders) await tx.send(null);
  })();
  let total = 0;
  let received = 0;
  for await (const m of rx) {
    total += (m.value as { sum: number }).sum;
    if (++received === JOBS) break;
  }
  await sending;
  await Promise.all(children.map(exited));
  for (const feed of feeds) feed.close();
  return [total, performance.now() - start];
}

async function overProcessSend(): Promise<[number, number]> {
  const children = Array.from({ length: WORKERS }, () => fork(worker, ['ipc']));
  const start = performance.now();
  let total = 0;
  let received = 0;
  const finished = new Promise<void>((done) => {
    for (const child of children) {
      child.on('message', (result: { sum: number }) => {
        total += result.sum;
        if (++received === JOBS) done();
      });
    }
  });
  for (const job of jobs) (children[job.id % WORKERS] as ChildProcess).send(job);
  await finished;
  for (const child of children) child.send('stop');
  await Promise.all(children.map(exited));
  return [total, performance.now() - start];
}

const [a, timeA] = await overChannels();
const [b, timeB] = await overProcessSend();
console.log(
  `channels     : ${JOBS.toLocaleString('en')} jobs on ${WORKERS} workers in ${timeA.toFixed(0)} ms, total ${a}`,
);
console.log(
  `process.send : ${JOBS.toLocaleString('en')} jobs on ${WORKERS} workers in ${timeB.toFixed(0)} ms, total ${b}`,
);
process.exitCode = a === b ? 0 : 1;
if (a !== b) console.log('the totals differ!');
