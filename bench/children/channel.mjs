// The far side of the channel case. Prints "ready" once set up, then "done" when finished.
//
//   channel-sink COUNT            receives COUNT messages from the channel at fd 3
//   channel-echo ROUNDS SPIN      answers ROUNDS messages from fd 3 on the channel at fd 4
//   ipc-sink COUNT                counts COUNT process.send messages (started with fork)
//   ipc-echo ROUNDS               echoes process.send messages
//   socket-sink PATH BYTES        reads BYTES from the Unix socket PATH
//   socket-echo PATH SIZE ROUNDS  echoes SIZE-byte messages over the Unix socket PATH
import { connect } from 'node:net';

const [mode, a, b, c] = process.argv.slice(2);
const ready = () => process.stdout.write('ready\n');
const done = () => process.stdout.write('done\n');

if (mode === 'channel-sink') {
  const { Channel } = await import(process.env.MEMMAP);
  const count = Number(a);
  const rx = Channel.fromFd(3).consumer();
  ready();
  for (let n = 0; n < count; n++) {
    const m = rx.tryReceive() ?? (await rx.receive());
    m.release();
  }
  done();
  process.exit(0);
} else if (mode === 'channel-echo') {
  const { Channel } = await import(process.env.MEMMAP);
  const rounds = Number(a);
  const spin = Number(b);
  const rx = Channel.fromFd(3).consumer({ spin });
  const tx = Channel.fromFd(4).producer();
  ready();
  for (let n = 0; n < rounds; n++) {
    const m = rx.tryReceive() ?? (await rx.receive());
    tx.trySend(m.view);
    m.release();
  }
  done();
  process.exit(0);
} else if (mode === 'ipc-sink') {
  const count = Number(a);
  let n = 0;
  process.on('message', () => {
    if (++n === count) {
      process.send('done');
      process.disconnect();
    }
  });
  ready();
} else if (mode === 'ipc-echo') {
  process.on('message', (m) => process.send(m));
  ready();
} else if (mode === 'socket-sink') {
  let left = Number(b);
  const socket = connect(a, ready);
  socket.on('data', (chunk) => {
    left -= chunk.length;
    if (left <= 0) {
      done();
      socket.end();
    }
  });
} else if (mode === 'socket-echo') {
  const size = Number(b);
  let rounds = Number(c);
  let have = 0;
  const socket = connect(a, ready);
  socket.setNoDelay(true);
  socket.on('data', (chunk) => {
    have += chunk.length;
    while (have >= size) {
      have -= size;
      socket.write(chunk.subarray(0, size));
      if (--rounds === 0) socket.end();
    }
  });
}
