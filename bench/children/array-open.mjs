// Opens an array file one way and touches one tensor, in a fresh process so that the time and
// the anonymous memory (RssAnon) it costs are its own. Prints one JSON line:
// { ms, rssAnon, check }: milliseconds from before the open to after the first element read,
// the growth of RssAnon in bytes, and a value read (so that nothing is optimised away).
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

const [how, file, name] = process.argv.slice(2);
const memmap = await import(process.env.MEMMAP);

function rssAnon() {
  const match = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** The safetensors header's JSON and where the data starts, read the plain way. */
function stHeader(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.toString('utf8', 8, 8 + n)), start: 8 + n };
}

/** The .npy header fields a plain reader needs: where the data starts and how many elements. */
function npyHeader(bytes) {
  const major = bytes[6];
  const length = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + length;
  const text = bytes.toString('latin1', major === 1 ? 10 : 12, start);
  const shape = /'shape': \(([^)]*)\)/
    .exec(text)[1]
    .split(',')
    .filter((s) => s.trim())
    .map(Number);
  return { start, count: shape.reduce((a, b) => a * b, 1) };
}

// Warm up the code paths this process uses on a tiny read, so the figure is not JIT time.
readFileSync('/proc/self/status');
const before = rssAnon();
const started = process.hrtime.bigint();
let check;
let keep;
switch (how) {
  case 'memmap-safetensors':
  case 'memmap-safetensors-shared': {
    keep = memmap.openSafetensors(file, { shared: how.endsWith('-shared') });
    check = keep.get(name).data[0];
    break;
  }
  case 'readFileSync-safetensors': {
    const bytes = readFileSync(file);
    const { header, start } = stHeader(bytes);
    const [begin, end] = header[name].data_offsets;
    keep = new Float32Array(bytes.buffer, bytes.byteOffset + start + begin, (end - begin) / 4);
    check = keep[0];
    break;
  }
  case 'fs.read-safetensors': {
    const fd = openSync(file, 'r');
    const prefix = Buffer.alloc(8);
    readSync(fd, prefix, 0, 8, 0);
    const n = Number(prefix.readBigUInt64LE(0));
    const json = Buffer.alloc(n);
    readSync(fd, json, 0, n, 8);
    const [begin, end] = JSON.parse(json.toString('utf8'))[name].data_offsets;
    const data = Buffer.allocUnsafe(end - begin);
    for (let done = 0; done < data.length; ) done += readSync(fd, data, done, data.length - done, 8 + n + begin + done);
    closeSync(fd);
    keep = new Float32Array(data.buffer, data.byteOffset, data.length / 4);
    check = keep[0];
    break;
  }
  case 'memmap-npy':
  case 'memmap-npy-shared': {
    keep = memmap.openNpy(file, { shared: how.endsWith('-shared') });
    check = keep.data[0];
    break;
  }
  case 'readFileSync-npy': {
    const bytes = readFileSync(file);
    const { start, count } = npyHeader(bytes);
    keep = new Float32Array(bytes.buffer, bytes.byteOffset + start, count);
    check = keep[0];
    break;
  }
  default:
    throw new Error(`unknown way ${how}`);
}
const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(`${JSON.stringify({ ms, rssAnon: rssAnon() - before, check })}\n`);
