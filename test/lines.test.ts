/**
 * Reading a mapping by lines, records, delimiters and as a stream: lines(), records(),
 * split() and createReadStream(). Truncation cases run in a child process.
 */
import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { closeSync, ftruncateSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { createGunzip, createGzip } from 'node:zlib';
import { scanErrors } from '../examples/parallel-scan/scan.js';
import { evict, type Mapping, mapAnonymous, mapFile } from '../src/index.js';
import {
  lines as linesIn,
  records as recordsIn,
  split as splitIn,
  createReadStream as streamIn,
} from '../src/lines.js';
import { assertExitedCleanly, assertRejectsCode, assertThrowsCode, runModule, tempDir } from './helpers/index.js';

const dir = tempDir();
let counter = 0;

function fileWith(content: string | Buffer): string {
  const path = join(dir, `l${counter++}.txt`);
  writeFileSync(path, content);
  return path;
}

/** What String.split makes of a text, as lines() promises to read it. */
function expectedLines(text: string): string[] {
  if (text === '') return [];
  const parts = text.split('\n');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts.map((line, i) => (i < parts.length - 1 || text.endsWith('\n') ? line.replace(/\r$/, '') : line));
}

/** A seeded pseudo-random text of lines of varied length, with \r\n now and then and UTF-8. */
function randomText(seed: number, count: number): string {
  let x = seed >>> 0;
  const next = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0; // a linear congruential generator
    return x >>> 8;
  };
  const words = ['ERROR', 'INFO', 'é', '日本', 'x', ''];
  let text = '';
  for (let i = 0; i < count; i++) {
    const n = next() % 6;
    for (let j = 0; j < n; j++) text += words[next() % words.length];
    text += next() % 5 === 0 ? '\r\n' : '\n';
  }
  return next() % 2 === 0 ? `${text}tail` : text;
}

