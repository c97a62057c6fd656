/**
 * Two processes map, write, flush, truncate, grow and remap the same file for ten seconds
 * (STRESS_MS to change it). Nobody may crash, and every write that was flushed stays on disk
 * unless a truncation that ended after the write could have cut it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertExitedCleanly, type ChildResult, runFixture, tempDir } from './helpers/index.js';

const SLOTS = 4096;
const DURATION_MS = Number(process.env.STRESS_MS ?? 10_000);

interface Journal {
  writes: [slot: number, seq: number, before: number][];
  truncates: [size: number, start: number, end: number][];
  grows: [start: number, end: number][];
  counts: Record<string, number>;
}

function writer(file: string, id: number): Promise<ChildResult> {
  const env = { FILE: file, ID: String(id), SLOTS: String(SLOTS), DURATION_MS: String(DURATION_MS) };
  return runFixture('stress-child.mjs', env);
}

describe('two processes mapping, writing, flushing, truncating and growing one file', () => {
  it('nobody crashes, and every flushed write not cut by a later truncation is on disk', async (t) => {
    const file = join(tempDir(), 'stress.bin');
    writeFileSync(file, Buffer.alloc(SLOTS * 16));
    const results = await Promise.all([writer(file, 0), writer(file, 1)]);
    for (const result of results) assertExitedCleanly(result);
    const journals = results.map((r) => JSON.parse(r.stdout) as Journal);
    const truncates = journals.flatMap((j) => j.truncates);
    const grows = journals.flatMap((j) => j.grows);
    /**
     * Whether a write to [slot end - 16, end) made at `before` was owed to the file: no
     * truncation that cut the slot may have ended after the write began, and if one cut it
     * earlier, a growth back to full size must have run entirely between that cut and the
     * write (a write past the end of the file, into the last partial page, reaches no file).
     */
    const owed = (end: number, before: number): boolean => {
      const cuts = truncates.filter(([size]) => size < end);
      if (cuts.some(([, , ended]) => ended >= before)) return false;
      const lastCut = Math.max(...cuts.map(([, , ended]) => ended), Number.NEGATIVE_INFINITY);
      return lastCut === Number.NEGATIVE_INFINITY || grows.some(([start, ended]) => start > lastCut && ended < before);
    };
    const final = readFileSync(file);

    let checked = 0;
    for (const [id, journal] of journals.entries()) {
      const last = new Map<number, [number, number]>();
      for (const [slot, seq, before] of journal.writes) last.set(slot, [seq, before]);
      for (const [slot, [seq, before]] of last) {
        const end = slot * 16 + 16;
        if (!owed(end, before)) continue;
        checked++;
        assert.ok(final.length >= end, `slot ${slot} of writer ${id} lies past the end of the file`);
        assert.equal(final.readUInt32LE(slot * 16), id + 1, `slot ${slot}: writer`);
        assert.ok(final.readUInt32LE(slot * 16 + 4) >= seq, `slot ${slot}: flushed write ${seq} is missing`);
      }
      assert.ok((journal.counts.flushed ?? 0) > 100, `writer ${id} flushed ${journal.counts.flushed} writes`);
      assert.ok((journal.counts.truncated ?? 0) > 10, `writer ${id} truncated ${journal.counts.truncated} times`);
    }
    t.diagnostic(`${checked} flushed writes checked on disk; ${JSON.stringify(journals.map((j) => j.counts))}`);
    assert.ok(checked > 200, `only ${checked} flushed writes were owed to the file`);
  });
});
