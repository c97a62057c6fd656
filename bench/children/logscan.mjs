// One log scan of FILE in a fresh process: count the lines that contain ERROR and keep the last
// five. Prints {seconds, count, last, rssAnon} or {error} when the subject cannot read the file.
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const [variant, file] = process.argv.slice(2);
const { mapFile } = await import(process.env.MEMMAP);

function rssAnon() {
  return Number(/^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
}

let count = 0;
const last = [];
function take(line) {
  if (!line.includes('ERROR')) return;
  count++;
  last.push(line);
  if (last.length > 5) last.shift();
}

const start = process.hrtime.bigint();
let anon;
try {
  switch (variant) {
    case 'lines': {
      const m = mapFile(file, { advice: 'sequential' });
      for (const line of m.lines()) take(line);
      anon = rssAnon();
      m.close();
      break;
    }
    case 'lines-async': {
      const m = mapFile(file, { advice: 'sequential' });
      for await (const line of m.lines()) take(line);
      anon = rssAnon();
      m.close();
      break;
    }
    case 'readline': {
      const input = createReadStream(file);
      for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) take(line);
      anon = rssAnon();
      break;
    }
    case 'readFileSync-split': {
      const lines = readFileSync(file, 'utf8').split('\n');
      for (const line of lines) take(line);
      anon = rssAnon();
      break;
    }
    case 'workers': {
      const { scanErrors } = await import(new URL('../../dist/examples/parallel-scan/scan.js', import.meta.url).href);
      const result = await scanErrors(file);
      count = result.count;
      last.push(...result.last);
      anon = rssAnon();
      break;
    }
    default:
      throw new Error(`unknown variant ${variant}`);
  }
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: error.code ?? error.message })}\n`);
  process.exit(0);
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stdout.write(`${JSON.stringify({ seconds, count, last, rssAnon: anon })}\n`);
