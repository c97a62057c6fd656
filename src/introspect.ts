/**
 * What memmap can tell about the process's mappings.
 *
 * @module
 */
import { addon } from './native.js';

/** The fault guard's counters, from {@link faultStats}. */
export interface FaultStats {
  /**
   * Faults the guard absorbed since the process started: accesses to pages of a mapped file
   * that had shrunk (or could not be read), each answered with a zero page instead of SIGBUS.
   */
  absorbed: number;
}

/**
 * How many faults memmap's guard absorbed in this process. A non-zero figure means some
 * mapped file shrank under a mapping; the mapping concerned reports `faulted`.
 * @example
 * if (faultStats().absorbed > 0) console.warn('a mapped file was truncated under us');
 */
export function faultStats(): FaultStats {
  return { absorbed: addon.faultsAbsorbed() };
}
