/**
 * A worker of the channel pool: sums each job's range and answers, through channels (jobs on
 * fd 3, results to fd 4) or through process.send, as its first argument says. A null job (or 'stop') ends it.
 */
import { Channel } from '../../src/index.js';

interface Job {
  id: number;
  from: number;
  to: number;
}

function work(job: Job): { id: number; sum: number } {
  let sum = 0;
  for (let n = job.from; n < job.to; n++) sum += n;
  return { id: job.id, sum };
}

if (process.argv[2] === 'channel') {
  using jobs = Channel.fromFd(3);
  using results = Channel.fromFd(4);
  const tx = results.producer({ codec: 'json' });
  for await (const m of jobs.consumer({ codec: 'json' })) {
    if (m.value === null) break;
    await tx.send(work(m.value as Job));
  }
} else {
  process.on('message', (job: Job | 'stop') => {
    if (job === 'stop') process.disconnect();
    else process.send?.(work(job));
  });
}
