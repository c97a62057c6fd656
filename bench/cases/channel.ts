/**
 * Case 7, the message channel: one-way throughput and ping-pong latency of 64-byte and 4 KiB
 * messages between two processes, memmap's Channel against what Node users have today
 * (process.send with JSON and advanced serialisation, a Unix socket, worker postMessage) and
 * a C shared-memory ring with futexes (bench/c/channel_ring.c).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Channel } from '../../src/index.js';
import {
  benchDir,
  type CaseResult,
  type Context,
  compileC,
  entry,
  goal,
  kindOf,
  median,
  type Row,
  record,
  runC,
  scratch,
  stats,
} from '../lib/harness.js';

const SPIN_US = 20;
const SIZES = [64, 4096] as const;
const child = join(benchDir, 'children', 'channel.mjs');

function now(): number {
  return Number(process.hrtime.bigint());
}

/** Starts the far side; resolves once it printed "ready". `done` resolves when it prints "done". */
async function start(
  args: string[],
  options: { fds?: number[]; ipc?: boolean; serialization?: 'json' | 'advanced' } = {},
): Promise<{ proc: ChildProcess; done: Promise<void> }> {
  const stdio = ['ignore', 'pipe', 'inherit', ...(options.fds ?? []), ...(options.ipc ? ['ipc'] : [])];
  const env = { ...process.env, MEMMAP: entry };
  const proc = options.ipc
    ? fork(child, args, { env, stdio, serialization: options.serialization } as Parameters<typeof fork>[2])
    : spawn(process.execPath, [child, ...args], { env, stdio } as Parameters<typeof spawn>[2]);
  let out = '';
  let ready: () => void = () => {};
  let finished: () => void = () => {};
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  const done = new Promise<void>((r) => {
    finished = r;
  });
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.includes('ready')) ready();
    if (out.includes('done')) finished();
  });
  proc.once('exit', () => {
    ready();
    finished();
  });
  await isReady;
  return { proc, done };
}

function exited(proc: ChildProcess): Promise<unknown> {
  return proc.exitCode !== null ? Promise.resolve() : new Promise((r) => proc.once('exit', r));
}

async function channelThroughput(count: number, size: number): Promise<number> {
  using ch = Channel.create({ capacity: 1 << 20, maxMessage: 64 << 10 });
  const { proc, done } = await start(['channel-sink', String(count)], { fds: [ch.fd] });
  const tx = ch.producer();
  const message = Buffer.alloc(size, 7);
  const t = now();
  for (let i = 0; i < count; i++) if (!tx.trySend(message)) await tx.send(message);
  await done;
  const rate = count / ((now() - t) / 1e9);
  await exited(proc);
  return rate;
}

async function ipcThroughput(count: number, size: number, serialization: 'json' | 'advanced'): Promise<number> {
  const { proc } = await start(['ipc-sink', String(count)], { ipc: true, serialization });
  const message = serialization === 'json' ? { body: 'x'.repeat(size) } : Buffer.alloc(size, 7);
  const reply = new Promise<void>((r) => proc.once('message', () => r()));
  const t = now();
  for (let i = 0; i < count; i++) {
    // Waits for the pipe to drain now and then, as a real sender must, or memory balloons.
    if (!proc.send(message) && i % 1000 === 0) await new Promise((r) => setImmediate(r));
  }
  await reply;
  const rate = count / ((now() - t) / 1e9);
  await exited(proc);
  return rate;
}

async function socketThroughput(count: number, size: number): Promise<number> {
  const path = join(scratch, `channel-${process.pid}.sock`);
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const connected = new Promise<Socket>((r) => server.once('connection', r));
  const { proc, done } = await start(['socket-sink', path, String(count * size)]);
  const socket = await connected;
  const message = Buffer.alloc(size, 7);
  const t = now();
  for (let i = 0; i < count; i++) {
    if (!socket.write(message)) await new Promise((r) => socket.once('drain', r));
  }
  await done;
  const rate = count / ((now() - t) / 1e9);
  socket.destroy();
  server.close();
  await exited(proc);
  return rate;
}