describe('lines()', () => {
  it('splits at \\n and \\r\\n, keeps empty lines, needs no newline after the last line', () => {
    for (const text of ['a\r\nbb\n\nccc', 'a\nb\n', '\n', '\n\n', 'one', '\r\n', 'x\r', 'é\nü\r\n日本']) {
      using m = mapFile(fileWith(text));
      assert.deepEqual([...m.lines()], expectedLines(text), JSON.stringify(text));
    }
  });

  it('an empty file has no lines', () => {
    using m = mapFile(fileWith(''));
    assert.deepEqual([...m.lines()], []);
    assert.deepEqual([...m.lines({ raw: true })], []);
  });

  it('decodes in the encoding asked for', () => {
    const bytes = Buffer.from([0xe9, 0x0a, 0x41, 0x0d, 0x0a]);
    using m = mapFile(fileWith(bytes));
    assert.deepEqual([...m.lines({ encoding: 'latin1' })], ['é', 'A']);
    assert.deepEqual([...m.lines({ encoding: 'hex' })], ['e9', '41']);
    assert.deepEqual([...m.lines({ encoding: 'UTF-8' as 'utf-8' })], ['\ufffd', 'A']);
  });

  it('raw lines are views of the mapped memory, not copies', () => {
    const path = fileWith('first\r\nsecond\n');
    using m = mapFile(path, { mode: 'write' });
    const [first, second] = [...m.lines({ raw: true })] as Buffer[];
    assert.ok(first && second);
    assert.equal(first.buffer, m.buffer.buffer);
    assert.equal(first.byteOffset, m.buffer.byteOffset);
    assert.equal(first.toString(), 'first');
    assert.equal(second.byteOffset, m.buffer.byteOffset + 7);
    second.write('S');
    assert.equal(readFileSync(path, 'latin1'), 'first\r\nSecond\n');
  });

  it('a start inside a line skips to the next; tiled ranges see every line once', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const text = randomText(seed, 30);
      using m = mapFile(fileWith(text));
      const whole = [...m.lines()];
      assert.deepEqual(whole, expectedLines(text));
      const cuts = [0, Math.floor(m.length / 3), Math.floor(m.length / 2) + (seed % 3), m.length].sort((a, b) => a - b);
      const tiled: string[] = [];
      for (let i = 0; i + 1 < cuts.length; i++) tiled.push(...m.lines({ start: cuts[i], end: cuts[i + 1] }));
      assert.deepEqual(tiled, whole, `seed ${seed}, cuts ${cuts}`);
    }
  });

  it('start exactly at a line start keeps that line; end exactly at one leaves it out', () => {
    using m = mapFile(fileWith('aa\nbb\ncc\n'));
    assert.deepEqual([...m.lines({ start: 3 })], ['bb', 'cc']);
    assert.deepEqual([...m.lines({ start: 4 })], ['cc']);
    assert.deepEqual([...m.lines({ end: 3 })], ['aa']);
    assert.deepEqual([...m.lines({ end: 4 })], ['aa', 'bb']);
    assert.deepEqual([...m.lines({ start: 9 })], []);
    assert.deepEqual([...m.lines({ start: 2, end: 2 })], []);
  });

  it('reads the same lines through windows of any size that holds a line', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const text = randomText(seed * 7, 40);
      using m = mapFile(fileWith(text));
      const whole = [...m.lines()];
      const longest = Math.max(...text.split('\n').map((l) => Buffer.byteLength(l))) + 1;
      for (const window of [longest, longest + 1, longest + 5, 64, 1000]) {
        assert.deepEqual([...linesIn(m, undefined, window)], whole, `seed ${seed}, window ${window}`);
        const start = Math.floor(m.length / 2);
        assert.deepEqual([...linesIn(m, { start }, window)], [...m.lines({ start })], `start, window ${window}`);
      }
    }
  });

  it('a line longer than a window is ERR_MEMMAP_OUT_OF_RANGE', () => {
    using m = mapFile(fileWith('short\nthis line is far too long\n'));
    const it = linesIn(m, undefined, 8);
    assert.equal(it.next().value, 'short');
    assertThrowsCode(() => it.next(), 'ERR_MEMMAP_OUT_OF_RANGE');
    assert.equal(it.next().done, true, 'an iterator that threw is done');
  });

  it('for await yields to the event loop between batches and reads the same lines', async () => {
    const text = 'line of the log\n'.repeat(200_000); // 3.2 MB, a dozen batches
    using m = mapFile(fileWith(text));
    let turns = 0;
    const tick = setInterval(() => turns++, 0);
    let count = 0;
    let last = '';
    try {
      for await (const line of m.lines()) {
        count++;
        last = line;
      }
    } finally {
      clearInterval(tick);
    }
    assert.equal(count, 200_000);
    assert.equal(last, 'line of the log');
    assert.ok(turns >= 2, `timers ran ${turns} times during the iteration`);
  });

  it('breaking out of a loop ends the iterator', () => {
    using m = mapFile(fileWith('a\nb\nc\n'));
    const it = m.lines();
    for (const line of it) if (line === 'a') break;
    assert.equal(it.next().done, true);
  });

  it('works on anonymous memory', () => {
    using m = mapAnonymous(4096);
    m.buffer.write('one\ntwo\n');
    const all = [...m.lines({ encoding: 'latin1' })];
    assert.deepEqual(all.slice(0, 2), ['one', 'two']);
    assert.equal(all.length, 3, 'the zeros after the last newline are one last line');
  });

  it('follows remap() in the middle of an iteration', () => {
    const path = fileWith('one\ntwo\n');
    using m = mapFile(path);
    const it = m.lines();
    assert.equal(it.next().value, 'one');
    writeFileSync(path, 'one\ntwo\nthree\n');
    m.remap();
    assert.deepEqual([...it], ['two', 'three']);
  });

  it('refuses bad options with the option named', () => {
    using m = mapFile(fileWith('a\n'));
    const bad: [unknown, string, string][] = [
      [5, 'ERR_INVALID_ARG_TYPE', 'options'],
      [null, 'ERR_INVALID_ARG_TYPE', 'options'],
      [{ startAt: 1 }, 'ERR_INVALID_ARG_VALUE', 'options.startAt'],
      [{ start: '1' }, 'ERR_INVALID_ARG_TYPE', 'options.start'],
      [{ start: -1 }, 'ERR_OUT_OF_RANGE', 'options.start'],
      [{ start: 0.5 }, 'ERR_OUT_OF_RANGE', 'options.start'],
      [{ end: 1n }, 'ERR_INVALID_ARG_TYPE', 'options.end'],
      [{ start: 2, end: 1 }, 'ERR_OUT_OF_RANGE', 'options.end'],
      [{ encoding: 5 }, 'ERR_INVALID_ARG_TYPE', 'options.encoding'],
      [{ encoding: 'utf16le' }, 'ERR_INVALID_ARG_VALUE', 'options.encoding'],
      [{ encoding: 'klingon' }, 'ERR_INVALID_ARG_VALUE', 'options.encoding'],
      [{ raw: 1 }, 'ERR_INVALID_ARG_TYPE', 'options.raw'],
      [{ raw: true, encoding: 'utf8' }, 'ERR_INVALID_ARG_VALUE', 'options.encoding'],
    ];
    for (const [options, code, name] of bad) {
      assert.throws(
        () => m.lines(options as never),
        (e: NodeJS.ErrnoException) => e.code === code && e.message.includes(name),
        `${JSON.stringify(options, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`,
      );
    }
    assertThrowsCode(() => m.lines({ end: 3 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => m.lines({ start: 3 }), 'ERR_MEMMAP_OUT_OF_RANGE');
  });

  it('a closed mapping is ERR_MEMMAP_CLOSED, at the call and in the middle of an iteration', async () => {
    const m = mapFile(fileWith('a\nb\nc\n'));
    const sync = m.lines();
    const raw = m.lines({ raw: true });
    const asyncIt = m.lines()[Symbol.asyncIterator]();
    assert.equal(sync.next().value, 'a');
    const held = raw.next().value as Buffer;
    assert.equal((await asyncIt.next()).value, 'a');
    m.close();
    assertThrowsCode(() => sync.next(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => raw.next(), 'ERR_MEMMAP_CLOSED');
    await assertRejectsCode(asyncIt.next(), 'ERR_MEMMAP_CLOSED');
    assert.equal(held.length, 0, 'a raw line handed out is detached');
    assertThrowsCode(() => m.lines(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => m.records(1), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => m.split(','), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => m.createReadStream(), 'ERR_MEMMAP_CLOSED');
  });
});

describe('records()', () => {
  it('yields fixed-size zero-copy records; the last is shorter when the range does not divide', () => {
    using m = mapFile(fileWith('aaaabbbbccccdd'));
    const all = [...m.records(4)];
    assert.deepEqual(all.map(String), ['aaaa', 'bbbb', 'cccc', 'dd']);
    assert.equal(all[1]?.buffer, m.buffer.buffer);
    assert.deepEqual([...m.records(4, { start: 1 })].map(String), ['bbbb', 'cccc', 'dd']);
    assert.deepEqual([...m.records(4, { start: 4, end: 9 })].map(String), ['bbbb', 'cccc']);
    assert.deepEqual([...m.records(4, { end: 8 })].map(String), ['aaaa', 'bbbb']);
    assert.deepEqual([...m.records(100)].map(String), ['aaaabbbbccccdd']);
    assert.deepEqual([...recordsIn(m, 3, undefined, 7)].map(String), ['aaa', 'abb', 'bbc', 'ccc', 'dd']);
  });

  it('refuses a bad size and bad options', () => {
    using m = mapFile(fileWith('abcd'));
    assertThrowsCode(() => m.records(0), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => m.records(1.5), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => m.records('4' as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => m.records(4, { raw: true } as never), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.records(4, { end: 5 }), 'ERR_MEMMAP_OUT_OF_RANGE');
  });
});

describe('split()', () => {
  it('splits at any delimiter, zero copy, with no empty piece after a final delimiter', () => {
    using m = mapFile(fileWith('a::b::::c::'));
    assert.deepEqual([...m.split('::')].map(String), ['a', 'b', '', 'c']);
    assert.deepEqual([...m.split(Buffer.from(':'))].map(String), ['a', '', 'b', '', '', '', 'c', '']);
    assert.deepEqual([...m.split(new Uint8Array([0x62]))].map(String), ['a::', '::::c::']);
    assert.deepEqual([...m.split('::', { start: 1 })].map(String), ['b', '', 'c']);
    assert.deepEqual([...m.split('::', { start: 3 })].map(String), ['b', '', 'c']);
    assert.deepEqual([...m.split('::', { start: 4 })].map(String), ['', 'c']);
    assert.equal([...m.split('::')][2]?.buffer, m.buffer.buffer);
  });

  it('finds a delimiter cut by a window edge', () => {
    const text = `${'x'.repeat(5)}<|>${'y'.repeat(3)}<|>z<|>${'w'.repeat(4)}`;
    using m = mapFile(fileWith(text));
    for (let window = 8; window < 30; window++) {
      assert.deepEqual(
        [...splitIn(m, '<|>', undefined, window)].map(String),
        ['xxxxx', 'yyy', 'z', 'wwww'],
        `${window}`,
      );
      assert.deepEqual([...splitIn(m, '<|>', { start: 6 }, window)].map(String), ['yyy', 'z', 'wwww'], `${window}`);
    }
  });

  it('refuses an empty or mistyped delimiter', () => {
    using m = mapFile(fileWith('abc'));
    assertThrowsCode(() => m.split(''), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.split(Buffer.alloc(0)), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => m.split(10 as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => m.split(',', { encoding: 'utf8' } as never), 'ERR_INVALID_ARG_VALUE');
  });
});

/** Collects a Readable's chunks. */
async function chunksOf(stream: NodeJS.ReadableStream): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks;
}

describe('createReadStream()', () => {
  it('chunks are subarrays of the mapping, at most highWaterMark long; start and end are inclusive', async () => {
    const content = Buffer.from('0123456789abcdefghij');
    using m = mapFile(fileWith(content));
    const chunks = await chunksOf(m.createReadStream({ highWaterMark: 6 }));
    assert.deepEqual(
      chunks.map((c) => c.length),
      [6, 6, 6, 2],
    );
    for (const c of chunks) assert.equal(c.buffer, m.buffer.buffer, 'no copy');
    assert.deepEqual(Buffer.concat(chunks), content);
    assert.equal(Buffer.concat(await chunksOf(m.createReadStream({ start: 3, end: 7 }))).toString(), '34567');
    assert.equal(Buffer.concat(await chunksOf(m.createReadStream({ start: 19 }))).toString(), 'j');
    assert.equal(Buffer.concat(await chunksOf(m.createReadStream({ start: 20 }))).length, 0);
    const windowed = await chunksOf(streamIn(m, { highWaterMark: 4 }, 7));
    assert.deepEqual(Buffer.concat(windowed), content);
  });

  it('pipes through gzip', async () => {
    const content = Buffer.from(randomText(3, 5000));
    using m = mapFile(fileWith(content));
    const out: Buffer[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        out.push(chunk);
        done();
      },
    });
    await pipeline(m.createReadStream(), createGzip(), createGunzip(), sink);
    assert.deepEqual(Buffer.concat(out), content);
  });

  it('an empty mapping gives an empty stream', async () => {
    using m = mapFile(fileWith(''));
    assert.deepEqual(await chunksOf(m.createReadStream()), []);
  });

  it('refuses bad options', () => {
    using m = mapFile(fileWith('abcd'));
    assertThrowsCode(() => m.createReadStream({ highWaterMark: 0 }), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => m.createReadStream({ highWaterMark: '1' } as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => m.createReadStream({ start: 2, end: 1 }), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => m.createReadStream({ end: 4 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => m.createReadStream({ start: 5 }), 'ERR_MEMMAP_OUT_OF_RANGE');
    assertThrowsCode(() => m.createReadStream({ encoding: 'utf8' } as never), 'ERR_INVALID_ARG_VALUE');
  });

  it('a mapping closed during the stream destroys it with ERR_MEMMAP_CLOSED', async () => {
    const m = mapFile(fileWith(Buffer.alloc(1 << 20, 1)));
    const stream = m.createReadStream({ highWaterMark: 4096 });
    const through = new PassThrough({ highWaterMark: 1 });
    let seen = 0;
    stream.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen >= 8192 && !m.closed) m.close();
    });
    await assert.rejects(pipeline(stream, through, new Writable({ write: (_c, _e, done) => done() })), {
      code: 'ERR_MEMMAP_CLOSED',
    });
  });
});

describe('a file truncated during a scan (child process)', () => {
  for (const [name, scan] of [
    ['lines()', 'm.lines()'],
    ['lines({ raw: true })', 'm.lines({ raw: true })'],
    ['split()', "m.split('\\n')"],
    ['records()', 'm.records(100)'],
  ] as const) {
    it(`${name} ends with ERR_MEMMAP_TRUNCATED, never a crash`, async () => {
      const path = fileWith('x'.repeat(99).concat('\n').repeat(4096)); // 100 pages
      const child = await runModule(
        `
        const { truncateSync } = await import('node:fs');
        const { mapFile } = await import(process.env.MEMMAP);
        const m = mapFile(process.env.FILE);
        const it = ${scan};
        let before = 0;
        for (let i = 0; i < 3; i++) { it.next(); before++; }
        truncateSync(process.env.FILE, 4096);
        let after = 0, code = null, wrong = 0;
        try {
          for (const item of it) {
            after++;
            if (typeof item === 'string' && item !== 'x'.repeat(99)) wrong++;
            item[0];
          }
        } catch (e) { code = e.code; }
        let again = null;
        try { m.lines(); } catch (e) { again = e.code; }
        try { m.close(); } catch {}
        process.stdout.write(JSON.stringify({ before, after, code, again, wrong }));
        `,
        { FILE: path },
      );
      assertExitedCleanly(child);
      const result = JSON.parse(child.stdout) as { after: number; code: string; again: string; wrong: number };
      assert.equal(result.code, 'ERR_MEMMAP_TRUNCATED');
      assert.equal(result.again, 'ERR_MEMMAP_TRUNCATED');
      assert.equal(result.wrong, 0, 'no line of zeros from a vanished page came out');
      assert.ok(result.after < 4096 - 3, `the iteration ended early (${result.after} lines after the truncation)`);
    });
  }

  it('createReadStream() is destroyed with ERR_MEMMAP_TRUNCATED', async () => {
    const path = fileWith(Buffer.alloc(100 * 4096, 0x41));
    const child = await runModule(
      `
      const { truncateSync } = await import('node:fs');
      const { mapFile } = await import(process.env.MEMMAP);
      const m = mapFile(process.env.FILE);
      const stream = m.createReadStream({ highWaterMark: 4096 });
      let code = null, bytes = 0, sum = 0;
      try {
        for await (const chunk of stream) {
          bytes += chunk.length;
          sum += chunk[0] + chunk[chunk.length - 1];
          if (bytes === 8192) truncateSync(process.env.FILE, 4096);
        }
      } catch (e) { code = e.code; }
      try { m.close(); } catch {}
      process.stdout.write(JSON.stringify({ code, bytes }));
      `,
      { FILE: path },
    );
    assertExitedCleanly(child);
    const result = JSON.parse(child.stdout) as { code: string; bytes: number };
    assert.equal(result.code, 'ERR_MEMMAP_TRUNCATED');
  });
});

describe('lines() above 4 GiB', () => {
  it('reads a sparse file larger than a Buffer, across the window edge, without the caller noticing', (t) => {
    const path = join(dir, 'sparse-lines.bin');
    const size = 2 ** 32 + 3 * 4096;
    const fd = openSync(path, 'w+');
    const marks: [number, string][] = [
      [0, 'first\n'],
      [2 ** 31 - 1, '\nmiddle\n'],
      [2 ** 32 - 3, '\nacross the edge\n'],
      [size - 5, '\nlast'],
    ];
    try {
      ftruncateSync(fd, size);
      for (const [at, text] of marks) writeSync(fd, Buffer.from(text), 0, text.length, at);
    } finally {
      closeSync(fd);
    }
    t.after(() => {
      evict(path);
      rmSync(path, { force: true });
    });
    let m: Mapping;
    try {
      m = mapFile(path);
      m.sharedBuffer();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_MEMMAP_UNSUPPORTED')
        return t.skip('no SharedArrayBuffer here');
      throw error;
    }
    using _m = m;
    if (size <= bufferConstants.MAX_LENGTH) t.diagnostic('a Buffer holds the whole file here: one window');
    // Near the start, the middle, the 4 GiB edge and the end, as strings.
    assert.deepEqual([...m.lines({ end: 6 })], ['first']);
    assert.deepEqual([...m.lines({ start: 2 ** 31 - 100, end: 2 ** 31 + 5 })], ['middle']);
    assert.deepEqual([...m.lines({ start: 2 ** 32 - 100, end: 2 ** 32 + 10 })], ['across the edge']);
    assert.deepEqual([...m.lines({ start: size - 100 })], ['last']);
    // The whole file, raw: the holes are long lines of zeros, one of them across 4 GiB.
    const seen: string[] = [];
    let bytes = 0;
    for (const line of m.lines({ raw: true })) {
      bytes += line.length + 1;
      seen.push(line.length > 100 ? `${line.length} zeros` : line.toString());
    }
    assert.equal(bytes, size + 1, 'every byte, and no newline after the last line');
    assert.deepEqual(seen, [
      'first',
      `${2 ** 31 - 1 - 6} zeros`,
      'middle',
      `${2 ** 32 - 3 - (2 ** 31 - 1 + 8)} zeros`,
      'across the edge',
      `${size - 5 - (2 ** 32 - 3 + 17)} zeros`,
      'last',
    ]);
    const tail = [...m.records(4096, { start: size - 4096 })];
    assert.equal(tail.length, 1);
    assert.equal(tail[0]?.toString('latin1', 4091), '\nlast');
  });
});

describe('examples/parallel-scan', () => {
  it('counts the same ERROR lines as lines() with any number of workers, and the same last five', async () => {
    let text = '';
    for (let i = 0; i < 3000; i++)
      text += `${i} ${i % 7 === 0 ? 'ERROR boom' : 'INFO ok'}${i % 11 === 0 ? '\r' : ''}\n`;
    const path = fileWith(`${text}last ERROR without newline`);
    const expected: string[] = [];
    {
      using m = mapFile(path);
      for (const line of m.lines()) if (line.includes('ERROR')) expected.push(line);
    }
    for (const threads of [1, 2, 3, 7]) {
      const { count, last } = await scanErrors(path, threads);
      assert.equal(count, expected.length, `${threads} threads`);
      assert.deepEqual(last, expected.slice(-5), `${threads} threads`);
    }
  });
});
