import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evict, mapAnonymous, mapFile, numaNodes } from '../src/index.js';
import { assertThrowsCode, tempDir } from './helpers/index.js';

const dir = tempDir();
const MiB = 1024 * 1024;

/** The policy the kernel reports for the area starting at `address` (/proc/self/numa_maps). */
function policyAt(address: bigint): string | undefined {
  const line = readFileSync('/proc/self/numa_maps', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${address.toString(16)} `));
  return line?.split(' ')[1];
}

describe('NUMA', () => {
  it('numaNodes lists every CPU once and the memory of each node', () => {
    const nodes = numaNodes();
    assert.ok(nodes.length >= 1);
    assert.deepEqual(
      nodes.flatMap((n) => n.cpus).sort((a, b) => a - b),
      cpus().map((_, i) => i),
    );
    for (const node of nodes) {
      assert.ok(node.memoryTotal > 0 && node.memoryFree <= node.memoryTotal, JSON.stringify(node));
    }
    assert.equal(new Set(nodes.map((n) => n.id)).size, nodes.length);
  });

  it('bind sets the policy the kernel reports for the range, with every policy', () => {
    const [first] = numaNodes();
    const node = first?.id ?? 0;
    for (const [policy, shown] of [
      ['bind', `bind:${node}`],
      ['interleave', `interleave:${node}`],
      ['preferred', `prefer:${node}`],
    ] as const) {
      using m = mapAnonymous(4 * MiB);
      m.bind([node], { policy, move: true });
      assert.equal(policyAt(m.address), shown);
    }
    using m = mapAnonymous(4 * MiB);
    m.bind([node]);
    assert.equal(policyAt(m.address), `bind:${node}`, "'bind' is the default");
    using twice = mapAnonymous(4 * MiB);
    twice.bind([node, node]);
    assert.equal(policyAt(twice.address), `bind:${node}`, 'a node named twice is that node, not the next');
  });

  it('prefault allocates every page now, on the node asked for; a file is read in', () => {
    using anon = mapAnonymous(8 * MiB);
    // Pages counted directly: memoryStats() may include an area the kernel merged with this one.
    assert.equal(anon.residency().resident, 0);
    anon.prefault({ onNode: numaNodes()[0]?.id ?? 0 });
    assert.equal(anon.residency().resident, (8 * MiB) / 4096);
    const path = join(dir, 'prefault.bin');
    writeFileSync(path, Buffer.alloc(2 * MiB, 1));
    evict(path);
    using file = mapFile(path);
    file.prefault({ offset: MiB });
    const { map } = file.residency();
    assert.equal(map.subarray(256).indexOf(0), -1, 'the second half is in memory');
  });

  it('errors: a node this machine lacks names the ones it has; bad arguments have codes', () => {
    using m = mapAnonymous(MiB);
    const missing = Math.max(...numaNodes().map((n) => n.id)) + 1;
    assert.throws(
      () => m.bind([missing]),
      (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE' && /which has node 0/.test(e.message),
    );
    assertThrowsCode(() => m.prefault({ onNode: missing }), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.bind([]), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => m.bind([0, 0], { policy: 'preferred' }), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.bind([0], { policy: 'local' as 'bind' }), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.bind([-1]), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => m.prefault({ onNode: 1.5 }), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => m.prefault({ node: 0 } as object), 'ERR_INVALID_ARG_VALUE');
  });
});
