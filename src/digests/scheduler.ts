/**
 * The digest loop: calls `run(now)` at every minute boundary (every window
 * boundary of every IANA zone falls on a whole minute, so this wakes exactly
 * when a window closes, and at least once a minute for retries and expired
 * leases). Explicit states, a `stop()` that awaits the run in flight, and
 * `notify()` to run early.
 */
import type { Clock, Logger } from "../observability/index.js";

export type SchedulerState = "created" | "active" | "stopping" | "stopped";

export interface DigestSchedulerOptions {
  run: (now: Date) => Promise<unknown>;
  clock: Clock;
  logger: Logger;
  /** Longest sleep between runs (default 60 s). */
  maxIntervalMs?: number;
}

export class DigestScheduler {
  private stateValue: SchedulerState = "created";
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly options: DigestSchedulerOptions) {}

  get state(): SchedulerState {
    return this.stateValue;
  }

  start(): void {
    if (this.stateValue !== "created") return;
    this.stateValue = "active";
    this.notify();
  }

  /** Runs now (after the run in flight, if any), then resumes the regular cadence. */
  notify(): void {
    if (this.stateValue !== "active") return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight) return;
    this.inFlight = this.runOnce().finally(() => {
      this.inFlight = undefined;
      this.schedule();
    });
  }

  async stop(): Promise<void> {
    if (this.stateValue === "stopped") return;
    this.stateValue = "stopping";
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    this.stateValue = "stopped";
  }

  /** Milliseconds from `now` to just past the next minute boundary, capped. */
  static delayUntilNextBoundary(now: Date, maxMs = 60_000): number {
    const ms = now.getTime();
    const toBoundary = 60_000 - (ms % 60_000);
    // A little past the boundary so `now` reads the new minute when we wake.
    return Math.min(toBoundary + 20, maxMs);
  }

  private async runOnce(): Promise<void> {
    try {
      await this.options.run(this.options.clock.now());
    } catch (err) {
      this.options.logger.error({ err }, "digest run failed");
    }
  }

  private schedule(): void {
    if (this.stateValue !== "active") return;
    const delay = DigestScheduler.delayUntilNextBoundary(this.options.clock.now(), this.options.maxIntervalMs);
    this.timer = setTimeout(() => this.notify(), delay);
    // The HTTP server keeps the process alive; the digest timer alone should not.
    this.timer.unref();
  }
}
