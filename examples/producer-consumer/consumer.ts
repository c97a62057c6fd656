/** The reader: waits for a message, prints it, frees the slot; stops at the last one. */
import { Semaphore, SharedMemory } from '../../src/index.js';
import { DONE, EMPTY_AT, FULL_AT, LENGTH_AT, TEXT_AT } from './layout.js';

using shm = SharedMemory.open(process.argv[2] as string);
const empty = Semaphore.attach(shm, EMPTY_AT);
const full = Semaphore.attach(shm, FULL_AT);
for (;;) {
  await full.waitAsync({ timeout: 10_000 });
  const text = shm.buffer.toString('utf8', TEXT_AT, TEXT_AT + shm.buffer.readUInt32LE(LENGTH_AT));
  empty.post();
  if (text === DONE) break;
  console.log(`consumer (pid ${process.pid}) got: ${text}`);
}
