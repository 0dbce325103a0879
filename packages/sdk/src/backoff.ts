export interface BackoffOptions {
  /** First retry ceiling in ms. */
  baseMs: number;
  /** Largest ceiling in ms. */
  maxMs: number;
  /** After a hub restart (close 1012) the first retry is spread uniformly over this window. */
  restartSpreadMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000, restartSpreadMs: 5_000 };

/**
 * "Full jitter" exponential backoff: a uniform delay in [0, min(max, base * 2^attempt)].
 * Spreads a fleet's reconnects so a hub restart does not become a thundering herd.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
