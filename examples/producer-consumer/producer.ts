/** The writer: puts each message in the slot once it is free, then tells the consumer. */
import { Semaphore, SharedMemory } from '../../src/index.js';
import { DONE, EMPTY_AT, FULL_AT, LENGTH_AT, TEXT_AT } from './layout.js';

const [name, ...messages] = process.argv.slice(2);
using shm = SharedMemory.open(name as string);
const empty = Semaphore.attach(shm, EMPTY_AT);
const full = Semaphore.attach(shm, FULL_AT);
for (const text of [...messages, DONE]) {
  await empty.waitAsync({ timeout: 10_000 });
  const length = shm.buffer.write(text, TEXT_AT);
  shm.buffer.writeUInt32LE(length, LENGTH_AT);
  full.post();
}
