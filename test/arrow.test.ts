import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertExitedCleanly, root, runNode, tempDir } from './helpers/index.js';

const child = join(root, 'test', 'fixtures', 'arrow-child.mjs');

const MiB = 1024 ** 2;

describe('Arrow IPC files: apache-arrow reads the mapping in place', () => {
  it('tableFromIPC(mapping.buffer) over a 1 GiB file: every buffer in the mapping, RssAnon flat', async () => {
    const path = join(tempDir(), 'table.arrow');
    // Batches of 2^22 rows of a float64 and an int32 column, 48 MiB each: 22 pass 1 GiB.
    const rows = 2 ** 22;
    const batches = 22;
    assertExitedCleanly(await runNode([child, 'write', path, String(batches), String(rows)]));
    const result = await runNode([child, 'open', path]);
    assertExitedCleanly(result);
    const opened = JSON.parse(result.stdout);
    assert.ok(opened.size > 1024 * MiB, `the file has ${opened.size} bytes`);
    assert.equal(opened.rows, rows * batches);
    assert.equal(opened.batches, batches);
    assert.equal(opened.inMapping, true, 'every column buffer is a view of the mapping');
    const last = rows * batches - 1;
    assert.deepEqual(opened.values, [0, last, last % 1000, Math.floor((rows * batches) / 2)]);
    // A copy would cost the file's size; the table's own objects cost a few MiB at most.
    assert.ok(opened.rssAnonGrowth < 32 * MiB, `RssAnon grew by ${(opened.rssAnonGrowth / MiB).toFixed(1)} MiB`);
  });
});
