// The far side of case 6's ping-pong: answers ROUNDS pings, each the way MODE says, then exits.
//
//   futex NAME ROUNDS            futex.wait / futex.wake on two words of the SharedMemory NAME
//   semaphore NAME ROUNDS SPIN   Semaphore.wait({ spin }) / post on two semaphores in NAME
//   async NAME ROUNDS            Semaphore.waitAsync / post
//   socket PATH ROUNDS           echoes 64-byte messages over the Unix socket PATH
//   ipc - ROUNDS                 echoes process.send messages (started with fork)
//   shm-typed-array KEY ROUNDS   spins on Atomics.load over the peer's System V segment KEY
//
// Prints "ready" once set up. Word layout as in bench/cases/sync.ts.
import { createRequire } from 'node:module';
import { connect } from 'node:net';

const [mode, where, roundsText, spinText] = process.argv.slice(2);
const rounds = Number(roundsText);
const { SharedMemory, Semaphore, futex } = await import(process.env.MEMMAP);
const ready = () => process.stdout.write('ready\n');

if (mode === 'futex') {
  const shm = SharedMemory.open(where);
  const words = new Int32Array(shm.sharedBuffer(), 0, 32);
  ready();
  for (let i = 1; i <= rounds; i++) {
    for (let seen = Atomics.load(words, 0); seen !== i; seen = Atomics.load(words, 0)) futex.wait(words, 0, seen);
    Atomics.store(words, 16, i);
    futex.wake(words, 16, 1);
  }
  shm.close();
} else if (mode === 'semaphore' || mode === 'async') {
  const shm = SharedMemory.open(where);
  const ping = Semaphore.attach(shm, 128);
  const pong = Semaphore.attach(shm, 192);
  const options = { spin: Number(spinText ?? 0) };
  ready();
  for (let i = 0; i < rounds; i++) {
    if (mode === 'async') await ping.waitAsync();
    else ping.wait(options);
    pong.post();
  }
  shm.close();
} else if (mode === 'socket') {
  const socket = connect(where);
  let pending = 0;
  socket.on('data', (chunk) => {
    // Echo whole 64-byte messages; a chunk may hold part of one or several.
    pending += chunk.length;
    while (pending >= 64) {
      pending -= 64;
      socket.write(Buffer.alloc(64, 1));
    }
  });
  socket.once('connect', ready);
} else if (mode === 'ipc') {
  process.on('message', (message) => process.send(message));
  ready();
} else if (mode === 'shm-typed-array') {
  const require = createRequire(new URL('../package.json', import.meta.url));
  const shm = require('shm-typed-array');
  const words = shm.get(Number(where), 'Int32Array');
  ready();
  for (let i = 1; i <= rounds; i++) {
    while (Atomics.load(words, 0) !== i);
    Atomics.store(words, 16, i);
  }
  shm.detach(Number(where));
}
