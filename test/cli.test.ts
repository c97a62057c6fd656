import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evict } from '../src/index.js';
import { cli, runCli, tempDir } from './helpers/index.js';

const dir = tempDir();

/** The sum of the bytes, computed here without memmap. */
function independentSum(data: Buffer): bigint {
  let sum = 0n;
  let chunk = 0;
  for (let i = 0; i < data.length; i++) {
    chunk += data[i] as number;
    if (chunk > 2 ** 52) {
      sum += BigInt(chunk);
      chunk = 0;
    }
  }
  return sum + BigInt(chunk);
}

describe('memmap checksum', () => {
  it('prints the sum of every byte, as the classic C program does', () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 77);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const path = join(dir, 'data.bin');
    writeFileSync(path, data);
    const result = runCli(['checksum', path]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, `Checksum: ${independentSum(data)}\n`);
  });

  it('sums bytes of 255 correctly at every tail length (vector and scalar parts)', () => {
    for (const size of [1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 4095, 4097]) {
      const path = join(dir, `ff-${size}.bin`);
      writeFileSync(path, Buffer.alloc(size, 0xff));
      assert.equal(runCli(['checksum', path]).stdout, `Checksum: ${255 * size}\n`);
    }
  });

  it('prints "Empty file" for an empty file', () => {
    const path = join(dir, 'empty.bin');
    writeFileSync(path, '');
    const result = runCli(['checksum', path]);
    assert.equal(result.status, 0);
    assert.equal(result.stdout, 'Empty file\n');
  });

  it('--json gives the path, size, sum and time', () => {
    const path = join(dir, 'json.bin');
    writeFileSync(path, Buffer.from([1, 2, 3, 250]));
    const result = runCli(['checksum', '--json', path]);
    assert.equal(result.status, 0);
    const parsed = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.equal(parsed.path, path);
    assert.equal(parsed.bytes, 4);
    assert.equal(parsed.checksum, 256);
    assert.equal(typeof parsed.seconds, 'number');
  });

  it('exits 1 with a one-line message when the file cannot be read', () => {
    const result = runCli(['checksum', join(dir, 'missing.bin')]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^memmap: ENOENT: .*missing\.bin'\n$/);
    assert.equal(result.stdout, '');
    assert.equal(runCli(['checksum', dir]).status, 1);
  });

  it('exits 2 on usage errors', () => {
    assert.equal(runCli([]).status, 2);
    assert.equal(runCli(['checksum']).status, 2);
    assert.equal(runCli(['checksum', 'a', 'b']).status, 2);
    assert.equal(runCli(['checksum', '--bogus', 'a']).status, 2);
    const unknown = runCli(['frobnicate']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  });

  it('has --help for the command and the subcommand, and --version', () => {
    const top = runCli(['--help']);
    assert.equal(top.status, 0);
    assert.match(top.stdout, /checksum FILE/);
    const sub = runCli(['checksum', '--help']);
    assert.equal(sub.status, 0);
    assert.match(sub.stdout, /--json/);
    assert.match(runCli(['--version']).stdout, /^\d+\.\d+\.\d+\n$/);
  });
});

describe('memmap checksum on a terminal', () => {
  it('shows a progress bar for a file over 256 MiB, and still prints the sum', () => {
    const path = join(dir, 'big.bin');
    const fd = openSync(path, 'w');
    ftruncateSync(fd, 300 * 1024 * 1024); // sparse: reads as zeros
    writeSync(fd, Buffer.from([200]), 0, 1, 299 * 1024 * 1024);
    closeSync(fd);
    // script(1) runs the command on a pseudo-terminal, as a person at a terminal would.
    const output = execFileSync('script', ['-qec', `"${process.execPath}" "${cli}" checksum "${path}"`, '/dev/null'], {
      encoding: 'utf8',
    });
    assert.match(output, /\[#+ *\] +\d+%/);
    assert.match(output, /Checksum: 200\r?\n/);
  });
});

describe('memmap checksum above 4 GiB', () => {
  it('sums a sparse file of 4 GiB and a megabyte in windows (one Buffer holds at most 4 GiB on Node 20)', () => {
    const path = join(dir, 'above-4g.bin');
    const size = 2 ** 32 + 1024 * 1024;
    const fd = openSync(path, 'w');
    try {
      ftruncateSync(fd, size); // holes sum to 0
      writeSync(fd, Buffer.from([1, 2, 3, 250]), 0, 4, 100);
      writeSync(fd, Buffer.from([7, 9, 11]), 0, 3, size - 3);
    } finally {
      closeSync(fd);
    }
    try {
      const result = runCli(['checksum', '--json', path]);
      assert.equal(result.status, 0, result.stderr);
      const parsed = JSON.parse(result.stdout) as { bytes: number; checksum: number };
      assert.equal(parsed.bytes, size);
      assert.equal(parsed.checksum, 256 + 27);
    } finally {
      evict(path); // the holes read in are page cache the next tests can use
      rmSync(path, { force: true });
    }
  });
});

describe('the same answers from every command', () => {
  const commands = ['checksum', 'residency', 'touch', 'evict', 'stat'];
  const missing = join(dir, 'no such file');

  it('a missing file is an error (exit 1) for every command, naming the path once; touch prints no summary', () => {
    for (const command of commands) {
      const result = runCli([command, missing]);
      assert.equal(result.status, 1, `${command}: ${result.stderr}`);
      assert.equal(result.stderr.split(missing).length - 1, 1, `${command} names the path once: ${result.stderr}`);
      assert.doesNotMatch(result.stdout, /touched 0 files/);
    }
  });

  it('with --json, errors are JSON lines { error: { code, message, path } } on stderr', () => {
    for (const command of commands) {
      const result = runCli([command, '--json', missing]);
      assert.equal(result.status, 1, command);
      const first = JSON.parse(result.stderr.split('\n')[0] as string) as {
        error: { code: string; message: string; path: string };
      };
      assert.equal(first.error.code, 'ENOENT', command);
      assert.equal(first.error.path, missing, command);
      assert.equal(typeof first.error.message, 'string');
    }
    const usage = runCli(['touch', '--json', '--frobnicate', missing]);
    assert.equal(usage.status, 2);
    assert.equal((JSON.parse(usage.stderr) as { error: { code: string } }).error.code, 'ERR_PARSE_ARGS_UNKNOWN_OPTION');
  });

  it('a directory gets one message from every command', () => {
    for (const command of commands) {
      const result = runCli([command, dir]);
      assert.equal(result.status, 1, command);
      assert.match(
        result.stderr,
        new RegExp(`^memmap: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is a directory`),
        command,
      );
    }
  });

  it('an unknown option gets our own message (exit 2)', () => {
    const result = runCli(['touch', '--frobnicate', missing]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^memmap: unknown option '--frobnicate' for memmap touch\n/);
  });

  it("an empty file's residency is 0%, not 100%", () => {
    const empty = join(dir, 'empty-residency');
    writeFileSync(empty, '');
    const text = runCli(['residency', empty]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, / 0%/);
    assert.equal((JSON.parse(runCli(['residency', '--json', empty]).stdout) as { percent: number }).percent, 0);
  });
});
