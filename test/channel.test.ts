import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Channel, SharedMemory } from '../src/index.js';
import { assertThrowsCode } from './helpers/index.js';

const HEADER = 4096;
const TAIL = 128 / 8;
const HEAD_CACHE = 256 / 8;
const HEAD = 384 / 8;

/** The channel's memory, mapped a second time: what a peer (or a hostile one) sees. */
function peerOf(ch: Channel): { shm: SharedMemory; words: Int32Array; longs: BigInt64Array } {
  const shm = SharedMemory.fromFd(ch.fd);
  const b = shm.buffer;
  return {
    shm,
    words: new Int32Array(b.buffer, b.byteOffset, b.length >> 2),
    longs: new BigInt64Array(b.buffer, b.byteOffset, b.length >> 3),
  };
}

function payload(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (seed + i * 31) & 0xff;
  return b;
}

const align = (n: number) => (n + 7) & ~7;

describe('Channel: layout and options', () => {
  it('writes the documented header, and seals the memory file against shrink and grow', () => {
    using ch = Channel.create({ capacity: 4096, maxMessage: 100 });
    const peer = peerOf(ch);
    try {
      assert.equal(peer.shm.buffer.toString('latin1', 0, 4), 'mmch');
      assert.deepEqual([...peer.words.subarray(1, 5)], [1, 4096, 4096, 100]);
      assert.equal(peer.shm.length, HEADER + 4096);
      assert.deepEqual(peer.shm.seals.sort(), ['grow', 'shrink']);
      assert.equal(ch.capacity, 4096);
      assert.equal(ch.maxMessage, 100);
      assert.equal(ch.name, null);
    } finally {
      peer.shm.close();
    }
    assert.equal(Channel.create({ capacity: 1024 }).maxMessage, 1024 / 8 - 8);
  });

  it('refuses bad options with argument codes', () => {
    assertThrowsCode(() => Channel.create({ capacity: 3000 }), 'ERR_OUT_OF_RANGE', RangeError);
    assertThrowsCode(() => Channel.create({ capacity: 512 }), 'ERR_OUT_OF_RANGE', RangeError);
    assertThrowsCode(() => Channel.create({ capacity: 2 ** 31 }), 'ERR_OUT_OF_RANGE', RangeError);
    assertThrowsCode(() => Channel.create({ capacity: 1024, maxMessage: 121 }), 'ERR_OUT_OF_RANGE', RangeError);
    assertThrowsCode(() => Channel.create({ capacity: '1024' } as never), 'ERR_INVALID_ARG_TYPE', TypeError);
    assertThrowsCode(() => Channel.create({ size: 1024 } as never), 'ERR_INVALID_ARG_VALUE', TypeError);
    using ch = Channel.create({ capacity: 1024 });
    assertThrowsCode(() => ch.producer({ codec: 'xml' } as never), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => ch.producer({ codec: { encode() {} } } as never), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => ch.consumer({ unblockAfter: -1 }), 'ERR_OUT_OF_RANGE');
    const tx = ch.producer();
    assertThrowsCode(() => tx.trySend(Buffer.alloc(121)), 'ERR_OUT_OF_RANGE', RangeError);
    assertThrowsCode(() => tx.trySend('text' as never), 'ERR_INVALID_ARG_TYPE');
    assertThrowsCode(() => tx.trySend(Buffer.alloc(1), -1), 'ERR_OUT_OF_RANGE');
    assertThrowsCode(() => tx.tryClaim(121), 'ERR_OUT_OF_RANGE');
  });

  it('open and fromFd check the header, one rule each, with layout codes', () => {
    const cases: [string, (w: Int32Array) => void, string][] = [
      ['magic', (w) => (w[0] = 0x12345678), 'ERR_MEMMAP_CHANNEL_LAYOUT'],
      ['version', (w) => (w[1] = 2), 'ERR_MEMMAP_CHANNEL_VERSION'],
      ['header length', (w) => (w[2] = 8192), 'ERR_MEMMAP_CHANNEL_LAYOUT'],
      ['capacity not a power of two', (w) => (w[3] = 3000), 'ERR_MEMMAP_CHANNEL_LAYOUT'],
      ['capacity larger than the memory', (w) => (w[3] = 1 << 20), 'ERR_MEMMAP_CHANNEL_LAYOUT'],
      ['maxMessage', (w) => (w[4] = 1 << 20), 'ERR_MEMMAP_CHANNEL_LAYOUT'],
    ];
    for (const [, spoil, code] of cases) {
      using ch = Channel.create({ capacity: 1024 });
      const peer = peerOf(ch);
      spoil(peer.words);
      assertThrowsCode(() => Channel.fromFd(ch.fd), code);
      peer.shm.close();
    }
    using small = SharedMemory.anonymous(100);
    assertThrowsCode(() => Channel.fromFd(small.fd), 'ERR_MEMMAP_CHANNEL_LAYOUT');
    using blank = SharedMemory.anonymous(HEADER + 1024);
    assertThrowsCode(() => Channel.fromFd(blank.fd), 'ERR_MEMMAP_CHANNEL_LAYOUT');
    assertThrowsCode(() => Channel.fromFd(1 << 20), 'EBADF');
  });

  it('a named channel is opened by name and reads the same ring', () => {
    const name = `/memmap-channel-${process.pid}`;
    using ch = Channel.create({ name, capacity: 1024 });
    try {
      assertThrowsCode(() => Channel.create({ name, capacity: 1024 }), 'EEXIST');
      using other = Channel.open(name);
      assert.equal(other.name, name);
      assert.ok(other.producer().trySend(Buffer.from('by name')));
      const m = ch.consumer().tryReceive();
      assert.equal(m?.view.toString(), 'by name');
    } finally {
      Channel.unlink(name);
    }
    assertThrowsCode(() => Channel.open(name), 'ENOENT');
  });
});

