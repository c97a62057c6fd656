import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertExitedCleanly, runFixture, tempDir } from './helpers/index.js';

describe('random call sequences with hostile arguments', () => {
  it('never kill the process, and every error has a code', async () => {
    const result = await runFixture('property-child.mjs', { FILE: join(tempDir(), 'property.bin'), RUNS: '500' });
    assertExitedCleanly(result);
    const { calls, errors, violations, victimChanged, budgetsExhausted } = JSON.parse(result.stdout);
    assert.equal(violations, 0);
    assert.equal(victimChanged, false, 'no stale view wrote into another file');
    assert.ok(budgetsExhausted > 0, `the kernel-mapping budget was exhausted ${budgetsExhausted} times`);
    assert.ok(calls > 5000, `${calls} calls made`);
    assert.ok(errors > 100, `${errors} errors thrown, each with a code`);
  });

  it('two processes on one file, each truncating, protecting and closing under the other: no signal, no stray write', async () => {
    const file = join(tempDir(), 'shared-property.bin');
    const env = (seed: string) => ({ FILE: file, RUNS: '200', SEED: seed });
    const results = await Promise.all([
      runFixture('property-child.mjs', env('7')),
      runFixture('property-child.mjs', env('11')),
    ]);
    for (const result of results) {
      assertExitedCleanly(result);
      const { violations, victimChanged } = JSON.parse(result.stdout);
      assert.equal(violations, 0);
      assert.equal(victimChanged, false);
    }
  });
});
