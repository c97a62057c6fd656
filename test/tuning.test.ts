import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  type Advice,
  evict,
  faultCounters,
  fileResidency,
  mapAnonymous,
  mapFile,
  pageSize,
  prefetch,
  SharedMemory,
} from '../src/index.js';
import { assertThrowsCode, entry, runModule, tempDir } from './helpers/index.js';

const dir = tempDir();
const MiB = 1024 * 1024;

function fileOf(name: string, size: number, fill = 7): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(size, fill));
  return path;
}

function vmLckKiB(): number {
  return Number(/^VmLck:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
}

const ALL: Advice[] = [
  'normal',
  'random',
  'sequential',
  'willneed',
  'dontneed',
  'free',
  'remove',
  'hugepage',
  'nohugepage',
  'dontfork',
  'dofork',
  'populate-read',
  'populate-write',
  'cold',
  'pageout',
];

describe('advise', () => {
  it('every advice on every kind of mapping either succeeds or fails with a code and a reason', () => {
    const path = fileOf('advise.bin', 4 * pageSize);
    const outcomes: string[] = [];
    for (const [kind, make] of [
      ['private anonymous', () => mapAnonymous(4 * pageSize)],
      ['shared anonymous', () => mapAnonymous(4 * pageSize, { shared: true })],
      ["file 'read'", () => mapFile(path)],
      ["file 'write'", () => mapFile(path, { mode: 'write' })],
      ["file 'copy'", () => mapFile(path, { mode: 'copy' })],
    ] as const) {
      for (const advice of ALL) {
        using m = make();
        try {
          m.advise(advice, { offset: 1, length: 2 * pageSize });
          outcomes.push(`${kind} ${advice}: ok`);
        } catch (error) {
          const err = error as NodeJS.ErrnoException;
          assert.match(String(err.code), /^E[A-Z]+$/, `${kind} ${advice}: ${err.message}`);
          assert.equal(err.syscall, 'madvise');
          assert.ok(err.message.includes(';'), `a reason is given: ${err.message}`);
          outcomes.push(`${kind} ${advice}: ${err.code}`);
        }
      }
    }
    // What the kernel decides for sure, whatever its version: the ones that must fail do.
    assert.ok(outcomes.includes("file 'read' free: EINVAL"));
    assert.ok(outcomes.includes('private anonymous remove: EINVAL'));
    for (const advice of ['normal', 'random', 'sequential', 'willneed', 'dontneed', 'dontfork', 'dofork']) {
      for (const kind of ['private anonymous', "file 'read'", "file 'write'"]) {
        assert.ok(outcomes.includes(`${kind} ${advice}: ok`), `${kind} ${advice}: ${outcomes.join('\n')}`);
      }
    }
  });

  it("the advices that discard data: 'dontneed', 'free' and 'remove'", () => {
    using anon = mapAnonymous(2 * pageSize);
    anon.buffer.fill(1);
    anon.advise('dontneed');
    assert.equal(anon.buffer.indexOf(1), -1, 'private anonymous memory reads zeros after dontneed');

    const path = fileOf('copy.bin', 2 * pageSize, 5);
    using copy = mapFile(path, { mode: 'copy' });
    copy.buffer.fill(9);
    copy.advise('dontneed');
    assert.equal(copy.buffer[0], 5, "a 'copy' mapping reads the file again after dontneed");

    using shared = mapFile(path, { mode: 'write' });
    shared.buffer[0] = 6;
    shared.advise('dontneed');
    assert.equal(shared.buffer[0], 6, 'a shared mapping loses nothing');

    const name = `/memmap-remove-${process.pid}`;
    using shm = SharedMemory.create(name, 2 * pageSize);
    try {
      shm.buffer.fill(4);
      shm.advise('remove', { offset: pageSize, length: pageSize });
      using other = SharedMemory.open(name, { readOnly: true });
      assert.equal(other.buffer[0], 4);
      assert.equal(other.buffer[pageSize], 0, "'remove' frees the pages for every process");
    } finally {
      SharedMemory.unlink(name);
    }
  });

  it('argument and state errors', () => {
    const m = mapAnonymous(pageSize);
    assertThrowsCode(() => m.advise('nonsense' as Advice), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.advise('random', { offset: pageSize + 1 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => m.advise('remove'), 'EINVAL');
    m.close();
    assertThrowsCode(() => m.advise('random'), 'ERR_MEMMAP_CLOSED');
  });
});

describe('lock and unlock', () => {
  it('lock shows in memoryStats().locked and VmLck, and goes away after unlock', () => {
    using m = mapAnonymous(MiB);
    const before = vmLckKiB();
    m.lock();
    assert.equal(m.memoryStats().locked, MiB);
    assert.equal(vmLckKiB() - before, 1024);
    m.unlock();
    assert.equal(m.memoryStats().locked, 0);
    assert.equal(vmLckKiB(), before);
  });

  it('onFault locks only the pages touched', () => {
    using m = mapAnonymous(MiB);
    m.lock({ onFault: true });
    assert.equal(m.memoryStats().locked, 0);
    for (let i = 0; i < MiB / 2; i += pageSize) m.buffer[i] = 1;
    assert.equal(m.memoryStats().locked, MiB / 2);
    m.unlock({ offset: 0, length: MiB / 4 });
    assert.equal(m.memoryStats().locked, MiB / 4);
    assertThrowsCode(() => m.lock({ onFault: 1 as unknown as boolean }), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => m.lock({ onfault: true } as object), 'ERR_INVALID_ARG_VALUE');
  });

  it('above a lowered RLIMIT_MEMLOCK without CAP_IPC_LOCK: ENOMEM naming the limit; EPERM at 0', () => {
    // The child lowers nothing itself: prlimit sets the limit, and dropping root (setuid to
    // 'nobody') drops CAP_IPC_LOCK, which would otherwise ignore the limit.
    const script = `
      const { mapAnonymous } = await import(process.env.MEMMAP);
      if (process.getuid() === 0) process.setuid(65534);
      const m = mapAnonymous(1 << 20);
      try { m.lock(); process.stdout.write('locked'); }
      catch (e) { process.stdout.write(JSON.stringify({ code: e.code, syscall: e.syscall, message: e.message })); }`;
    const run = (limit: string) =>
      spawnSync('prlimit', [`--memlock=${limit}`, process.execPath, '--input-type=module', '-e', script], {
        encoding: 'utf8',
        env: { ...process.env, MEMMAP: entry },
      });
    const low = run('65536:65536');
    assert.equal(low.status, 0, low.stderr);
    const error = JSON.parse(low.stdout) as { code: string; syscall: string; message: string };
    assert.equal(error.code, 'ENOMEM');
    assert.equal(error.syscall, 'mlock');
    assert.match(error.message, /RLIMIT_MEMLOCK/);
    assert.match(error.message, /soft 64 KiB, hard 64 KiB/);
    assert.match(error.message, /ulimit -l/);
    const zero = run('0:0');
    assert.equal(zero.status, 0, zero.stderr);
    const refused = JSON.parse(zero.stdout) as { code: string; message: string };
    assert.equal(refused.code, 'EPERM');
    assert.match(refused.message, /not permitted.*CAP_IPC_LOCK/);
  });
});

describe('residency, prefetch, evict, memoryStats, faultCounters', () => {
  it('a file evicted is near 0% resident; prefetched or read, 100%', async () => {
    const path = fileOf('cache.bin', 4 * MiB);
    evict(path);
    const cold = fileResidency(path);
    assert.equal(cold.pages, (4 * MiB) / pageSize);
    assert.ok(cold.resident <= cold.pages / 10, `after evict: ${cold.resident}/${cold.pages}`);
    assert.equal(cold.map.length, cold.pages);
    {
      using m = mapFile(path);
      assert.equal(m.residency().resident, cold.resident, 'the mapping sees the same page cache');
      let sum = 0;
      for (let i = 0; i < m.length; i += pageSize) sum += m.buffer[i] as number;
      assert.equal(sum, 7 * m.residency().pages);
      assert.equal(m.residency().resident, m.residency().pages);
      assert.deepEqual(m.residency({ offset: pageSize + 1, length: 2 }), {
        pageSize,
        pages: 1,
        resident: 1,
        map: new Uint8Array([1]),
      });
    }
    evict(path);
    prefetch(path, { offset: 0, length: 2 * MiB });
    // prefetch starts the reads and returns; they land within moments.
    let warm = fileResidency(path);
    for (let waited = 0; warm.resident < (2 * MiB) / pageSize && waited < 5000; waited += 10) {
      await new Promise((done) => setTimeout(done, 10));
      warm = fileResidency(path);
    }
    assert.ok(warm.resident >= (2 * MiB) / pageSize, `after prefetch: ${warm.resident}/${warm.pages}`);
    assert.equal(fileResidency(path, { offset: 2 * MiB + 5, length: 1 }).pages, 1);
  });

  it('errors: ENOENT, EISDIR, ERR_MEMMAP_OUT_OF_RANGE, bad options', () => {
    assertThrowsCode(() => fileResidency(join(dir, 'missing')), 'ENOENT');
    assertThrowsCode(() => evict(join(dir, 'missing')), 'ENOENT');
    assertThrowsCode(() => prefetch(dir), 'EISDIR');
    const path = fileOf('small.bin', 100);
    assertThrowsCode(() => fileResidency(path, { offset: 101 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => prefetch(path, { length: 101 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => fileResidency(path, { size: 1 } as object), 'ERR_INVALID_ARG_VALUE');
    assert.equal(fileResidency(fileOf('empty.bin', 0)).pages, 0);
  });

  it('memoryStats of a populated file mapping, and of a closed one', () => {
    const path = fileOf('stats.bin', MiB);
    const m = mapFile(path, { populate: true });
    const stats = m.memoryStats();
    assert.equal(stats.rss, MiB);
    // Pages this process alone maps count as private, whether or not they are dirty in the
    // page cache (this test has just written the file).
    assert.equal(stats.sharedClean + stats.sharedDirty + stats.privateClean + stats.privateDirty, MiB);
    assert.equal(stats.exact, true);
    assert.ok(stats.pss > 0 && stats.pss <= MiB);
    m.close();
    assertThrowsCode(() => m.memoryStats(), 'ERR_MEMMAP_CLOSED');
  });

  it('faultCounters counts the minor faults of touching new memory', () => {
    using m = mapAnonymous(256 * pageSize);
    const before = faultCounters();
    for (let i = 0; i < m.length; i += pageSize) m.buffer[i] = 1;
    const after = faultCounters();
    assert.ok(after.minor - before.minor >= 200, `${after.minor - before.minor} minor faults`);
    assert.ok(after.major >= before.major);
  });
});

describe('residency over more pages than one call answers for', () => {
  it('a 32 TiB sparse file and a 20 TiB reservation (over 2^32 pages each): ERR_MEMMAP_OUT_OF_RANGE, windows work, no abort', async () => {
    // In a child: before the bound, a map of more than 2^32 pages ended the process (SIGABRT).
    // /dev/shm is tmpfs, whose files may be far larger than ext4's 16 TiB.
    const path = `/dev/shm/memmap-huge-${process.pid}`;
    const result = await runModule(`
      const { mapFile, mapAnonymous, fileResidency } = await import(process.env.MEMMAP);
      const { writeFileSync, truncateSync, openSync, writeSync, closeSync, rmSync } = await import('node:fs');
      const path = ${JSON.stringify(path)};
      const size = 2 ** 45;
      writeFileSync(path, '');
      try {
        truncateSync(path, size);
        const fd = openSync(path, 'r+');
        writeSync(fd, 'near the end', size - 100, 'latin1');
        closeSync(fd);
        const codes = [];
        const m = mapFile(path);
        try { m.residency(); } catch (e) { codes.push(e.code); }
        try { fileResidency(path); } catch (e) { codes.push(e.code); }
        const a = mapAnonymous(2 ** 44 + 2 ** 42, { noReserve: true }); // 20 TiB: beside the 32 TiB, in 128 TiB of address space
        try { a.residency(); } catch (e) { codes.push(e.code); }
        const tail = m.residency({ offset: size - (1 << 20), length: 1 << 20 });
        const fileTail = fileResidency(path, { offset: size - (1 << 20) });
        const start = a.residency({ length: 1 << 20 });
        console.log(JSON.stringify({ codes, tail: [tail.pages, tail.resident], fileTail: [fileTail.pages, fileTail.resident], start: start.pages }));
        m.close();
        a.close();
      } finally {
        rmSync(path, { force: true });
      }
    `);
    assert.equal(result.status, 0, result.stderr);
    const out = JSON.parse(result.stdout) as { codes: string[]; tail: number[]; fileTail: number[]; start: number };
    assert.deepEqual(out.codes, ['ERR_MEMMAP_OUT_OF_RANGE', 'ERR_MEMMAP_OUT_OF_RANGE', 'ERR_MEMMAP_OUT_OF_RANGE']);
    const pages = (1 << 20) / pageSize;
    assert.deepEqual(out.tail, [pages, 1], 'the page written near the end is cached');
    assert.deepEqual(out.fileTail, [pages, 1]);
    assert.equal(out.start, pages);
  });

  it('the message says how to ask in windows', () => {
    using m = mapAnonymous(2 ** 39, { noReserve: true });
    assert.throws(
      () => m.residency(),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ERR_MEMMAP_OUT_OF_RANGE');
        assert.match(e.message, /at most 67108864 .*windows: \{ offset: k \* \d+, length: \d+ \} for k = 0 to 1\b/);
        return true;
      },
    );
    assert.equal(m.residency({ offset: 2 ** 38, length: 2 ** 38 }).pages, 2 ** 38 / pageSize);
  });
});
