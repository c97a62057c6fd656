import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Channel, type Consumer, spawnWithChannel } from '../src/index.js';
import { assertRejectsCode, CHILD_LIMIT_MS, entry, root, tempDir } from './helpers/index.js';

const fixtures = join(root, 'test', 'fixtures');
const producerScript = join(fixtures, 'channel-producer.mjs');
const { Order, fill } = (await import(pathToFileURL(join(fixtures, 'channel-record.mjs')).href)) as {
  Order: new () => { see(view: Buffer): [number, number]; count: number; next: Map<number, number> };
  fill(view: Buffer, id: number, seq: number): void;
};

interface Ended {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Starts a process with the channel as fd 3. */
function start(ch: Channel, command: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(command, args, {
    env: { ...process.env, MEMMAP: entry, ...env },
    stdio: ['ignore', 'pipe', 'pipe', ch.fd],
    timeout: CHILD_LIMIT_MS,
    killSignal: 'SIGKILL',
  });
}

function ended(child: ChildProcess): Promise<Ended> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((done) => child.on('close', (status, signal) => done({ status, signal, stderr })));
}

/**
 * Runs the Node producer fixture. A producer that fails closes the channel, so that a consumer
 * waiting (with no timeout) for its records fails at once with ERR_MEMMAP_CLOSED rather than
 * at the test's timeout; assertClean then shows why.
 */
function producer(ch: Channel, env: Record<string, string>): Promise<Ended> {
  return ended(start(ch, process.execPath, [producerScript], env)).then((result) => {
    if (result.status !== 0 && result.signal === null) ch.close();
    return result;
  });
}

function assertClean(result: Ended): void {
  assert.equal(result.signal, null, `child died by ${result.signal}\n${result.stderr}`);
  assert.equal(result.status, 0, `child exited ${result.status}\n${result.stderr}`);
}

/** Receives `count` records (waits with no timeout: a lost wake fails the test's own timeout). */
async function drain(rx: Consumer, count: number, slow = false): Promise<InstanceType<typeof Order>> {
  const order = new Order();
  for await (const m of rx) {
    order.see(m.view);
    if (slow && order.count % 500 === 0) await new Promise((r) => setTimeout(r, 5));
    if (order.count === count) break;
  }
  return order;
}

