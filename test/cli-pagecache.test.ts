import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evict, fileResidency, pageSize, prefetch, SharedMemory } from '../src/index.js';
import { cli, entry, runCli, tempDir } from './helpers/index.js';

const dir = tempDir();
const MiB = 1024 * 1024;

function fileOf(name: string, size: number): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(size, 3));
  return path;
}

interface ResidencyJson {
  files: { path: string; size: number; pages: number; resident: number; percent: number }[];
  pages: number;
  resident: number;
  percent: number;
}

function residencyOf(...paths: string[]): ResidencyJson {
  const result = runCli(['residency', '--json', ...paths]);
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as ResidencyJson;
}

describe('memmap residency, touch and evict', () => {
  it('a file this test wrote and evicted: near 0%; after touch 100%; after evict near 0% again', () => {
    const path = fileOf('cycle.bin', 8 * MiB);
    evict(path);
    assert.ok(residencyOf(path).percent < 10);
    const touched = runCli(['touch', path]);
    assert.equal(touched.status, 0, touched.stderr);
    assert.match(touched.stdout, /^touched 1 file, 8\.0 MiB in [\d.]+ s \([\d.]+ [KMG]?i?B\/s\)\n$/);
    // touch read every page; on a busy machine the kernel may reclaim a few clean pages
    // before the next command looks (seen: 12 of 2,048), so allow 1%.
    const warm = residencyOf(path);
    assert.ok(warm.resident >= 0.99 * ((8 * MiB) / pageSize), `${warm.resident} pages resident`);
    const shown = runCli(['residency', path]);
    assert.equal(shown.status, 0);
    assert.match(shown.stdout, /\[[Oo]{60}\] 2,0\d\d\/2,048 pages (100|99\.\d)% \(8\.0 MiB of 8\.0 MiB\)/);
    const evicted = runCli(['evict', '--json', path]);
    assert.equal(evicted.status, 0, evicted.stderr);
    const [after] = (JSON.parse(evicted.stdout) as { files: { resident: number; pages: number }[] }).files;
    assert.ok(after && after.resident < after.pages / 10, evicted.stdout);
    assert.ok(residencyOf(path).percent < 10);
  });

  it('half a file: the picture shows which half', async () => {
    const path = fileOf('half.bin', 4 * MiB);
    evict(path);
    prefetch(path, { offset: 0, length: 2 * MiB });
    // prefetch returns before the reads land.
    for (let waited = 0; fileResidency(path).resident < 512 && waited < 5000; waited += 10) {
      await new Promise((done) => setTimeout(done, 10));
    }
    const result = runCli(['residency', path]);
    // Read-ahead may bring in a little more than asked: the 31st cell may be partly cached;
    // and a busy machine may reclaim a page of the first half before the picture is drawn.
    assert.match(result.stdout, /\[[Oo]{30}[ oO] {29}\] \d+\/1,024 pages/, result.stdout);
  });

  it('directories with -r; without -r a directory is an error (exit 1) and the rest is done', () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'a.bin'), Buffer.alloc(pageSize));
    writeFileSync(join(tree, 'sub', 'b.bin'), Buffer.alloc(3 * pageSize));
    const walked = residencyOf('-r', tree);
    assert.deepEqual(
      walked.files.map((f) => [f.path.slice(tree.length), f.pages]),
      [
        ['/a.bin', 1],
        ['/sub/b.bin', 3],
      ],
    );
    const file = fileOf('alone.bin', pageSize);
    const refused = runCli(['touch', tree, file]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /is a directory \(use -r to walk it\)/);
    assert.match(refused.stdout, /^touched 1 file/);
    const missing = runCli(['residency', join(dir, 'missing.bin')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /ENOENT/);
  });

  it('usage errors exit 2: no FILE, an unknown option, an unknown command', () => {
    for (const args of [
      ['residency'],
      ['touch', '--bogus', 'x'],
      ['evict'],
      ['lock'],
      ['stat'],
      ['stat', 'a', 'b'],
      ['frobnicate'],
    ]) {
      const result = runCli(args);
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /Run 'memmap --help' for usage/);
    }
    for (const command of ['residency', 'touch', 'evict', 'lock', 'stat', 'shm']) {
      const help = runCli([command, '--help']);
      assert.equal(help.status, 0);
      assert.match(help.stdout, new RegExp(`^Usage: memmap ${command}`));
    }
  });
});

