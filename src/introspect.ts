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
  /**
   * Protection faults the guard absorbed: accesses to pages of memmap's mappings that their
   * protection forbids (a write to a 'read' mapping's Buffer, or to a range protected 'read'
   * or 'none'), each given a private copy of the page instead of SIGSEGV.
   */
  protection: number;
}

/**
 * How many faults memmap's guard absorbed in this process. A non-zero `absorbed` means some
 * mapped file shrank under a mapping; a non-zero `protection` means some access reached a page
 * its protection forbids. The mapping concerned reports `faulted`.
 * @example
 * if (faultStats().absorbed > 0) console.warn('a mapped file was truncated under us');
 */
export function faultStats(): FaultStats {
  return { absorbed: addon.faultsAbsorbed(), protection: addon.violationsAbsorbed() };
}
