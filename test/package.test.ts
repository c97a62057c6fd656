import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as memmap from '../src/index.js';
import { assertExitedCleanly, root, runModule, tempDir } from './helpers/index.js';

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

  it("types require('memmap') in a .cts file under module node16 (tsc accepts it)", () => {
    const project = join(tempDir(), 'cts');
    mkdirSync(join(project, 'node_modules'), { recursive: true });
    symlinkSync(root, join(project, 'node_modules', 'memmap'));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user', private: true }));
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'node16',
          moduleResolution: 'node16',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          lib: ['ES2023', 'ESNext.Disposable'],
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
        },
        files: ['user.cts', 'user.mts'],
      }),
    );
    writeFileSync(
      join(project, 'user.cts'),
      `import memmap = require('memmap');
import type { Mapping } from 'memmap' with { 'resolution-mode': 'import' };
const { mapAnonymous } = require('memmap') as typeof memmap;
const m: Mapping = memmap.mapAnonymous(memmap.pageSize);
export = { m, other: mapAnonymous(4096) };
`,
    );
    writeFileSync(
      join(project, 'user.mts'),
      `import { mapFile, type Mapping } from 'memmap';
export const open = (path: string): Mapping => mapFile(path);
`,
    );
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], {
      encoding: 'utf8',
    });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  });

  it('ships source maps that carry their sources (the package has no src/)', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
    assert.ok(!pkg.files.some((f) => f === 'src/' || f === 'src'), 'src/ is not shipped');
    let maps = 0;
    for (const folder of ['dist/src', 'dist/cli']) {
      for (const name of readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })) {
        if (!name.endsWith('.js.map')) continue;
        const map = JSON.parse(readFileSync(join(root, folder, name), 'utf8')) as {
          sources: string[];
          sourcesContent?: (string | null)[];
        };
        maps++;
        assert.equal(map.sourcesContent?.length, map.sources.length, `${folder}/${name} carries its sources`);
        assert.ok(map.sourcesContent?.every((text) => typeof text === 'string' && text.length > 0));
      }
    }
    assert.ok(maps > 10, `${maps} source maps`);
  });

  it("native/os compiles against musl's headers, which lack sem_clockwait", (t) => {
    const musl = '/usr/include/x86_64-linux-musl';
    const gcc = spawnSync('g++', ['-dumpversion'], { encoding: 'utf8' });
    if (process.arch !== 'x64' || !existsSync(musl) || gcc.status !== 0) {
      t.skip('needs g++ and musl headers for x86_64 (Debian: apt-get install musl-dev)');
      return;
    }
    const version = gcc.stdout.trim();
    // libstdc++'s own headers with musl's C headers (and the kernel's, which musl does not
    // carry) in place of glibc's: a syntax check, as a musl tool chain would see the code.
    const flags = [
      '-std=c++17',
      '-fsyntax-only',
      '-nostdinc',
      '-isystem',
      `/usr/include/c++/${version}`,
      '-isystem',
      `/usr/include/x86_64-linux-gnu/c++/${version}`,
      '-isystem',
      `/usr/lib/gcc/x86_64-linux-gnu/${version}/include`,
      '-isystem',
      musl,
      '-idirafter',
      '/usr/include',
      '-idirafter',
      '/usr/include/x86_64-linux-gnu',
      '-D_GNU_SOURCE',
      '-D__GLIBC_PREREQ(a,b)=0',
    ];
    for (const file of ['map_linux.cc', 'guard_linux.cc', 'futex_linux.cc', 'sem_linux.cc', 'bytesum.cc']) {
      const result = spawnSync('g++', [...flags, join(root, 'native', 'os', file)], { encoding: 'utf8' });
      assert.equal(result.status, 0, `${file}: ${result.stderr}`);
    }
  });
});
