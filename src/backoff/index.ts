/**
 * Exponential backoff, the one formula of every retry in Herald (queued
 * sends, digests, the SDK's reconnects): retry n waits base * factor^(n-1),
 * capped, scaled by a factor drawn from `jitter`, so that a receiver (or a
 * restarted server) that comes back is not hit by every retry at once. A
 * leaf with no imports: the browser SDK uses it too.
 */
export interface BackoffPolicy {
  /** Nominal delay of the first retry. */
  baseMs: number;
  /** Largest nominal delay. */
  maxMs: number;
  /** Growth per retry (default 2). */
  factor?: number;
  /**
   * The delay is the nominal one times a factor drawn uniformly from this
   * range. Default [0.5, 1] ("equal jitter": spread, yet never sooner than
   * half the nominal delay).
   */
  jitter?: readonly [number, number];
}

export const EQUAL_JITTER = [0.5, 1] as const;

/** Delay before retry `attempt` (1 = the first retry); `random` in [0, 1) picks within the jitter range. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const nominal = Math.min(policy.maxMs, policy.baseMs * (policy.factor ?? 2) ** exponent);
  const [low, high] = policy.jitter ?? EQUAL_JITTER;
  return Math.round(nominal * (low + (high - low) * random()));
}
