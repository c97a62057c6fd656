import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mapAnonymous, mapFile, pageSize } from '../src/index.js';
import { assertThrowsCode, tempDir } from './helpers/index.js';

const dir = tempDir();

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

describe('huge pages', () => {
  it("hugePages: '2MB' maps reserved huge pages, or says how to reserve them", () => {
    const free = Number(/^HugePages_Free:\s+(\d+)/m.exec(read('/proc/meminfo'))?.[1] ?? 0);
    if (free >= 2) {
      using m = mapAnonymous(3 * 1024 * 1024, { hugePages: '2MB' });
      m.buffer.fill(1);
      assert.equal(m.length, 3 * 1024 * 1024);
      return;
    }
    assert.throws(
      () => mapAnonymous(4 * 1024 * 1024, { hugePages: '2MB' }),
      (e: NodeJS.ErrnoException) =>
        e.code === 'ENOMEM' && /HugePages_Free: \d+/.test(e.message) && e.message.includes('/proc/sys/vm/nr_hugepages'),
    );
  });

  it("hugePages: '1GB' without reserved 1 GB pages names the file that reserves them", (t) => {
    const free = Number(read('/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages') || 0);
    if (free > 0) {
      t.skip(`this machine has ${free} free 1 GB huge pages, so the mapping would succeed`);
      return;
    }
    assert.throws(
      () => mapAnonymous(1024 * 1024, { hugePages: '1GB' }),
      (e: NodeJS.ErrnoException) =>
        ['ENOMEM', 'EINVAL'].includes(String(e.code)) && e.message.includes('hugepages-1048576kB/nr_hugepages'),
    );
  });

  it('transparentHugePages: the memory is backed by huge pages where the kernel allows it', (t) => {
    const mode = /\[(\w+)\]/.exec(read('/sys/kernel/mm/transparent_hugepage/enabled'))?.[1];
    using m = mapAnonymous(8 * 1024 * 1024, { transparentHugePages: true });
    assert.equal(m.address % BigInt(2 * 1024 * 1024), 0n, 'the range starts on a 2 MiB boundary');
    m.buffer.fill(1);
    if (mode === 'never') {
      t.diagnostic('transparent huge pages are off on this machine');
      assert.equal(m.memoryStats().anonHugePages, 0);
    } else {
      assert.ok(m.memoryStats().anonHugePages >= 2 * 1024 * 1024, `AnonHugePages ${m.memoryStats().anonHugePages}`);
    }
  });

  it('option errors', () => {
    assertThrowsCode(() => mapAnonymous(pageSize, { hugePages: '4MB' as '2MB' }), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(
      () => mapAnonymous(pageSize, { hugePages: '2MB', transparentHugePages: true }),
      'ERR_INVALID_ARG_VALUE',
    );
    assertThrowsCode(
      () => mapAnonymous(pageSize, { transparentHugePages: 1 as unknown as boolean }),
      'ERR_INVALID_ARG_TYPE',
    );
  });
});

describe('noReserve, hint, syncMapping, flush options', () => {
  it('noReserve: a terabyte of private memory costs only the pages written', (t) => {
    const overcommit = read('/proc/sys/vm/overcommit_memory').trim();
    if (overcommit === '0') {
      // The kernel's heuristic refuses an obvious overcommit up front...
      assertThrowsCode(() => mapAnonymous(2 ** 40), 'ENOMEM');
    }
    // ...and takes it with MAP_NORESERVE, unless overcommit is forbidden outright (mode 2).
    if (overcommit === '2') {
      t.skip('vm.overcommit_memory is 2 here: the kernel refuses overcommit even with MAP_NORESERVE');
      return;
    }
    using m = mapAnonymous(2 ** 40, { noReserve: true });
    const middle = new Uint8Array(m.sharedBuffer(), 2 ** 39, 1);
    middle[0] = 1;
    assert.equal(middle[0], 1);
    // Only the page written is there (the figures of memoryStats may include a neighbouring
    // area the kernel merged with this one, so count pages directly).
    assert.equal(m.residency({ offset: 2 ** 39 - 64 * pageSize, length: 128 * pageSize }).resident, 1);
    assert.equal(m.residency({ offset: 0, length: 2 ** 30 }).resident, 0);
    const stats = m.memoryStats();
    if (stats.exact) assert.ok(stats.rss <= 64 * 1024, `rss ${stats.rss}`);
    else t.diagnostic('the kernel merged this area with a neighbour: memoryStats() figures are not its own');
  });

  it('hint: a mapping placed at a free address lands there; a taken one is EEXIST, never replaced', () => {
    using first = mapAnonymous(4 * pageSize);
    first.buffer.fill(9);
    const next = first.address + BigInt(4 * pageSize);
    // The pages after `first` are usually free; take them, and then try again.
    let placed: ReturnType<typeof mapAnonymous> | null = null;
    try {
      placed = mapAnonymous(pageSize, { hint: next });
    } catch (error) {
      assert.equal((error as NodeJS.ErrnoException).code, 'EEXIST');
    }
    if (placed) {
      assert.equal(placed.address, next);
      placed.close();
    }
    assert.throws(
      () => mapAnonymous(pageSize, { hint: first.address }),
      (e: NodeJS.ErrnoException) => e.code === 'EEXIST' && /never replaces an existing mapping/.test(e.message),
    );
    assert.equal(first.buffer[0], 9, 'the mapping that was there is untouched');
    const path = join(dir, 'placed.bin');
    writeFileSync(path, Buffer.alloc(pageSize, 4));
    assertThrowsCode(() => mapFile(path, { hint: Number(first.address) }), 'EEXIST');
    assertThrowsCode(() => mapAnonymous(pageSize, { hint: 12345 }), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => mapAnonymous(pageSize, { hint: 'here' as unknown as number }), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => mapAnonymous(pageSize, { hint: -4096 }), 'ERR_OUT_OF_RANGE');
  });

  it('syncMapping on a file system without DAX: EOPNOTSUPP, explained; it needs mode write', () => {
    const path = join(dir, 'sync.bin');
    writeFileSync(path, Buffer.alloc(pageSize));
    assert.throws(
      () => mapFile(path, { mode: 'write', syncMapping: true }),
      (e: NodeJS.ErrnoException) =>
        ['ENOTSUP', 'EOPNOTSUPP', 'EINVAL'].includes(String(e.code)) && /DAX/.test(e.message),
    );
    assertThrowsCode(() => mapFile(path, { syncMapping: true } as never), 'ERR_INVALID_ARG_VALUE');
  });

  it('flush({ async }) schedules, flush({ invalidate }) and flushAsync({ invalidate }) write; options are checked', async () => {
    const path = join(dir, 'flush.bin');
    writeFileSync(path, Buffer.alloc(2 * pageSize));
    using m = mapFile(path, { mode: 'write' });
    m.buffer.write('async', 0);
    m.flush({ async: true });
    m.buffer.write('invalidate', pageSize);
    m.flush({ invalidate: true, offset: pageSize, length: 10 });
    await m.flushAsync({ invalidate: true });
    assert.equal(readFileSync(path).toString('latin1', pageSize, pageSize + 10), 'invalidate');
    assertThrowsCode(() => m.flush({ async: 1 as unknown as boolean }), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => m.flush({ sync: true } as object), 'ERR_INVALID_ARG_VALUE');
    await assert.rejects(m.flushAsync({ async: true } as object), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});
