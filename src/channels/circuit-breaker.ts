/**
 * Per-destination circuit breaking (issue 15.3): a destination (a push
 * service's origin) that failed to answer `threshold` times in a row is
 * skipped for `cooldownMs`; its jobs are rescheduled to the end of the pause
 * instead of each waiting out a timeout. After the pause the next send is the
 * probe: a success closes the breaker, a failure opens it again. In memory,
 * per process: each instance learns on its own, which is enough to stop one
 * unanswering host from holding the workers.
 */
import type { Clock } from "../observability/index.js";

export interface BreakerOptions {
  threshold?: number;
  cooldownMs?: number;
}

export class CircuitBreaker {
  private readonly state = new Map<string, { failures: number; openUntil: number }>();
  private readonly threshold: number;
  private readonly cooldownMs: number;

  constructor(
    private readonly clock: Clock,
    options: BreakerOptions = {},
  ) {
    this.threshold = options.threshold ?? 3;
    this.cooldownMs = options.cooldownMs ?? 60_000;
  }

  /** When `key` may be tried again; undefined when it may be tried now. */
  openUntil(key: string): Date | undefined {
    const s = this.state.get(key);
    return s && s.openUntil > this.clock.now().getTime() ? new Date(s.openUntil) : undefined;
  }

  success(key: string): void {
    this.state.delete(key);
  }

  failure(key: string): void {
    const s = this.state.get(key) ?? { failures: 0, openUntil: 0 };
    s.failures++;
    if (s.failures >= this.threshold) s.openUntil = this.clock.now().getTime() + this.cooldownMs;
    this.state.set(key, s);
    // Bounded: forget closed, long-quiet destinations so the map cannot grow without end.
    if (this.state.size > 10_000) for (const [k, v] of this.state) if (v.openUntil < this.clock.now().getTime()) this.state.delete(k);
  }
}
