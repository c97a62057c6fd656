// The smoke suite: every public entry point of memmap once, with asserted results, in plain
// JavaScript so that it runs unchanged under Node, Bun and Deno. test/runtimes/matrix.ts runs
// it under each runtime; `node test/runtimes/smoke.mjs` runs it here.
//
// It ends with the line 'N passed, N failed' and a line 'features: {...}' that the matrix
// reads to fill the README's runtime table.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const memmapUrl = new URL('../../dist/src/index.js', import.meta.url).href;
const {
  Condition,
  Event,
  MemmapError,
  Mutex,
  NamedSemaphore,
  Semaphore,
  SharedMemory,
  createNpy,
  evict,
  faultCounters,
  faultStats,
  fileResidency,
  futex,
  mapAnonymous,
  mapArray,
  mapFile,
  numaNodes,
  openNpy,
  openSafetensors,
  pageSize,
  prefetch,
  saveNpy,
  saveSafetensors,
} = await import(memmapUrl);

const dir = mkdtempSync(join(tmpdir(), 'memmap-smoke-'));
const results = [];
const features = {};

async function check(name, fn) {
  try {
    await fn();
    results.push({ name, ok: true });
  } catch (error) {
    results.push({ name, ok: false, error });
  }
}

function throwsCode(fn, code) {
  assert.throws(fn, (e) => e.code === code);
}

