// One sequential scan of FILE in a fresh process, so that its time and its anonymous memory
// (RssAnon: heap and Buffers, not the page cache) are its own. Prints {seconds, sum, rssAnon}.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';

const [variant, file] = process.argv.slice(2);
const { mapFile } = await import(process.env.MEMMAP);
const { sumFile } = await import(new URL('internal/checksum.js', process.env.MEMMAP).href);

function jsSum(bytes) {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) sum += bytes[i];
  return sum;
}

function rssAnon() {
  return Number(/^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
}

let sum;
let anon;
const start = process.hrtime.bigint();
switch (variant) {
  case 'memmap': {
    // What `memmap checksum` runs: map read-only with sequential advice, native byte sum.
    sum = Number(sumFile(file).sum);
    break;
  }
  case 'memmap-js-loop': {
    const m = mapFile(file, { advice: 'sequential' });
    sum = jsSum(m.buffer);
    anon = rssAnon();
    m.close();
    break;
  }
  case 'readFileSync': {
    const data = readFileSync(file);
    sum = jsSum(data);
    anon = rssAnon();
    break;
  }
  case 'readSync-1MiB': {
    const fd = openSync(file, 'r');
    const chunk = Buffer.alloc(1 << 20);
    sum = 0;
    for (let position = 0, n = 1; n > 0; position += n) {
      n = readSync(fd, chunk, 0, chunk.length, position);
      sum += jsSum(chunk.subarray(0, n));
    }
    anon = rssAnon();
    closeSync(fd);
    break;
  }
  case 'peer': {
    const require = createRequire(new URL('../package.json', import.meta.url));
    const mmap = require('@riaskov/mmap-io');
    const fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const buffer = mmap.map(size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0);
    sum = jsSum(buffer);
    anon = rssAnon();
    closeSync(fd);
    break;
  }
  default:
    throw new Error(`unknown variant ${variant}`);
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stdout.write(`${JSON.stringify({ seconds, sum, rssAnon: anon ?? rssAnon() })}\n`);
