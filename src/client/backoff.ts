/** The SDK's reconnect delays: the shared formula (src/backoff) with the client's option names. */
import { backoffDelay as delayOf } from "../backoff/index.js";

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
  const policy = { baseMs: options.initialDelayMs ?? 500, maxMs: options.maxDelayMs ?? 30_000, factor: options.factor ?? 2 };
  return delayOf(attempt + 1, policy, options.random);
}
