// Reads FILE in full and holds what it read until stdin closes, so the parent can measure this
// process's proportional set size (PSS) while several such processes are alive.
import { readFileSync } from 'node:fs';

const [variant, file] = process.argv.slice(2);
const { mapFile } = await import(process.env.MEMMAP);
const { byteSum } = await import(new URL('internal/checksum.js', process.env.MEMMAP).href);

let held;
if (variant === 'memmap') {
  held = mapFile(file);
  byteSum(held.buffer); // touches every page
} else {
  held = readFileSync(file);
  byteSum(held);
}
process.stdout.write('ready\n');
process.stdin.resume();
process.stdin.on('end', () => {
  if (variant === 'memmap') held.close();
  process.exit(0);
});