describe('memmap stat', () => {
  it('size, pages, residency, allocation and file system; a sparse file says so', () => {
    const path = join(dir, 'sparse.bin');
    const fd = openSync(path, 'w');
    ftruncateSync(fd, 64 * MiB);
    closeSync(fd);
    const result = runCli(['stat', '--json', path]);
    assert.equal(result.status, 0, result.stderr);
    const info = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.equal(info.size, 64 * MiB);
    assert.equal(info.pages, (64 * MiB) / pageSize);
    assert.equal(info.sparse, true);
    assert.equal(typeof info.filesystem, 'string');
    assert.ok(!String(info.filesystem).startsWith('unknown'), String(info.filesystem));
    const text = runCli(['stat', path]);
    assert.match(text.stdout, /^path: {7}.*sparse\.bin\nsize: {7}64\.0 MiB \(67,108,864 bytes\)\n/);
    assert.match(text.stdout, /allocated: {2}0 B \(sparse: holes read as zeros/);
    const dirResult = runCli(['stat', dir]);
    assert.equal(dirResult.status, 1);
    assert.match(dirResult.stderr, /is a directory/);
  });
});

describe('memmap lock', () => {
  it('locks the files in RAM until SIGTERM, then releases them and exits 0', async () => {
    const path = fileOf('locked.bin', 2 * MiB);
    const child = spawn(process.execPath, [cli, 'lock', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exit = new Promise<number | null>((done) => child.once('exit', done));
    try {
      let stdout = '';
      child.stdout.setEncoding('utf8');
      await new Promise<void>((done, fail) => {
        child.stdout.on('data', (chunk: string) => {
          stdout += chunk;
          if (stdout.includes('holding')) done();
        });
        child.once('exit', (code) => fail(new Error(`memmap lock exited with ${code} before locking`)));
      });
      assert.match(stdout, /^locked 1 file, 2\.0 MiB in RAM \(pid \d+\); holding until Ctrl-C or SIGTERM\n/);
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      assert.equal(Number(/^VmLck:\s+(\d+) kB/m.exec(status)?.[1]), 2048);
      child.kill('SIGTERM');
      assert.equal(await exit, 0);
      assert.match(stdout, /SIGTERM: released 2\.0 MiB\n$/);
    } finally {
      // Never leave the holder behind: it would keep this test process alive.
      child.kill('SIGKILL');
    }
  });

  it('a file that cannot be locked: exit 1 with the reason', () => {
    const result = runCli(['lock', join(dir, 'missing.bin')]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /ENOENT/);
  });
});

describe('memmap shm', () => {
  it('ls, cat and rm a named object; errors for a missing one', () => {
    const name = `/memmap-cli-${process.pid}`;
    const shm = SharedMemory.create(name, pageSize, { mode: 0o640 });
    shm.buffer.write('hello from shared memory');
    shm.close();
    const listed = runCli(['shm', 'ls', '--json']);
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { name: string }[]).find((o) => o.name === name),
      { name, size: pageSize, mode: 0o640 },
    );
    assert.match(runCli(['shm', 'ls']).stdout, new RegExp(`${name} +4\\.0 KiB +0640\\n`));
    const cat = runCli(['shm', 'cat', name.slice(1)]);
    assert.equal(cat.status, 0, cat.stderr);
    assert.equal(cat.stdout.slice(0, 24), 'hello from shared memory');
    assert.equal(cat.stdout.length, pageSize);
    const json = JSON.parse(runCli(['shm', 'cat', '--json', name]).stdout) as { size: number; base64: string };
    assert.equal(Buffer.from(json.base64, 'base64').toString('latin1', 0, 5), 'hello');
    const removed = runCli(['shm', 'rm', '--json', name]);
    assert.deepEqual(JSON.parse(removed.stdout), { removed: [name] });
    const again = runCli(['shm', 'rm', name]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /ENOENT/);
    assert.equal(runCli(['shm', 'cat', name]).status, 1);
    assert.equal(runCli(['shm', 'cat', '/a/b']).status, 2);
    assert.equal(runCli(['shm']).status, 2);
    assert.equal(runCli(['shm', 'frob']).status, 2);
  });
});

describe('memmap residency on a file larger than one residency call answers for', () => {
  it('counts a sparse file of 256 GiB and a megabyte in windows', () => {
    const path = join(dir, 'huge-sparse.bin');
    const size = 2 ** 38 + MiB;
    writeFileSync(path, '');
    const fd = openSync(path, 'r+');
    try {
      ftruncateSync(fd, size);
      writeSync(fd, Buffer.from('the end'), 0, 7, size - 10);
    } finally {
      closeSync(fd);
    }
    try {
      const json = residencyOf(path);
      assert.equal(json.files[0]?.pages, Math.ceil(size / pageSize));
      assert.equal(json.resident, 1, 'the page written at the end');
      const shown = runCli(['residency', path]);
      assert.equal(shown.status, 0, shown.stderr);
      assert.match(shown.stdout, / o?\]|O\]/, 'the cached page is at the right end of the picture');
    } finally {
      rmSync(path, { force: true });
    }
  });
});

