/**
 * The classic producer and consumer, as two Node processes sharing a named memory object and
 * two semaphores inside it:
 *
 *   npm run example:producer-consumer
 *
 * This process creates the object, starts both, waits for them, and removes the name.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Semaphore, SharedMemory } from '../../src/index.js';
import { EMPTY_AT, FULL_AT, SIZE } from './layout.js';

const name = `/memmap-example-${process.pid}`;
using shm = SharedMemory.create(name, SIZE, { exclusive: true });
try {
  Semaphore.create(shm, EMPTY_AT, 1); // the slot starts free
  Semaphore.create(shm, FULL_AT, 0);
  const start = (file: string, args: string[]) =>
    spawn(process.execPath, [fileURLToPath(new URL(file, import.meta.url)), name, ...args], { stdio: 'inherit' });
  const children = [
    start('./consumer.js', []),
    start('./producer.js', ['hello', 'from another process', 'through shared memory', 'zero copies']),
  ];
  const codes = await Promise.all(children.map((child) => new Promise((done) => child.once('exit', done))));
  console.log(codes.every((code) => code === 0) ? 'both processes finished' : `exit codes: ${codes.join(', ')}`);
  process.exitCode = codes.every((code) => code === 0) ? 0 : 1;
} finally {
  SharedMemory.unlink(name);
}
