#!/usr/bin/env node
// Rebuilds the addon when any of its sources is newer than the built binary, so that
// `npm test` never tests an old build after a change in native/. Run by `pretest`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outputs = ['memmap.node', 'memmap_sab.v8addon'].map((f) => join(root, 'build', 'Release', f));

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = 0;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

function builtAt(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1; // not built
  }
}

const sources = Math.max(newest(join(root, 'native')), newest(join(root, 'binding.gyp')));
const oldest = Math.min(...outputs.map(builtAt));
if (oldest >= sources) process.exit(0);
console.error(
  oldest < 0
    ? 'memmap: the addon is not built; building it'
    : 'memmap: native/ changed since the addon was built; rebuilding it',
);
// npm names its bundled node-gyp in npm_config_node_gyp for scripts; outside npm, the PATH's.
const bundled = process.env.npm_config_node_gyp;
const [command, args] = bundled ? [process.execPath, [bundled, 'rebuild']] : ['node-gyp', ['rebuild']];
const gyp = spawnSync(command, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
if (gyp.status !== 0) {
  console.error('memmap: node-gyp rebuild failed; see the errors above');
  process.exit(1);
}