describe('memmap shm cat above 4 GiB', () => {
  it('writes every byte of a sparse object of 4 GiB and a megabyte, in windows', () => {
    const name = `/memmap-cat-big-${process.pid}`;
    const size = 2 ** 32 + MiB;
    SharedMemory.create(name, pageSize).close();
    try {
      const fd = openSync(`/dev/shm${name}`, 'r+');
      try {
        ftruncateSync(fd, size);
        writeSync(fd, Buffer.from('start'), 0, 5, 10);
        writeSync(fd, Buffer.from('the end'), 0, 7, size - 7);
      } finally {
        closeSync(fd);
      }
      // A consumer that counts the bytes and notes every one that is not zero.
      const consumer = join(dir, 'consume.cjs');
      writeFileSync(
        consumer,
        `let n = 0; const seen = []; const zero = Buffer.alloc(1 << 20);
        process.stdin.on('data', (c) => {
          if (!c.equals(zero.subarray(0, c.length))) for (let i = 0; i < c.length; i++) if (c[i]) seen.push([n + i, c[i]]);
          n += c.length;
        });
        process.stdin.on('end', () => console.log(JSON.stringify({ n, seen })));`,
      );
      const node = JSON.stringify(process.execPath);
      const out = execFileSync(
        'sh',
        ['-c', `${node} ${JSON.stringify(cli)} shm cat ${name} | ${node} ${JSON.stringify(consumer)}`],
        {
          encoding: 'utf8',
          maxBuffer: 1 << 20,
        },
      );
      const { n, seen } = JSON.parse(out) as { n: number; seen: [number, number][] };
      assert.equal(n, size);
      const text = (from: number, length: number) =>
        String.fromCharCode(...seen.filter(([at]) => at >= from && at < from + length).map(([, b]) => b));
      assert.equal(text(10, 5), 'start');
      assert.equal(text(size - 7, 7), 'the end');
      assert.equal(seen.length, 12);
    } finally {
      SharedMemory.unlink(name);
    }
  });
});

interface WalkJson extends ResidencyJson {
  failed: { path: string; message: string }[];
}

/** Runs the command as the user nobody, who, unlike root, is refused by permissions. */
function runCliAsNobody(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', uid: 65534, gid: 65534 });
  // A runtime or package under a folder nobody may enter (root's home, as the runtime matrix
  // uses) cannot be started at all: spawnSync then reports an error and no output.
  const failed = result.error ? `${result.error.message}\n` : '';
  return { status: result.status, stdout: result.stdout ?? '', stderr: failed + (result.stderr ?? '') };
}

