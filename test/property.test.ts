import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertExitedCleanly, runFixture, tempDir } from './helpers/index.js';

describe('random call sequences with hostile arguments', () => {
  it('never kill the process, and every error has a code', async () => {
    const result = await runFixture('property-child.mjs', { FILE: join(tempDir(), 'property.bin'), RUNS: '500' });
    assertExitedCleanly(result);
    const { calls, errors, violations } = JSON.parse(result.stdout);
    assert.equal(violations, 0);
    assert.ok(calls > 5000, `${calls} calls made`);
    assert.ok(errors > 100, `${errors} errors thrown, each with a code`);
  });
});
