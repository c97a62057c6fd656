/**
 * The pitfalls of docs/guide.md, shown where a test can show them. Risky steps run in child
 * processes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mapFile, pageSize } from '../src/index.js';
import { assertExitedCleanly, assertThrowsCode, entry, runModule, tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;

function fileWith(data: Buffer | string): string {
  const path = join(dir, `pit${counter++}.bin`);
  writeFileSync(path, data);
  return path;
}

describe('pitfalls', () => {
  it('access after truncate: zeros and ERR_MEMMAP_TRUNCATED, not SIGBUS', async () => {
    const path = fileWith(Buffer.alloc(2 * pageSize, 7));
    const child = await runModule(
      `const { mapFile } = await import(process.env.MEMMAP);
       const { truncateSync } = await import('node:fs');
       const m = mapFile(process.env.FILE);
       const b = m.buffer;
       truncateSync(process.env.FILE, 0);
       const read = b[pageSize + 1];
       let code = 'none';
       try { m.flush(); } catch (e) { code = e.code; }
       process.stdout.write(read + ' ' + code);`.replaceAll('pageSize', String(pageSize)),
      { FILE: path },
    );
    assertExitedCleanly(child);
    assert.equal(child.stdout, '0 ERR_MEMMAP_TRUNCATED');
  });

  it('msync is not what publishes: another process sees a write before any flush', async () => {
    const path = fileWith(Buffer.alloc(pageSize));
    using m = mapFile(path, { mode: 'write' });
    const reader = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { mapFile } = await import(process.env.MEMMAP);
         const m = mapFile(process.env.FILE);
         const flag = new Int32Array(m.sharedBuffer(), 0, 1);
         process.stdout.write('ready');
         const started = Date.now();
         while (Atomics.load(flag, 0) !== 1 && Date.now() - started < 10000);
         process.stdout.write(' ' + m.buffer.toString('latin1', 8, 13));
         m.close();`,
      ],
      { env: { ...process.env, MEMMAP: entry, FILE: path }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    reader.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    await new Promise<void>((done) => reader.stdout.once('data', () => done()));
    m.buffer.write('hello', 8); // the record first ...
    Atomics.store(new Int32Array(m.sharedBuffer(), 0, 1), 0, 1); // ... then the flag; no flush()
    await new Promise((done) => reader.once('close', done));
    assert.equal(out, 'ready hello');
  });

  it('unaligned offsets and lengths: exactly the bytes asked for', () => {
    const path = fileWith('0123456789'.repeat(1000));
    using m = mapFile(path, { offset: pageSize + 3, length: 5 });
    assert.equal(m.buffer.toString(), '0123456789'.repeat(1000).slice(pageSize + 3, pageSize + 8));
    m.flush({ offset: 1, length: 1 }); // widened to the page internally; nothing to write
  });

  it('durability: data written through a mapping survives kill -9 of the writer without flush', async () => {
    const path = fileWith(Buffer.alloc(pageSize));
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { mapFile } = await import(process.env.MEMMAP);
         const m = mapFile(process.env.FILE, { mode: 'write' });
         m.buffer.write('survives', 100);
         process.stdout.write('written');
         setInterval(() => {}, 1000);`,
      ],
      { env: { ...process.env, MEMMAP: entry, FILE: path }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((done) => child.stdout.once('data', () => done()));
    child.kill('SIGKILL');
    await new Promise((done) => child.once('exit', done));
    assert.equal(readFileSync(path).toString('latin1', 100, 108), 'survives', 'in the page cache, so in the file');
  });

  it('sparse files: a hole reads as zeros and a write into it allocates disk', () => {
    const path = fileWith('');
    truncateSync(path, 64 * pageSize);
    const before = statSync(path).blocks;
    using m = mapFile(path, { mode: 'write' });
    assert.equal(m.buffer.indexOf(1), -1);
    for (let i = 0; i < 16; i++) m.buffer[i * pageSize] = 1;
    m.flush();
    assert.ok(statSync(path).blocks >= before + (16 * pageSize) / 512, `blocks ${before} -> ${statSync(path).blocks}`);
  });

  it('W^X and MAP_FIXED: nothing executable, and no placement that replaces a mapping', () => {
    using m = mapFile(fileWith(Buffer.alloc(pageSize)), { mode: 'write' });
    assertThrowsCode(() => m.protect('readwrite-exec' as 'read'), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => mapFile(fileWith(Buffer.alloc(pageSize)), { hint: m.address }), 'EEXIST');
    assert.equal(m.buffer.length, pageSize, 'the mapping that was there is untouched');
  });
});
