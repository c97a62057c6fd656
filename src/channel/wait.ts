/**
 * What the channel's waits share: the options, an adaptive spin, and one sleep on a futex
 * word through memmap's waiter thread.
 *
 * @module
 */
import { invalidArgType, MemmapError } from '../errors.js';
import { validateInteger, validateOptions } from '../internal/validate.js';
import { futex } from '../sync/futex.js';
import { abortError, spinUntil } from '../sync/placement.js';
import type { Ring } from './ring.js';

/** Options of Producer.send and Consumer.receive. */
export interface ChannelWaitOptions {
  /** Milliseconds before the wait rejects with ERR_MEMMAP_TIMEOUT. Default: no limit. */
  timeout?: number;
  /** Rejects the wait with an AbortError when aborted. */
  signal?: AbortSignal;
}

export interface Wait {
  deadline: number;
  signal: AbortSignal | undefined;
}

export function waitOf(options: unknown, extra: readonly string[] = []): Wait & Record<string, unknown> {
  const opts = validateOptions(options, 'options', ['timeout', 'signal', ...extra]) as Record<string, unknown>;
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', opts.signal);
  }
  let deadline = Number.POSITIVE_INFINITY;
  if (opts.timeout !== undefined && opts.timeout !== Number.POSITIVE_INFINITY) {
    if (typeof opts.timeout !== 'number' || !(opts.timeout >= 0)) validateInteger(opts.timeout, 'options.timeout');
    deadline = performance.now() + (opts.timeout as number);
  }
  return { ...opts, deadline, signal: opts.signal as AbortSignal | undefined };
}

/** The longest spin, in microseconds, a channel endpoint may be given. */
export const SPIN_MAX = 100_000;

/**
 * Spins before sleeping, adaptively: the budget halves each time a spin ends in a sleep
 * anyway (the other side is slow, or shares our core: spinning only steals its time) and comes
 * back whole when a spin pays. A spent-out budget is probed again every 64 waits.
 */
export class Spinner {
  readonly #max: number;
  #budget: number;
  #idle = 0;

  constructor(max: number) {
    this.#max = max;
    this.#budget = max;
  }

  spin(ready: () => boolean): boolean {
    if (this.#max === 0) return false;
    if (this.#budget < 1) {
      if (++this.#idle % 64 !== 0) return false;
      this.#budget = 1;
    }
    if (spinUntil(this.#budget, ready)) {
      this.#budget = this.#max;
      return true;
    }
    this.#budget /= 2;
    return false;
  }
}

/**
 * Sleeps on `words[index]` of `ring` while it holds `seen`, until woken, the deadline, or `most`
 * milliseconds (a slice, for callers that must look again); returns false at a slice's end.
 * @throws ERR_MEMMAP_TIMEOUT at the deadline; an AbortError when `signal` aborts.
 */
export async function sleep(
  words: Int32Array,
  index: number,
  seen: number,
  wait: Wait,
  what: string,
  ring: Ring,
  most = Number.POSITIVE_INFINITY,
): Promise<boolean> {
  if (wait.signal?.aborted) throw abortError(wait.signal);
  const left = wait.deadline - performance.now();
  if (left <= 0) throw new MemmapError('ERR_MEMMAP_TIMEOUT', `${what}: not done within the timeout`);
  const timeout = Math.min(left, most);
  try {
    await futex.waitAsync(words, index, seen, {
      ...(timeout === Number.POSITIVE_INFINITY ? {} : { timeout }),
      ...(wait.signal ? { signal: wait.signal } : {}),
    });
    return true;
  } catch (error) {
    // A wait on memory this process unmapped meanwhile (close()) ends in EFAULT: report the close.
    ring.check(what);
    if ((error as { code?: string }).code !== 'ERR_MEMMAP_TIMEOUT') throw error;
    if (timeout < left) return false;
    throw new MemmapError('ERR_MEMMAP_TIMEOUT', `${what}: not done within the timeout`);
  }
}