describe('Channel between processes', () => {
  for (const producers of [2, 4, 8]) {
    it(`${producers} producer processes into one small ring: every record once, whole, in each producer's order`, {
      timeout: 120_000,
    }, async () => {
      using ch = Channel.create({ capacity: 4096, maxMessage: 400 });
      const rx = ch.consumer();
      const count = producers === 8 ? 1500 : 4000;
      const children = Array.from({ length: producers }, (_, i) =>
        producer(ch, { ID: String(i + 1), COUNT: String(count), SPREAD: '300' }),
      );
      let order: InstanceType<typeof Order>;
      try {
        order = await drain(rx, producers * count, producers === 2);
      } finally {
        for (const result of await Promise.all(children)) assertClean(result);
      }
      for (let i = 1; i <= producers; i++) assert.equal(order.next.get(i), count);
      assert.equal(rx.tryReceive(), null);
    });
  }

  it('a C producer written from the documented layout, beside a Node one', { timeout: 120_000 }, async (t) => {
    const binary = join(tempDir(), 'channel_peer');
    try {
      execFileSync('gcc', ['-O2', '-o', binary, join(fixtures, 'channel_peer.c')]);
    } catch {
      t.skip('no C compiler here');
      return;
    }
    using ch = Channel.create({ capacity: 8192, maxMessage: 1000 });
    const rx = ch.consumer();
    const c = ended(start(ch, binary, ['7', '20000', '500']));
    const node = producer(ch, { ID: '8', COUNT: '5000', SPREAD: '500' });
    let order: InstanceType<typeof Order>;
    try {
      order = await drain(rx, 25000);
    } finally {
      assertClean(await c);
      assertClean(await node);
    }
    assert.equal(order.next.get(7), 20000);
    assert.equal(order.next.get(8), 5000);
  });

  it('send waits while the ring is full and resumes when a consumer in another process drains it', {
    timeout: 60_000,
  }, async () => {
    using ch = Channel.create({ capacity: 1024, maxMessage: 120 });
    const tx = ch.producer({ spin: 0 });
    const payload = Buffer.alloc(100, 1);
    while (tx.trySend(payload)) {}
    const child = start(ch, process.execPath, [
      '--input-type=module',
      '-e',
      `const { Channel } = await import(process.env.MEMMAP);
       const rx = Channel.fromFd(3).consumer();
       await new Promise((r) => setTimeout(r, 100));
       let n = 0;
       for await (const m of rx) if (++n === 108) break;
       process.stdout.write(String(n));`,
    ]);
    const result = ended(child);
    // Not one of these has room when it starts; each waits (no timeout) for the child to free some.
    for (let i = 0; i < 100; i++) await tx.send(payload);
    assertClean(await result);
  });

  it('receive waits for a message from another process with no timeout; async receives on one consumer both resolve', {
    timeout: 60_000,
  }, async () => {
    using ch = Channel.create({ capacity: 4096 });
    const rx = ch.consumer({ spin: 0 });
    const first = rx.receive();
    const second = rx.receive();
    const child = producer(ch, { ID: '3', COUNT: '2', SPREAD: '10' });
    const [a, b] = await Promise.all([first, second]);
    const order = new Order();
    order.see(a.view);
    order.see(b.view);
    a.release();
    b.release();
    assertClean(await child);
  });

  it('receive with a timeout, an aborted receive, then a receive that gets the next message (no wake lost)', {
    timeout: 60_000,
  }, async () => {
    using ch = Channel.create({ capacity: 4096 });
    const rx = ch.consumer({ spin: 0 });
    await assertRejectsCode(rx.receive({ timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    const controller = new AbortController();
    const aborted = rx.receive({ signal: controller.signal });
    controller.abort();
    await assertRejectsCode(aborted, 'ABORT_ERR');
    await assertRejectsCode(rx.receive({ signal: AbortSignal.abort() }), 'ABORT_ERR');
    const child = producer(ch, { ID: '4', COUNT: '1', SPREAD: '0' });
    const m = await rx.receive();
    new Order().see(m.view);
    m.release();
    assertClean(await child);
    const tx = ch.producer({ spin: 0 });
    const payload = Buffer.alloc(ch.maxMessage);
    while (tx.trySend(payload)) {}
    await assertRejectsCode(tx.send(payload, { timeout: 20 }), 'ERR_MEMMAP_TIMEOUT');
    await assertRejectsCode(tx.send(payload, { signal: AbortSignal.abort() }), 'ABORT_ERR');
  });

  it("closing the channel ends this process's pending receive and send with ERR_MEMMAP_CLOSED", async () => {
    const ch = Channel.create({ capacity: 1024, maxMessage: 120 });
    const rx = ch.consumer({ spin: 0 });
    const tx = ch.producer({ spin: 0 });
    while (tx.trySend(Buffer.alloc(120))) {}
    const waitingSend = tx.send(Buffer.alloc(120));
    rx.tryReceive(); // read, not released: the send still has no room
    const other = Channel.fromFd(ch.fd);
    other.close();
    const waitingReceive = Channel.create({ capacity: 1024 });
    const rx2 = waitingReceive.consumer({ spin: 0 });
    const pending = rx2.receive();
    waitingReceive.close();
    await assertRejectsCode(pending, 'ERR_MEMMAP_CLOSED');
    ch.close();
    await assertRejectsCode(waitingSend, 'ERR_MEMMAP_CLOSED');
  });

  it('a worker thread produces through the descriptor handed in workerData', { timeout: 60_000 }, async () => {
    using ch = Channel.create({ capacity: 4096 });
    const rx = ch.consumer({ codec: 'utf8' });
    const worker = new Worker(
      `const { Channel } = await import(${JSON.stringify(entry)});
       const { workerData } = await import('node:worker_threads');
       const ch = Channel.fromFd(workerData.fd);
       const tx = ch.producer({ codec: 'utf8' });
       for (let i = 0; i < 1000; i++) await tx.send('m' + i);
       ch.close();`,
      { eval: true, workerData: { fd: ch.fd }, type: 'module' } as ConstructorParameters<typeof Worker>[1],
    );
    let i = 0;
    for await (const m of rx) {
      assert.equal(m.value, `m${i}`);
      if (++i === 1000) break;
    }
    await new Promise((done) => worker.once('exit', done));
  });

  it('spawnWithChannel hands the channel to the child as fd 3', { timeout: 60_000 }, async () => {
    const { child, channel } = spawnWithChannel(process.execPath, [producerScript], {
      env: { ...process.env, MEMMAP: entry, ID: '5', COUNT: '300', SPREAD: '50' },
      stdio: ['ignore', 'ignore', 'pipe'],
      channel: { capacity: 2048 },
    });
    using ch = channel;
    const order = await drain(ch.consumer(), 300);
    assert.equal(order.next.get(5), 300);
    assertClean(await ended(child));
  });
});

describe('Channel: producers killed with SIGKILL', () => {
  it('a producer killed holding a claim: the consumer pads it at once (its pid is dead) and goes on', {
    timeout: 60_000,
  }, async () => {
    using ch = Channel.create({ capacity: 4096 });
    const rx = ch.consumer({ spin: 0 });
    const died = await producer(ch, { MODE: 'claim-and-die' });
    assert.equal(died.signal, 'SIGKILL');
    const next = producer(ch, { ID: '2', COUNT: '10', SPREAD: '20' });
    const order = await drain(rx, 10);
    assert.equal(order.next.get(2), 10);
    assertClean(await next);
  });

  it('a producer killed between moving the tail and writing its claim: unblocked after unblockAfter', {
    timeout: 60_000,
  }, async () => {
    using ch = Channel.create({ capacity: 4096 });
    const rx = ch.consumer({ spin: 0, unblockAfter: 300 });
    const died = await producer(ch, { MODE: 'tail-and-die' });
    assert.equal(died.signal, 'SIGKILL');
    const next = producer(ch, { ID: '2', COUNT: '10', SPREAD: '20' });
    const order = await drain(rx, 10);
    assert.equal(order.next.get(2), 10);
    assertClean(await next);
  });

  it('kill -9 at random points, hundreds of rounds: no torn or duplicated record, and the ring goes on', {
    timeout: 180_000,
  }, async () => {
    using ch = Channel.create({ capacity: 8192, maxMessage: 1000 });
    const rx = ch.consumer({ spin: 0, unblockAfter: 2000 });
    const order = new Order();
    let done = false;
    const reading = (async () => {
      for await (const m of rx) {
        if (m.type === 9) break;
        order.see(m.view);
      }
      done = true;
    })();
    const started = performance.now();
    let rounds = 0;
    let seed = 99;
    for (; rounds < 200 && performance.now() - started < 60_000; rounds++) {
      const child = start(ch, process.execPath, [producerScript], {
        MODE: 'claim',
        ID: String(100 + rounds),
        SPREAD: '900',
      });
      const result = ended(child);
      // A producer that ends before it is ready fails the test with its stderr, not a hang.
      const ready = await Promise.race([
        new Promise<boolean>((go) => child.stdout?.once('data', () => go(true))),
        result.then(() => false),
      ]);
      if (!ready) {
        const early = await result;
        assert.fail(`producer ${rounds} ended before it was ready (${early.signal ?? early.status}):\n${early.stderr}`);
      }
      seed = (seed * 1103515245 + 12345) >>> 0;
      await new Promise((r) => setTimeout(r, seed % 20));
      child.kill('SIGKILL');
      assert.equal((await result).signal, 'SIGKILL');
    }
    assert.ok(rounds >= 50, `only ${rounds} rounds in the time allowed`);
    const last = Buffer.alloc(12);
    fill(last, 1, 0);
    const tx = ch.producer();
    await tx.send(last);
    await tx.send(Buffer.alloc(0), { type: 9 });
    await reading;
    assert.ok(done);
    assert.equal(order.next.get(1), 1, 'a new producer is heard after every kill');
    // How many records the killed producers committed depends on where the kills landed (a
    // claim killed before its first store holds the head for unblockAfter): only that some did.
    assert.ok(order.count > 1, `${order.count} records from ${rounds} killed producers`);
  });
});