async function workerThroughput(count: number, size: number): Promise<number> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     let n = 0;
     parentPort.on('message', () => { if (++n === workerData) { parentPort.postMessage('done'); process.exit(0); } });`,
    { eval: true, workerData: count },
  );
  await new Promise((r) => worker.once('online', r));
  const finished = new Promise<void>((r) => worker.once('message', () => r()));
  const message = Buffer.alloc(size, 7);
  const t = now();
  for (let i = 0; i < count; i++) {
    worker.postMessage(message);
    if (i % 10_000 === 0) await new Promise((r) => setImmediate(r));
  }
  await finished;
  const rate = count / ((now() - t) / 1e9);
  await new Promise((r) => worker.once('exit', r));
  return rate;
}

function percentiles(samples: Float64Array): { p50: number; p99: number } {
  const kept = samples.slice(Math.floor(samples.length / 10)).sort();
  return {
    p50: (kept[Math.floor(kept.length / 2)] ?? 0) / 1000,
    p99: (kept[Math.floor(kept.length * 0.99)] ?? 0) / 1000,
  };
}

async function channelPingPong(rounds: number, size: number, spin: number): Promise<Float64Array> {
  using ping = Channel.create({ capacity: 1 << 16, maxMessage: 4096 });
  using pong = Channel.create({ capacity: 1 << 16, maxMessage: 4096 });
  const { proc } = await start(['channel-echo', String(rounds), String(spin)], { fds: [ping.fd, pong.fd] });
  const tx = ping.producer();
  const rx = pong.consumer({ spin });
  const message = Buffer.alloc(size, 7);
  const samples = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) {
    const t = now();
    tx.trySend(message);
    const m = rx.tryReceive() ?? (await rx.receive());
    m.release();
    samples[i] = now() - t;
  }
  await exited(proc);
  return samples;
}

async function ipcPingPong(rounds: number, size: number): Promise<Float64Array> {
  const { proc } = await start(['ipc-echo'], { ipc: true, serialization: 'advanced' });
  const message = Buffer.alloc(size, 7);
  let answered: () => void = () => {};
  proc.on('message', () => answered());
  const samples = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) {
    const t = now();
    const reply = new Promise<void>((r) => {
      answered = r;
    });
    proc.send(message);
    await reply;
    samples[i] = now() - t;
  }
  proc.kill();
  await exited(proc);
  return samples;
}

async function socketPingPong(rounds: number, size: number): Promise<Float64Array> {
  const path = join(scratch, `channel-pp-${process.pid}.sock`);
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const connected = new Promise<Socket>((r) => server.once('connection', r));
  const { proc } = await start(['socket-echo', path, String(size), String(rounds)]);
  const socket = await connected;
  socket.setNoDelay(true);
  const message = Buffer.alloc(size, 7);
  let have = 0;
  let answered: () => void = () => {};
  socket.on('data', (chunk: Buffer) => {
    have += chunk.length;
    if (have >= size) {
      have -= size;
      answered();
    }
  });
  const samples = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) {
    const t = now();
    const reply = new Promise<void>((r) => {
      answered = r;
    });
    socket.write(message);
    await reply;
    samples[i] = now() - t;
  }
  socket.destroy();
  server.close();
  await exited(proc);
  return samples;
}

export async function channel(ctx: Context): Promise<CaseResult[]> {
  const count = ctx.quick ? 50_000 : 1_000_000;
  const ipcCount = ctx.quick ? 10_000 : 100_000;
  const rounds = ctx.quick ? 2_000 : 20_000;
  const binary = compileC('channel_ring', ['-O2']);
  const rate: Record<string, number[]> = {};
  const p50: Record<string, number[]> = {};
  const p99: Record<string, number[]> = {};
  const push = (subject: string, samples: Float64Array) => {
    const { p50: a, p99: b } = percentiles(samples);
    record(p50, subject, a);
    record(p99, subject, b);
  };
  ctx.log('channel...');
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const size of SIZES) {
      const s = size === 64 ? '64 B' : '4 KiB';
      const n = size === 64 ? count : count / 8;
      const m = size === 64 ? ipcCount : ipcCount / 4;
      record(rate, `memmap Channel trySend / tryReceive, ${s}`, await channelThroughput(n, size));
      record(
        rate,
        `C futex ring, ${s}`,
        runC<{ messages_per_s: number }>(binary, ['throughput', String(n), String(size), '0']).messages_per_s,
      );
      record(rate, `Node process.send (JSON), ${s}`, await ipcThroughput(m, size, 'json'));
      record(rate, `Node process.send (advanced), ${s}`, await ipcThroughput(m, size, 'advanced'));
      record(rate, `Node net over a Unix socket, ${s}`, await socketThroughput(m, size));
      record(rate, `Node worker postMessage (a thread), ${s}`, await workerThroughput(m, size));
      push(`memmap Channel receive, ${s}`, await channelPingPong(rounds, size, 0));
      push(`memmap Channel receive (spin ${SPIN_US} µs), ${s}`, await channelPingPong(rounds, size, SPIN_US));
      for (const [spin, label] of [
        [0, `C futex ring, ${s}`],
        [SPIN_US, `C futex ring (spin ${SPIN_US} µs), ${s}`],
      ] as const) {
        const r = runC<{ p50_ns: number; p99_ns: number }>(binary, [
          'pingpong',
          String(rounds),
          String(size),
          String(spin),
        ]);
        record(p50, label, r.p50_ns / 1000);
        record(p99, label, r.p99_ns / 1000);
      }
      push(`Node process.send (advanced), ${s}`, await ipcPingPong(Math.min(rounds, 5_000), size));
      push(`Node net over a Unix socket, ${s}`, await socketPingPong(rounds, size));
    }
  }
  const rows = (table: Record<string, number[]>, unit: string): Row[] =>
    Object.entries(table).map(([subject, values]) => ({ subject, kind: kindOf(subject), value: stats(values), unit }));
  const rateRows = rows(rate, 'messages per second');
  const p50Rows = rows(p50, 'µs per round trip, p50');
  const p99Rows = rows(p99, 'µs per round trip, p99');
  const at = (list: Row[], subject: string) => median(list.find((r) => r.subject === subject));
  const channel64 = at(rateRows, 'memmap Channel trySend / tryReceive, 64 B');
  const note =
    'Two processes on a two-core machine that other work shares: the producer and the consumer each need a core, so every figure here is bounded by how much of the second core the consumer gets.';
  return [
    {
      id: 'channel-throughput',
      title: 'Message channel: one-way throughput between two processes',
      method: `${count.toLocaleString('en')} 64-byte messages (an eighth as many of 4 KiB) from this process to a child through a 1 MiB ring; the Node subjects send ${ipcCount.toLocaleString('en')} (a quarter as many of 4 KiB). The consumer releases each message as it reads it. ${ctx.reps} repetitions.`,
      lowerIsBetter: false,
      rows: rateRows,
      goals: [
        goal(
          'memmap Channel at least 3 million 64-byte messages a second between two processes',
          channel64 / 1e6,
          'min',
          3,
        ),
        goal(
          'memmap Channel at least 20x process.send (JSON) with 64-byte messages',
          channel64 / at(rateRows, 'Node process.send (JSON), 64 B'),
          'min',
          20,
        ),
      ],
      notes: [note],
    },
    {
      id: 'channel-pingpong',
      title: 'Message channel: ping-pong between two processes, p50',
      method: `${rounds.toLocaleString('en')} round trips of one message through two channels (a child echoes each), the first tenth discarded; "spin" subjects spin up to ${SPIN_US} µs before sleeping.`,
      lowerIsBetter: true,
      rows: p50Rows,
      goals: [
        goal(
          'memmap Channel ping-pong asleep within 2x the C futex ring (64 B)',
          at(p50Rows, 'memmap Channel receive, 64 B') / at(p50Rows, 'C futex ring, 64 B'),
          'max',
          2,
        ),
        goal(
          `memmap Channel ping-pong with a ${SPIN_US} µs spin under 2 µs p50 (64 B)`,
          at(p50Rows, `memmap Channel receive (spin ${SPIN_US} µs), 64 B`),
          'max',
          2,
        ),
      ],
      notes: [
        note,
        "receive() is async: a sleeping receive is woken on memmap's waiter thread and then handed to the event loop, one more hop than the C ring's FUTEX_WAIT.",
      ],
    },
    {
      id: 'channel-pingpong-p99',
      title: 'Message channel: ping-pong between two processes, p99',
      method: 'As the p50 table.',
      lowerIsBetter: true,
      rows: p99Rows,
      goals: [],
      notes: [],
    },
  ];
}
