import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertExitedCleanly, runFixture, tempDir } from './helpers/index.js';

describe('.npy and safetensors parsers on hostile bytes', () => {
  it('random, mutated and grammar-made files: views inside the mapping, or an ERR_MEMMAP_* code; never a crash or a hang', async () => {
    const result = await runFixture('formats-fuzz.mjs', { FILE: join(tempDir(), 'fuzz.bin'), RUNS: '400' });
    assertExitedCleanly(result);
    const summary = JSON.parse(result.stdout);
    assert.deepEqual(summary.violations, []);
    for (const kind of ['npy', 'safetensors']) {
      assert.ok(summary[kind].refused > 500, `${kind}: ${summary[kind].refused} refused`);
      assert.ok(summary[kind].opened >= 3, `${kind}: ${summary[kind].opened} opened`);
    }
    // The rules are all reached: most codes appear.
    assert.ok(Object.keys(summary.codes).length >= 12, Object.keys(summary.codes).join(', '));
  });
});
