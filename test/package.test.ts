import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as memmap from '../src/index.js';
import { assertExitedCleanly, root, runModule } from './helpers/index.js';

describe('the package', () => {
  it("loads with require('memmap') from CommonJS", async () => {
    const child = await runModule(
      `
      import { createRequire } from 'node:module';
      const require = createRequire(process.env.ROOT + '/package.json');
      const m = require('memmap');
      process.stdout.write([typeof m.mapFile, typeof m.mapAnonymous, typeof m.MemmapError, typeof m.pageSize].join(','));
      `,
      { ROOT: root },
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, 'function,function,function,number');
  });

  it('resolves by name from ESM and CommonJS to the same module', async () => {
    const require = createRequire(join(root, 'package.json'));
    const byName = require('memmap') as typeof memmap;
    assert.equal(byName.mapFile, memmap.mapFile);
  });

  it('documents every export in docs/api.md', () => {
    const api = readFileSync(join(root, 'docs', 'api.md'), 'utf8');
    for (const name of Object.keys(memmap)) {
      assert.match(api, new RegExp(`^#+ .*\\b${name}\\b`, 'm'), `docs/api.md has no heading for ${name}`);
    }
  });
});