describe('memmap residency -r on awkward trees', () => {
  it('a symbolic link loop is reported as failed and the walk goes on; a name that is not UTF-8 is reached', () => {
    const tree = join(dir, 'awkward');
    mkdirSync(tree);
    writeFileSync(join(tree, 'a.bin'), Buffer.alloc(pageSize));
    symlinkSync('loop2', join(tree, 'loop1'));
    symlinkSync('loop1', join(tree, 'loop2'));
    // A name with the bytes 0xff 0xfe, which no UTF-8 string can spell.
    const odd = Buffer.concat([Buffer.from(`${tree}/odd-`), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]);
    writeFileSync(odd, Buffer.alloc(2 * pageSize, 1));
    const result = runCli(['residency', '-r', '--json', tree]);
    assert.equal(result.status, 1, 'the failures make the exit status 1');
    const json = JSON.parse(result.stdout) as WalkJson;
    assert.deepEqual(
      json.files.map((f) => [f.path.slice(tree.length), f.pages]),
      [
        ['/a.bin', 1],
        ['/odd-\\xff\\xfe.bin', 2],
      ],
    );
    assert.deepEqual(
      json.failed.map((f) => [f.path.slice(tree.length), /ELOOP/.test(f.message)]),
      [
        ['/loop1', true],
        ['/loop2', true],
      ],
    );
    const text = runCli(['residency', '-r', tree]);
    assert.equal(text.status, 1);
    assert.match(text.stdout, /a\.bin\n/);
    assert.match(text.stderr, /ELOOP.*loop1/); // the path once, where the system error names it
    const touched = runCli(['touch', '-r', '--json', tree]);
    assert.equal((JSON.parse(touched.stdout) as { files: unknown[] }).files.length, 2);
  });

  it('an unreadable folder and a link into it, seen by a user the permissions stop', (t) => {
    const tree = join(dir, 'guarded');
    mkdirSync(join(tree, 'locked'), { recursive: true });
    writeFileSync(join(tree, 'ok.bin'), Buffer.alloc(pageSize));
    writeFileSync(join(tree, 'locked', 'secret.bin'), Buffer.alloc(pageSize));
    symlinkSync(join(tree, 'locked', 'secret.bin'), join(tree, 'link.bin'));
    chmodSync(dir, 0o755);
    chmodSync(join(tree, 'locked'), 0o000);
    try {
      const probe = runCliAsNobody(['--version']);
      if (probe.status !== 0) {
        t.skip(`cannot run the command as nobody here: ${probe.stderr.split('\n')[0]}`);
        return;
      }
      const result = runCliAsNobody(['residency', '-r', '--json', tree]);
      assert.equal(result.status, 1, result.stderr);
      const json = JSON.parse(result.stdout) as WalkJson;
      assert.deepEqual(
        json.files.map((f) => f.path.slice(tree.length)),
        ['/ok.bin'],
      );
      assert.deepEqual(
        json.failed.map((f) => [f.path.slice(tree.length), /EACCES/.test(f.message)]),
        [
          ['/link.bin', true],
          ['/locked', true],
        ],
      );
    } finally {
      chmodSync(join(tree, 'locked'), 0o755);
      chmodSync(dir, 0o700);
    }
  });

  it('SharedMemory.list() includes an object its owner cannot open (mode 0)', (t) => {
    const name = `/memmap-list-closed-${process.pid}`;
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { SharedMemory } = await import(process.env.MEMMAP);
         SharedMemory.create(${JSON.stringify(name)}, 4096, { mode: 0 }).close();
         try {
           console.log(JSON.stringify(SharedMemory.list().find((o) => o.name === ${JSON.stringify(name)}) ?? null));
         } finally {
           SharedMemory.unlink(${JSON.stringify(name)});
         }`,
      ],
      { encoding: 'utf8', uid: 65534, gid: 65534, env: { ...process.env, MEMMAP: entry } },
    );
    const stderr = `${child.error?.message ?? ''}${child.stderr ?? ''}`;
    if (child.status !== 0 && /EACCES|EPERM|Cannot find module/.test(stderr) && !/list/.test(stderr)) {
      t.skip(`cannot run a child as nobody here: ${stderr.split('\n')[0]}`);
      return;
    }
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { name, size: 4096, mode: 0 });
  });
});