function fileWith(name, data) {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

await check("mapFile 'read': the file's bytes, zero copy", () => {
  const data = Buffer.alloc(3 * pageSize + 5);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const m = mapFile(fileWith('read.bin', data));
  assert.ok(m.buffer.equals(data));
  assert.equal(m.mode, 'read');
  m.close();
});

await check("mapFile 'write': writes reach the file; flush and flushAsync", async () => {
  const path = fileWith('write.bin', Buffer.alloc(2 * pageSize));
  const m = mapFile(path, { mode: 'write' });
  m.buffer.write('smoke', 4100);
  m.flush();
  await m.flushAsync({ offset: 4000, length: 200 });
  assert.equal(readFileSync(path).toString('latin1', 4100, 4105), 'smoke');
  m.close();
});

await check("mapFile 'copy': the file never changes", () => {
  const path = fileWith('copy.bin', 'unchanged');
  const m = mapFile(path, { mode: 'copy' });
  m.buffer.fill(0);
  assert.equal(m.buffer[0], 0);
  m.close();
  assert.equal(readFileSync(path, 'utf8'), 'unchanged');
});

await check('mapFile at unaligned offsets, grow, and an empty file', () => {
  const path = fileWith('offsets.bin', Buffer.from('0123456789'.repeat(1000)));
  for (const offset of [1, 4095, 4097, 9990]) {
    const m = mapFile(path, { offset, length: 10 });
    assert.equal(m.buffer.toString(), '0123456789'.repeat(1001).slice(offset % 10, (offset % 10) + 10));
    m.close();
  }
  const grown = mapFile(path, { mode: 'write', offset: 20000, length: 10, grow: true });
  assert.equal(statSync(path).size, 20010);
  grown.close();
  const empty = mapFile(fileWith('empty.bin', ''));
  assert.equal(empty.length, 0);
  empty.close();
});

await check('lines(), records(), split() and createReadStream(): zero-copy reads of a mapping', async () => {
  const m = mapFile(fileWith('lines.txt', 'one\r\ntwo\n\nthree'));
  assert.deepEqual([...m.lines()], ['one', 'two', '', 'three']);
  assert.deepEqual([...m.lines({ start: 1 })], ['two', '', 'three']);
  const raw = [...m.lines({ raw: true })];
  assert.equal(raw[1].buffer, m.buffer.buffer);
  const lines = [];
  for await (const line of m.lines()) lines.push(line);
  assert.deepEqual(lines, ['one', 'two', '', 'three']);
  assert.deepEqual(
    [...m.records(5)].map((r) => r.toString()),
    ['one\r\n', 'two\n\n', 'three'],
  );
  assert.deepEqual(
    [...m.split('\n')].map((p) => p.toString()),
    ['one\r', 'two', '', 'three'],
  );
  const chunks = [];
  for await (const chunk of m.createReadStream({ highWaterMark: 4 })) chunks.push(chunk);
  assert.equal(Buffer.concat(chunks).toString(), 'one\r\ntwo\n\nthree');
  throwsCode(() => m.lines({ encoding: 'utf16le' }), 'ERR_INVALID_ARG_VALUE');
  const it = m.lines();
  it.next();
  m.close();
  throwsCode(() => it.next(), 'ERR_MEMMAP_CLOSED');
});

await check('mapAnonymous: private and shared zero-filled memory', () => {
  const priv = mapAnonymous(pageSize + 1);
  assert.equal(priv.buffer.indexOf(1), -1);
  priv.buffer.fill(3);
  priv.close();
  const shared = mapAnonymous(pageSize, { shared: true });
  shared.buffer[0] = 9;
  assert.equal(shared.buffer[0], 9);
  shared.close();
});

await check('close: detaches the Buffer; later calls throw ERR_MEMMAP_CLOSED', () => {
  const m = mapFile(fileWith('close.bin', 'closing'));
  const buffer = m.buffer;
  m.close();
  m.close();
  assert.equal(buffer.length, 0);
  assert.equal(buffer[0], undefined);
  throwsCode(() => m.buffer, 'ERR_MEMMAP_CLOSED');
  throwsCode(() => m.flush(), 'ERR_MEMMAP_CLOSED');
});

await check('the crash guard: a file truncated under a mapping reads as zeros and reports ERR_MEMMAP_TRUNCATED', () => {
  const path = fileWith('truncated.bin', Buffer.alloc(4 * pageSize, 5));
  const m = mapFile(path, { mode: 'write' });
  const b = m.buffer;
  truncateSync(path, pageSize);
  let sum = 0;
  for (let i = 0; i < b.length; i += 512) sum += b[i];
  b[3 * pageSize] = 1;
  assert.equal(sum, 5 * (pageSize / 512));
  assert.equal(m.faulted, true);
  assert.ok(faultStats().absorbed > 0);
  throwsCode(() => m.flush(), 'ERR_MEMMAP_TRUNCATED');
  m.remap();
  assert.equal(m.length, pageSize);
  assert.equal(m.faulted, false);
  truncateSync(path, 0);
  void m.buffer[10];
  throwsCode(() => m.close(), 'ERR_MEMMAP_TRUNCATED');
  assert.equal(m.closed, true);
  features.crashGuard = true;
});

await check('SharedMemory: named and anonymous, raw bytes another process sees', () => {
  const name = `/memmap-smoke-${process.pid}`;
  const shm = SharedMemory.create(name, pageSize, { exclusive: true });
  shm.buffer.write('shared');
  const peer = SharedMemory.open(name, { readOnly: true });
  assert.equal(peer.buffer.toString('latin1', 0, 6), 'shared');
  assert.ok(SharedMemory.list().some((info) => info.name === name && info.size === pageSize));
  peer.close();
  shm.unlink();
  throwsCode(() => SharedMemory.open(name), 'ENOENT');
  shm.close();
  const anon = SharedMemory.anonymous(pageSize);
  anon.seal('shrink');
  assert.deepEqual(anon.seals, ['shrink']);
  const again = SharedMemory.fromFd(anon.fd);
  again.buffer[1] = 9;
  assert.equal(anon.buffer[1], 9);
  again.close();
  anon.close();
  features.sharedMemory = true;
});

await check('futex: wait, wake and waitAsync on shared memory', async () => {
  const shm = SharedMemory.anonymous(pageSize);
  // An Int32Array over the Buffer works where sharedBuffer() does not (Deno).
  const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, pageSize / 4);
  assert.equal(futex.wait(words, 0, 1, 5), 'not-equal');
  assert.equal(futex.wait(words, 0, 0, 5), 'timed-out');
  const waiting = futex.waitAsync(words, 0, 0, { timeout: 10000 });
  setTimeout(() => {
    Atomics.store(words, 0, 1);
    futex.wake(words, 0);
  }, 20);
  assert.equal(await waiting, 'ok');
  await assert.rejects(futex.waitAsync(words, 0, 1, { timeout: 10 }), (e) => e.code === 'ERR_MEMMAP_TIMEOUT');
  shm.close();
  features.futex = true;
});

