/** Reconnect delays: exponential, capped, with full jitter so a restarted server is not hit by every client at once. */
export interface BackoffOptions {
  /** First delay ceiling (default 500 ms). */
  initialDelayMs?: number;
  /** Largest delay (default 30 s). */
  maxDelayMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Source of randomness in [0, 1) (default Math.random); tests pass a fixed one. */
  random?: () => number;
}

/** Delay before reconnect attempt `attempt` (0-based): uniform in [ceiling/2, ceiling]. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialDelayMs ?? 500;
  const max = options.maxDelayMs ?? 30_000;
  const factor = options.factor ?? 2;
  const ceiling = Math.min(max, initial * factor ** Math.min(attempt, 30));
  const r = (options.random ?? Math.random)();
  return Math.round(ceiling / 2 + r * (ceiling / 2));
}
