/**
 * Exponential backoff with jitter: attempt n (1-based) waits
 * base * 2^(n-1), capped, then scaled by a random factor in [1/2, 1] ("equal
 * jitter") so a receiver that comes back is not hit by every row at once,
 * while a retry never comes sooner than half the nominal delay.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 30_000, maxMs: 3600_000 };

export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(exp / 2 + (exp / 2) * random());
}