await check('Mutex across two processes, owner-died after the holder is killed, and a Semaphore', async () => {
  const name = `/memmap-smoke-mutex-${process.pid}`;
  const shm = SharedMemory.create(name, pageSize);
  const mutex = Mutex.create(shm, 0);
  const child = JSON.parse(process.env.MEMMAP_SMOKE_CHILD ?? '[]');
  const script = join(dir, 'mutex-child.mjs');
  writeFileSync(
    script,
    `const { Mutex, SharedMemory } = await import(${JSON.stringify(memmapUrl)});
     const shm = SharedMemory.open(${JSON.stringify(name)});
     Mutex.attach(shm, 0).lock();
     process.stdout.write('locked');
     setInterval(() => {}, 1000);`,
  );
  const holder = spawn(process.execPath, [...child, script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((done) => holder.stdout.once('data', done));
  assert.equal(mutex.tryLock(), false);
  holder.kill('SIGKILL');
  await new Promise((done) => holder.once('exit', done));
  assert.equal(await mutex.lockAsync({ timeout: 5000 }), 'owner-died');
  mutex.unlock();
  assert.equal(mutex.lock(), 'acquired');
  mutex.unlock();
  const sem = Semaphore.create(shm, 16, 0);
  const waiting = sem.waitAsync({ timeout: 5000 });
  sem.post();
  await waiting;
  assert.equal(sem.tryWait(), false);
  shm.unlink();
  shm.close();
  features.mutex = true;
});

await check('Condition and Event in shared memory, sync and async, with spin', async () => {
  const shm = SharedMemory.anonymous(pageSize);
  const mutex = Mutex.create(shm, 0);
  const condition = Condition.create(shm, 64);
  const event = Event.create(shm, 80);
  mutex.lock();
  setTimeout(() => {
    mutex.lock();
    condition.notify();
    mutex.unlock();
  }, 20);
  assert.equal(await condition.waitAsync(mutex, { timeout: 5000 }), 'acquired');
  assert.equal(mutex.locked, true);
  throwsCode(() => condition.wait(mutex, { timeout: 10 }), 'ERR_MEMMAP_TIMEOUT');
  mutex.unlock();
  setTimeout(() => event.set(), 20);
  await event.waitAsync({ timeout: 5000, spin: 10 });
  event.wait({ spin: 10 });
  event.reset();
  throwsCode(() => event.wait({ timeout: 10 }), 'ERR_MEMMAP_TIMEOUT');
  shm.close();
  features.condition = true;
});

await check('NamedSemaphore: the sem_open family, post, wait, waitAsync woken by a post', async () => {
  const name = `/memmap-smoke-sem-${process.pid}`;
  const sem = NamedSemaphore.create(name, 1, { exclusive: true });
  const other = NamedSemaphore.open(name);
  assert.equal(other.value, 1);
  other.wait({ timeout: 1000 });
  assert.equal(sem.tryWait(), false);
  setTimeout(() => other.post(), 20);
  await sem.waitAsync({ timeout: 5000 });
  throwsCode(() => NamedSemaphore.create(name, 0, { exclusive: true }), 'EEXIST');
  NamedSemaphore.unlink(name);
  other.close();
  sem.close();
  throwsCode(() => sem.post(), 'ERR_MEMMAP_CLOSED');
  throwsCode(() => NamedSemaphore.open(name), 'ENOENT');
  features.namedSemaphore = true;
});

await check(
  'tuning: advise, protect, resize, flags, NUMA, lock, residency, memoryStats, the page cache of files, fault counters',
  () => {
    const path = fileWith('tuning.bin', Buffer.alloc(8 * pageSize, 1));
    evict(path);
    prefetch(path);
    const m = mapFile(path);
    m.advise('random');
    m.advise('willneed', { offset: 1, length: pageSize });
    throwsCode(() => m.advise('free'), 'EINVAL');
    const before = faultCounters();
    let sum = 0;
    for (let i = 0; i < m.length; i += pageSize) sum += m.buffer[i];
    assert.equal(sum, 8);
    assert.ok(faultCounters().minor >= before.minor);
    assert.equal(m.residency().resident, 8);
    assert.equal(fileResidency(path).resident, 8);
    m.lock();
    assert.equal(m.memoryStats().locked, 8 * pageSize);
    const guarded = mapFile(path, { mode: 'write' });
    const bytes = guarded.buffer;
    guarded.protect('read', { offset: pageSize, length: pageSize });
    bytes[pageSize + 1] = 42; // a stray write: absorbed, never in the file
    assert.equal(guarded.faulted, true);
    throwsCode(() => guarded.flush(), 'ERR_MEMMAP_PROTECTION');
    throwsCode(() => guarded.close(), 'ERR_MEMMAP_PROTECTION');
    assert.equal(readFileSync(path)[pageSize + 1], 1);
    features.protect = true;
    const growing = mapFile(fileWith('resize.bin', Buffer.from('log')), { mode: 'write' });
    growing.resize(2 * pageSize);
    growing.buffer.write('end', 2 * pageSize - 3);
    growing.resize(2 * pageSize + 1);
    growing.flush();
    assert.equal(statSync(join(dir, 'resize.bin')).size, 2 * pageSize + 1);
    assert.equal(growing.buffer.toString('latin1', 0, 3), 'log');
    growing.flush({ async: true, invalidate: true });
    growing.close();
    const huge = mapAnonymous(4 << 20, { transparentHugePages: true, noReserve: true });
    assert.equal(huge.address % BigInt(2 << 20), 0n);
    throwsCode(() => mapAnonymous(pageSize, { hint: huge.address }), 'EEXIST');
    huge.bind([numaNodes()[0].id], { policy: 'interleave' });
    huge.prefault();
    assert.equal(huge.residency().resident, (4 << 20) / pageSize);
    huge.close();
    features.placement = true;
    m.unlock();
    assert.equal(m.memoryStats().rss, 8 * pageSize);
    m.close();
    features.tuning = true;
  },
);

await check('errors: Node-style system errors and argument errors', () => {
  assert.throws(
    () => mapFile(join(dir, 'missing')),
    (e) => e.code === 'ENOENT' && e.syscall === 'open' && e.errno < 0,
  );
  throwsCode(() => mapFile(dir), 'EISDIR');
  throwsCode(() => mapFile(fileWith('short.bin', 'x'), { length: 2 }), 'ERR_MEMMAP_OUT_OF_RANGE');
  throwsCode(() => mapFile(join(dir, 'short.bin'), { offset: 1n }), 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => mapFile(join(dir, 'short.bin'), { offset: -1 }), 'ERR_OUT_OF_RANGE');
  throwsCode(() => mapFile(join(dir, 'short.bin'), { lenght: 1 }), 'ERR_INVALID_ARG_VALUE');
  const fd = openSync(join(dir, 'short.bin'), 'r');
  throwsCode(() => mapFile(fd, { mode: 'write' }), 'EACCES');
  closeSync(fd);
});

await check('sharedBuffer: Atomics on the mapping, or ERR_MEMMAP_UNSUPPORTED naming the runtime', () => {
  const m = mapFile(fileWith('shared.bin', Buffer.alloc(pageSize)), { mode: 'write' });
  try {
    const shared = m.sharedBuffer();
    Atomics.add(new Int32Array(shared), 0, 5);
    assert.equal(m.buffer.readInt32LE(0), 5);
    features.sharedBuffer = true;
    // Which of the two ways made it (src/native.ts): the runtime's Node-API call, or the
    // V8 helper addon. Asked of the core addon directly: undefined means the helper was used.
    const core = createRequire(import.meta.url)('../../build/Release/memmap.node');
    const probe = core.mapAnonymous(pageSize, true, 0, 0);
    features.sharedBufferVia = core.sharedView(probe, 0, pageSize) === undefined ? 'V8 helper' : 'Node-API';
    core.close(probe);
    m.close();
    assert.equal(new Int32Array(shared)[0], 0, 'a stale SharedArrayBuffer reads zeros after close');
  } catch (error) {
    if (!(error instanceof MemmapError) || error.code !== 'ERR_MEMMAP_UNSUPPORTED') throw error;
    assert.match(error.message, /Bun|Deno|Node/);
    features.sharedBuffer = false;
    m.close();
  }
});

if (!process.versions.bun && !process.versions.deno) {
  await check('the V8 helper addon (the fallback for Node.js without the Node-API call) works here', () => {
    // Loaded and driven directly, as src/native.ts does when the runtime lacks the call.
    const require = createRequire(import.meta.url);
    const core = require('../../build/Release/memmap.node');
    const helper = { exports: {} };
    process.dlopen(helper, new URL('../../build/Release/memmap_sab.v8addon', import.meta.url).pathname);
    const handle = core.mapAnonymous(pageSize, true, 0, 0);
    const [address, deleter, hint] = core.sharedViewParts(handle, 0, pageSize);
    const shared = helper.exports.create(address, pageSize, deleter, hint);
    new Uint8Array(shared)[3] = 33;
    assert.equal(shared.byteLength, pageSize);
    assert.equal(new Uint8Array(shared)[3], 33);
    core.close(handle);
    assert.equal(new Uint8Array(shared)[3], 0, 'zeros after close');
    features.v8Helper = true;
  });
}

await check('another process of the same runtime sees writes through its own mapping', () => {
  const path = fileWith('cross.bin', Buffer.alloc(pageSize));
  const m = mapFile(path, { mode: 'write' });
  m.buffer.write('parent wrote this');
  const child = JSON.parse(process.env.MEMMAP_SMOKE_CHILD ?? '[]');
  const script = join(dir, 'child.mjs');
  writeFileSync(
    script,
    `const { mapFile } = await import(${JSON.stringify(memmapUrl)});
     const m = mapFile(${JSON.stringify(path)}, { mode: 'write' });
     process.stdout.write(m.buffer.toString('latin1', 0, 17));
     m.buffer.write('child wrote this', 100);
     m.close();`,
  );
  const run = spawnSync(process.execPath, [...child, script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, 'parent wrote this');
  assert.equal(m.buffer.toString('latin1', 100, 116), 'child wrote this');
  m.close();
});

await check('typed views: mapping.view, mapArray, alignment refused or copied', () => {
  const data = Buffer.alloc(64);
  data.writeDoubleLE(2.5, 8);
  const path = fileWith('view.bin', data);
  const m = mapFile(path);
  assert.equal(m.view(Float64Array, { offset: 8, length: 1 })[0], 2.5);
  assert.equal(m.view(BigUint64Array).length, 8);
  throwsCode(() => m.view(Float64Array, { offset: 4 }), 'ERR_MEMMAP_MISALIGNED');
  assert.equal(m.view(Uint32Array, { offset: 2, length: 1, copy: true }).length, 1);
  throwsCode(() => m.view(Float64Array, { length: 9 }), 'ERR_MEMMAP_OUT_OF_RANGE');
  m.close();
  const mapped = mapArray(path, Float64Array, { offset: 8, length: 2 });
  assert.equal(mapped.array[0], 2.5);
  mapped.mapping.close();
  features.float16Array = typeof globalThis.Float16Array === 'function';
});

await check('.npy and safetensors: write, open as views of one mapping, refuse a bad header', () => {
  const npy = join(dir, 'a.npy');
  saveNpy(npy, new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  const a = openNpy(npy);
  assert.deepEqual([a.dtype, a.shape, a.fortranOrder, a.data[5]], ['float32', [2, 3], false, 6]);
  a.mapping.close();
  const created = createNpy(join(dir, 'b.npy'), 'int64', [2]);
  created.data[1] = -7n;
  created.mapping.close();
  assert.equal(openNpy(join(dir, 'b.npy')).data[1], -7n);
  const st = join(dir, 'a.safetensors');
  saveSafetensors(st, { w: { shape: [2], data: new Float64Array([0.5, 1.5]) } }, { format: 'pt' });
  const file = openSafetensors(st);
  assert.equal(file.get('w').data[1], 1.5);
  assert.equal(file.metadata.get('format'), 'pt');
  file.close();
  throwsCode(() => openNpy(fileWith('bad.npy', Buffer.from('not npy at all'))), 'ERR_MEMMAP_FORMAT_MAGIC');
  throwsCode(() => openSafetensors(fileWith('bad.safetensors', Buffer.alloc(4))), 'ERR_MEMMAP_HEADER_TOO_SMALL');
});

rmSync(dir, { recursive: true, force: true });

const failed = results.filter((r) => !r.ok);
for (const r of results) {
  console.log(`${r.ok ? 'ok' : 'FAILED'} - ${r.name}`);
  if (!r.ok) console.log(String(r.error?.stack ?? r.error).replace(/^/gm, '    '));
}
console.log(`features: ${JSON.stringify(features)}`);
console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
process.exitCode = failed.length === 0 ? 0 : 1;
