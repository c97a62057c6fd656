/**
 * The tour (`npm start`): what memmap does, shown on a real file in a few steps.
 *
 * It makes a sample file in the OS temp folder, sums it through a mapping and through
 * fs.readFileSync, writes through a shared mapping, flushes, reads the change back with fs,
 * looks at the page cache, catches a stray write, shares a counter with a second process,
 * sends messages to a child through a Channel and through process.send, and removes
 * everything it made.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  evict,
  faultStats,
  fileResidency,
  Mutex,
  mapFile,
  pageSize,
  SharedMemory,
  spawnWithChannel,
} from '../src/index.js';
import { byteSum, sumFile } from '../src/internal/checksum.js';

const SIZE = 256 * 1024 * 1024;
const RUNS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function time<T>(fn: () => T): [T, number] {
  const start = process.hrtime.bigint();
  const result = fn();
  return [result, Number(process.hrtime.bigint() - start) / 1e6];
}

function step(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

/** What a user writes today: read the whole file into the heap and add its bytes. */
function sumWithReadFile(path: string): bigint {
  const data = readFileSync(path);
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum += data[i] as number;
  return BigInt(sum);
}

const dir = mkdtempSync(join(tmpdir(), 'memmap-tour-'));
try {
  const path = join(dir, 'sample.bin');
  step(`A ${SIZE / 1024 / 1024} MiB sample file`);
  const data = Buffer.allocUnsafe(SIZE);
  for (let i = 0; i < SIZE; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(path, data);
  console.log(`wrote ${path} (page size here: ${pageSize} bytes)`);

  step('Checksum: mapping vs fs.readFileSync (page cache warm, median of 5)');
  const mapped: number[] = [];
  const read: number[] = [];
  let sums: [bigint, bigint] = [0n, 0n];
  for (let run = 0; run < RUNS; run++) {
    const [a, ta] = time(() => sumFile(path).sum);
    const [b, tb] = time(() => sumWithReadFile(path));
    mapped.push(ta);
    read.push(tb);
    sums = [a, b];
  }
  const [m, r] = [median(mapped), median(read)];
  console.log(`memmap mapping + native sum : ${m.toFixed(1)} ms   Checksum: ${sums[0]}`);
  console.log(`readFileSync + JS loop      : ${r.toFixed(1)} ms   Checksum: ${sums[1]}`);
  console.log(
    sums[0] === sums[1]
      ? `same checksum; the mapping was ${(r / m).toFixed(1)}x faster and copied nothing into the heap`
      : 'THE CHECKSUMS DIFFER: please report this',
  );

  step("Write through a 'write' mapping, flush, read back with fs");
  {
    using mapping = mapFile(path, { mode: 'write', offset: 1000, length: 32 });
    mapping.buffer.write('hello from a shared mapping', 'utf8');
    mapping.flush();
    console.log(`mapped ${mapping.length} bytes at offset ${mapping.offset} (not page-aligned: memmap aligns for you)`);
  }
  const back = Buffer.alloc(27);
  const fd = openSync(path, 'r');
  readSync(fd, back, 0, back.length, 1000);
  closeSync(fd);
  console.log(`fs.readSync at offset 1000 now reads: "${back.toString('utf8')}"`);

  step("A 'copy' mapping never changes the file");
  {
    using copy = mapFile(path, { mode: 'copy', length: 4096 });
    const firstPage = () => {
      const page = Buffer.alloc(4096);
      const fd = openSync(path, 'r');
      readSync(fd, page, 0, page.length, 0);
      closeSync(fd);
      return byteSum(page);
    };
    const before = firstPage();
    copy.buffer.fill(0);
    const after = firstPage();
    console.log(`wrote zeros into the copy; the file's first page sums to ${after} (before: ${before})`);
  }

  step('The page cache: what is in memory, and a stray write caught');
  {
    evict(path);
    const cold = fileResidency(path);
    using mapping = mapFile(path, { mode: 'write' });
    mapping.advise('populate-read', { length: SIZE / 2 });
    const warm = mapping.residency();
    const percent = (part: number, whole: number) => `${Math.round((100 * part) / whole)}%`;
    console.log(
      `after evict(): ${percent(cold.resident, cold.pages)} of the file cached; after advise('populate-read') on its first half: ${percent(warm.resident, warm.pages)}`,
    );
    const bytes = mapping.buffer;
    const byteInFile = () => {
      const one = Buffer.alloc(1);
      const fd = openSync(path, 'r');
      readSync(fd, one, 0, 1, 10);
      closeSync(fd);
      return one[0];
    };
    const before = byteInFile();
    mapping.protect('read', { length: 4096 });
    bytes[10] = before === 42 ? 43 : 42; // a bug writing where it should not: in C, SIGSEGV
    console.log(
      `a write into a page protected 'read' was caught: faulted = ${mapping.faulted}, faultStats().protection = ${faultStats().protection}; byte 10 of the file is still ${byteInFile()} (was ${before})`,
    );
    try {
      mapping.close();
    } catch (error) {
      console.log(`close() released the mapping and reported ${(error as { code?: string }).code}`);
    }
  }

  step('Two processes, one counter: shared memory and a Mutex');
  {
    const name = `/memmap-tour-${process.pid}`;
    using shm = SharedMemory.create(name, 4096, { exclusive: true });
    try {
      const mutex = Mutex.create(shm, 0);
      const rounds = 50_000;
      const child = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { SharedMemory, Mutex } = await import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)});
           const shm = SharedMemory.open(${JSON.stringify(name)});
           const mutex = Mutex.attach(shm, 0);
           for (let i = 0; i < ${rounds}; i++) { mutex.lock(); shm.buffer.writeUInt32LE(shm.buffer.readUInt32LE(64) + 1, 64); mutex.unlock(); }
           shm.close();`,
        ],
        { stdio: 'inherit' },
      );
      for (let i = 0; i < rounds; i++) {
        await mutex.lockAsync();
        shm.buffer.writeUInt32LE(shm.buffer.readUInt32LE(64) + 1, 64);
        mutex.unlock();
      }
      await new Promise((done) => child.once('exit', done));
      console.log(
        `this process and a child each added 1 to a counter ${rounds.toLocaleString('en')} times under a Mutex in ${name}: it reads ${shm.buffer.readUInt32LE(64).toLocaleString('en')}`,
      );
    } finally {
      SharedMemory.unlink(name);
    }
  }

  step('Messages between processes: a Channel next to process.send');
  {
    const count = 200_000;
    const message = Buffer.alloc(64, 7);
    const index = JSON.stringify(new URL('../src/index.js', import.meta.url).href);
    const sink = `const { Channel } = await import(${index});
      const rx = Channel.fromFd(3).consumer();
      for (let n = 0; n < ${count}; n++) (rx.tryReceive() ?? (await rx.receive())).release();
      process.exit(0);`;
    const { child, channel } = spawnWithChannel(process.execPath, ['--input-type=module', '-e', sink]);
    const tx = channel.producer();
    let start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) if (!tx.trySend(message)) await tx.send(message);
    await new Promise((done) => child.once('exit', done));
    const viaChannel = count / (Number(process.hrtime.bigint() - start) / 1e9);
    channel.close();
    const ipcCount = count / 10;
    const forked = spawn(
      process.execPath,
      ['-e', `let n = 0; process.on('message', () => { if (++n === ${ipcCount}) process.exit(0); });`],
      { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] },
    );
    start = process.hrtime.bigint();
    for (let i = 0; i < ipcCount; i++) forked.send({ body: message.toString('latin1') });
    await new Promise((done) => forked.once('exit', done));
    const viaIpc = ipcCount / (Number(process.hrtime.bigint() - start) / 1e9);
    console.log(`Channel      : ${Math.round(viaChannel).toLocaleString('en')} 64-byte messages a second to a child`);
    console.log(
      `process.send : ${Math.round(viaIpc).toLocaleString('en')} messages a second (${(viaChannel / viaIpc).toFixed(0)}x fewer)`,
    );
  }

  step('Done');
  console.log('Next: docs/api.md for every call, and `npx memmap checksum FILE` on a file of yours.');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