describe('Channel: records', () => {
  it('carries every length at every index of the ring, with padding at the end', () => {
    using ch = Channel.create({ capacity: 1024, maxMessage: 120 });
    const tx = ch.producer();
    const rx = ch.consumer();
    const peer = peerOf(ch);
    let sent = 0;
    let received = 0;
    const indexes = new Set<number>();
    let paddings = 0;
    const receiveOne = () => {
      const m = rx.tryReceive();
      assert.ok(m, 'a message was sent');
      const length = received % 121;
      assert.equal(m.type, received % 1000);
      assert.ok(m.view.equals(payload(length, received)), `message ${received} of ${length} bytes`);
      m.release();
      received++;
    };
    // Lengths 0..120 over and over, 13 laps of 121: the tail passes every 8-byte index.
    for (let round = 0; round < 121 * 13; round++) {
      const length = sent % 121;
      const tail = Number(Atomics.load(peer.longs, TAIL));
      const index = tail & 1023;
      indexes.add(index);
      if (index + align(length + 8) > 1024) paddings++;
      while (!tx.trySend(payload(length, sent), sent % 1000)) receiveOne();
      sent++;
      if (sent % 3 === 0) receiveOne();
    }
    while (received < sent) receiveOne();
    assert.equal(rx.tryReceive(), null);
    assert.equal(indexes.size, 1024 / 8, 'every index was a record start');
    assert.ok(paddings > 10, `records padded the end ${paddings} times`);
    // Everything consumed reads zeros again, so unwritten space is always 0.
    assert.ok(peer.shm.buffer.subarray(HEADER).every((b) => b === 0));
    assert.equal(Atomics.load(peer.longs, HEAD), Atomics.load(peer.longs, TAIL));
    peer.shm.close();
  });

  it('a record that fits exactly at the end takes no padding; the next starts at 0', () => {
    using ch = Channel.create({ capacity: 1024, maxMessage: 120 });
    const tx = ch.producer();
    const rx = ch.consumer();
    const peer = peerOf(ch);
    // 896 bytes in 8 records of 112 (104 of payload), released: the tail is at 896.
    for (let i = 0; i < 8; i++) assert.ok(tx.trySend(payload(104, i)));
    for (let i = 0; i < 8; i++) rx.tryReceive()?.release();
    assert.equal(Atomics.load(peer.longs, TAIL), 896n);
    assert.ok(tx.trySend(payload(120, 1))); // 128 bytes: exactly to the end
    assert.equal(Atomics.load(peer.longs, TAIL), 1024n);
    assert.equal(peer.words[(HEADER + 896) >> 2], 128);
    assert.ok(tx.trySend(payload(3, 2)));
    assert.equal(peer.words[HEADER >> 2], 11, 'the next record at index 0');
    assert.ok(rx.tryReceive()?.view.equals(payload(120, 1)));
    peer.shm.close();
  });

  it('reports full from positions, also when the head index equals the tail index', () => {
    using ch = Channel.create({ capacity: 1024, maxMessage: 120 });
    const tx = ch.producer();
    const rx = ch.consumer();
    for (let i = 0; i < 8; i++) assert.ok(tx.trySend(payload(120, i)));
    assert.equal(tx.trySend(Buffer.alloc(0)), false, 'full: head and tail indexes are equal, positions are not');
    assert.equal(tx.tryClaim(0), null);
    for (let i = 0; i < 2; i++) rx.tryReceive()?.release();
    assert.ok(tx.trySend(payload(120, 8)));
    assert.ok(tx.trySend(payload(120, 9)));
    assert.equal(tx.trySend(Buffer.alloc(0)), false);
    for (let i = 2; i < 10; i++) assert.ok(rx.tryReceive()?.view.equals(payload(120, i)));
    assert.equal(rx.tryReceive(), null, 'empty: the same indexes again');
  });

  it('a claim that only pads reports full; the record goes to index 0 once the front is free', () => {
    using ch = Channel.create({ capacity: 1024, maxMessage: 120 });
    const tx = ch.producer();
    const rx = ch.consumer();
    const peer = peerOf(ch);
    // 30 records of 32 bytes: the tail at 960, 64 bytes left, all before the end.
    for (let i = 0; i < 30; i++) assert.ok(tx.trySend(payload(24, i)));
    // A 128-byte record: the 64 bytes to the end can be padded, the record fits nowhere.
    assert.equal(tx.trySend(payload(120, 99)), false, 'a pad-only claim is full');
    assert.equal(Atomics.load(peer.longs, TAIL), 1024n, 'the end was padded all the same');
    assert.equal(peer.words[(HEADER + 960) >> 2], 64);
    assert.equal(peer.words[(HEADER + 964) >> 2], -1);
    assert.equal(tx.trySend(Buffer.alloc(0)), false, 'nothing fits at the front yet');
    // Four records consumed: 128 bytes free at the front, contiguous thanks to the padding.
    for (let i = 0; i < 4; i++) rx.tryReceive()?.release();
    assert.ok(tx.trySend(payload(120, 99)));
    assert.equal(peer.words[HEADER >> 2], 128, 'at index 0');
    for (let i = 4; i < 30; i++) assert.ok(rx.tryReceive()?.view.equals(payload(24, i)));
    assert.ok(rx.tryReceive()?.view.equals(payload(120, 99)), 'the padding is skipped');
    assert.equal(rx.tryReceive(), null);
    peer.shm.close();
  });

  it('positions are 64-bit: the ring runs on across 2^32', () => {
    using ch = Channel.create({ capacity: 1024, maxMessage: 120 });
    const peer = peerOf(ch);
    const near = 2n ** 32n - 600n;
    for (const at of [TAIL, HEAD_CACHE, HEAD]) Atomics.store(peer.longs, at, near);
    const tx = ch.producer();
    const rx = ch.consumer();
    for (let i = 0; i < 200; i++) {
      assert.ok(tx.trySend(payload(i % 100, i), i));
      const m = rx.tryReceive();
      assert.equal(m?.type, i);
      assert.ok(m?.view.equals(payload(i % 100, i)));
      m?.release();
    }
    assert.ok(Atomics.load(peer.longs, HEAD) > 2n ** 32n);
    assert.equal(Atomics.load(peer.longs, HEAD), Atomics.load(peer.longs, TAIL));
    peer.shm.close();
  });

  it('claims are written in place, committed with a type or aborted; the head waits for a claim in progress', () => {
    using ch = Channel.create({ capacity: 1024 });
    const tx = ch.producer();
    const rx = ch.consumer();
    const first = tx.tryClaim(5);
    assert.ok(first);
    first.view.write('first');
    const second = tx.tryClaim(6);
    assert.ok(second);
    second.view.write('second');
    second.commit(2);
    assert.equal(rx.tryReceive(), null, 'the first claim holds the head');
    first.commit(1);
    const a = rx.tryReceive();
    const b = rx.tryReceive();
    assert.deepEqual([a?.type, a?.view.toString(), b?.type, b?.view.toString()], [1, 'first', 2, 'second']);
    const aborted = tx.tryClaim(10);
    assert.ok(aborted);
    aborted.abort();
    assertThrowsCode(() => aborted.commit(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => first.commit(), 'ERR_MEMMAP_CLOSED');
    assert.ok(tx.trySend(Buffer.from('after')));
    const c = rx.tryReceive();
    assert.equal(c?.view.toString(), 'after', 'the aborted claim is skipped');
    // Released out of order: space is freed in order, views stay valid until their release.
    b?.release();
    assert.equal(a?.view.toString(), 'first');
    a?.release();
    c?.release();
    a?.release();
    assert.equal(rx.tryReceive(), null);
  });

  it('codecs: utf8, json and an encode/decode pair', () => {
    using ch = Channel.create({ capacity: 4096 });
    const text = ch.producer({ codec: 'utf8' });
    const json = ch.producer({ codec: 'json' });
    const custom = ch.producer({ codec: { encode: (n: number) => Buffer.from([n]), decode: (v: Buffer) => v[0] } });
    const rx = ch.consumer({ codec: 'bytes' });
    assert.ok(text.trySend('héllo ✓'));
    assert.ok(json.trySend({ a: [1, 'b'] }));
    assert.ok(custom.trySend(42));
    assertThrowsCode(() => json.trySend(undefined), 'ERR_INVALID_ARG_VALUE');
    assertThrowsCode(() => text.trySend(1 as never), 'ERR_INVALID_ARG_TYPE');
    const m1 = rx.tryReceive();
    assert.equal(m1?.view.toString(), 'héllo ✓');
    m1?.release();
    assertThrowsCode(() => m1?.value, 'ERR_MEMMAP_CLOSED');
    rx.close();
    const asJson = ch.consumer({ codec: 'json' });
    assert.deepEqual(asJson.tryReceive()?.value, { a: [1, 'b'] });
  });

  it('one consumer: a second is busy; a closed one gives the role back and the next resumes at the head', () => {
    using ch = Channel.create({ capacity: 1024 });
    const tx = ch.producer({ codec: 'utf8' });
    const rx = ch.consumer({ codec: 'utf8' });
    assertThrowsCode(() => ch.consumer(), 'ERR_MEMMAP_CHANNEL_BUSY');
    tx.trySend('one');
    tx.trySend('two');
    const one = rx.tryReceive();
    one?.release();
    assert.equal(rx.tryReceive()?.value, 'two'); // read, never released
    rx.close();
    assertThrowsCode(() => rx.tryReceive(), 'ERR_MEMMAP_CLOSED');
    const again = ch.consumer({ codec: 'utf8' });
    assert.equal(again.tryReceive()?.value, 'two', 'at least once: what was not released comes again');
  });

  it('every call after close() throws ERR_MEMMAP_CLOSED', () => {
    const ch = Channel.create({ capacity: 1024 });
    const tx = ch.producer();
    const rx = ch.consumer();
    const claim = tx.tryClaim(1);
    ch.close();
    ch.close();
    assert.equal(ch.closed, true);
    assert.equal(ch.fd, -1);
    assertThrowsCode(() => tx.trySend(Buffer.alloc(1)), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => tx.tryClaim(1), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => claim?.commit(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => rx.tryReceive(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => ch.producer(), 'ERR_MEMMAP_CLOSED');
    assertThrowsCode(() => ch.consumer(), 'ERR_MEMMAP_CLOSED');
  });
});

describe('Channel: a hostile peer', () => {
  const spoilers: [string, (w: Int32Array, index: number) => void][] = [
    ['a length shorter than the header', (w, i) => (w[i] = 4)],
    ['a length past the ring end', (w, i) => (w[i] = 2000)],
    [
      'a length past the ring end from the last index',
      (w, i) => {
        w[i] = 1016; // a padding record up to index 1016, then a record that would wrap
        w[i + 1] = -1;
        w[(HEADER + 1016) >> 2] = 16;
      },
    ],
    ['a negative type that is not padding', (w, i) => (w[i + 1] = -7)],
    ['a payload above maxMessage', (w, i) => (w[i] = 8 + 121)],
    ['a claim whose length does not fit', (w, i) => (w[i] = -4000)],
  ];
  for (const [rule, spoil] of spoilers) {
    it(`a record with ${rule} is ERR_MEMMAP_CHANNEL_CORRUPT, never a view outside the ring`, async () => {
      using ch = Channel.create({ capacity: 1024, maxMessage: 120 });
      const tx = ch.producer();
      const rx = ch.consumer({ unblockAfter: 0 });
      const peer = peerOf(ch);
      assert.ok(tx.trySend(Buffer.alloc(10)));
      spoil(peer.words, HEADER >> 2);
      if (rule.startsWith('a claim')) {
        // The consumer looks at a blocked head only every so often, or before it sleeps.
        await assert.rejects(rx.receive(), (e: NodeJS.ErrnoException) => e.code === 'ERR_MEMMAP_CHANNEL_CORRUPT');
      } else {
        assertThrowsCode(() => rx.tryReceive(), 'ERR_MEMMAP_CHANNEL_CORRUPT');
      }
      peer.shm.close();
    });
  }

  it('a tail and head further apart than the capacity are ERR_MEMMAP_CHANNEL_CORRUPT for producers', () => {
    using ch = Channel.create({ capacity: 1024 });
    const peer = peerOf(ch);
    Atomics.store(peer.longs, TAIL, 5000n);
    assertThrowsCode(() => ch.producer().trySend(Buffer.alloc(1)), 'ERR_MEMMAP_CHANNEL_CORRUPT');
    Atomics.store(peer.longs, TAIL, 0n);
    Atomics.store(peer.longs, HEAD, 64n);
    Atomics.store(peer.longs, HEAD_CACHE, 64n);
    assertThrowsCode(() => ch.producer().trySend(Buffer.alloc(1)), 'ERR_MEMMAP_CHANNEL_CORRUPT');
    peer.shm.close();
  });

  it('fuzzed ring bytes and positions give records inside the ring or coded errors', () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed;
    };
    const codes = new Set<string>();
    for (let round = 0; round < 300; round++) {
      using ch = Channel.create({ capacity: 1024, maxMessage: 120 });
      const peer = peerOf(ch);
      const tx = ch.producer();
      for (let i = 0; i < 10; i++) tx.trySend(payload(random() % 121, i));
      for (let i = 0; i < 1 + (random() % 6); i++) {
        const word = (HEADER >> 2) + ((random() % 256) & ~1) + (random() % 2);
        peer.words[word] = random() % 3 === 0 ? random() | 0 : (random() % 2048) - 1024;
      }
      if (random() % 4 === 0) Atomics.store(peer.longs, TAIL, BigInt(random()));
      const rx = ch.consumer({ unblockAfter: 0 });
      try {
        for (let i = 0; i < 40; i++) {
          const m = rx.tryReceive();
          if (m === null) continue;
          assert.ok(m.view.byteOffset >= HEADER && m.view.byteOffset + m.view.length <= HEADER + 1024);
          assert.ok(m.view.length <= 120);
          m.release();
          tx.trySend(payload(random() % 121, i));
        }
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code as string;
        assert.ok(code === 'ERR_MEMMAP_CHANNEL_CORRUPT', `unexpected ${code}: ${(error as Error).message}`);
        codes.add(code);
      }
      peer.shm.close();
    }
    assert.ok(codes.has('ERR_MEMMAP_CHANNEL_CORRUPT'));
  });
});
