/**
 * NUMA: the memory nodes of this machine, as Linux describes them in /sys/devices/system/node.
 * Mapping.bind and Mapping.prefault place a mapping's pages on them.
 *
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** One NUMA node, from {@link numaNodes}. */
export interface NumaNode {
  id: number;
  /** The CPUs of the node. */
  cpus: number[];
  /** Its memory, in bytes. */
  memoryTotal: number;
  /** Of which free now. */
  memoryFree: number;
}

const NODES = '/sys/devices/system/node';

/** "0-3,8,10-11" → [0, 1, 2, 3, 8, 10, 11]. */
function parseList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(',')) {
    if (part === '') continue;
    const [from, to] = part.split('-').map(Number) as [number, number | undefined];
    for (let i = from; i <= (to ?? from); i++) out.push(i);
  }
  return out;
}

function meminfo(text: string, field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0) * 1024;
}

/**
 * The NUMA nodes of this machine, with their CPUs and memory. A machine (or kernel) without
 * NUMA has one node, 0, with every CPU and all the memory.
 * @example
 * for (const node of numaNodes()) console.log(node.id, node.cpus, node.memoryFree);
 */
export function numaNodes(): NumaNode[] {
  let names: string[] = [];
  try {
    names = readdirSync(NODES).filter((name) => /^node\d+$/.test(name));
  } catch {}
  if (names.length === 0) {
    const text = readFileSync('/proc/meminfo', 'utf8');
    return [
      {
        id: 0,
        cpus: cpus().map((_, i) => i),
        memoryTotal: meminfo(text, 'MemTotal'),
        memoryFree: meminfo(text, 'MemFree'),
      },
    ];
  }
  return names
    .map((name) => {
      const text = readFileSync(`${NODES}/${name}/meminfo`, 'utf8');
      return {
        id: Number(name.slice(4)),
        cpus: parseList(readFileSync(`${NODES}/${name}/cpulist`, 'utf8')),
        memoryTotal: meminfo(text, 'MemTotal'),
        memoryFree: meminfo(text, 'MemFree'),
      };
    })
    .sort((a, b) => a.id - b.id);
}
