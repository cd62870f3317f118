/**
 * Batches analytics events off the request path: `record()` appends to a
 * buffer; a flush writes the whole buffer in one INSERT ... SELECT unnest(...)
 * every `intervalMs` or when `batchSize` events are waiting, and `stop()`
 * flushes what is left, so no accepted event is lost on SIGTERM.
 */
import type { Queryable } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import { silentLogger, systemClock } from "../observability/index.js";
import type { AnalyticsEventInput, AnalyticsSink } from "./events.js";

export interface AnalyticsIngestOptions {
  database: Queryable;
  clock?: Clock;
  logger?: Logger;
  intervalMs?: number;
  batchSize?: number;
  /** Called after each successful flush (cache invalidation, live dashboard). */
  onFlushed?: (events: readonly AnalyticsEventInput[]) => void;
}

const INSERT_EVENTS = `
INSERT INTO analytics_events (notification_id, user_id, event_type, timestamp, metadata)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[])`;

export class AnalyticsIngest implements AnalyticsSink {
  private buffer: AnalyticsEventInput[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  state: "created" | "active" | "stopping" | "stopped" = "created";

  constructor(private readonly options: AnalyticsIngestOptions) {
    this.intervalMs = options.intervalMs ?? 200;
    this.batchSize = options.batchSize ?? 1000;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  start(): void {
    if (this.state !== "created") return;
    this.state = "active";
    this.timer = setInterval(() => this.flush().catch(() => undefined), this.intervalMs);
    this.timer.unref();
  }

  record(event: AnalyticsEventInput): void {
    this.buffer.push(event.timestamp ? event : { ...event, timestamp: this.clock.now() });
    if (this.buffer.length >= this.batchSize) this.flush().catch(() => undefined);
  }

  /** Number of events accepted but not yet written. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Writes everything buffered so far; resolves when it is in the database. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private async write(batch: AnalyticsEventInput[]): Promise<void> {
    try {
      for (let i = 0; i < batch.length; i += 5000) {
        const chunk = batch.slice(i, i + 5000);
        await this.options.database.query(INSERT_EVENTS, [
          chunk.map((e) => e.notificationId),
          chunk.map((e) => e.userId),
          chunk.map((e) => e.eventType),
          chunk.map((e) => (e.timestamp ?? this.clock.now()).toISOString()),
          chunk.map((e) => (e.metadata ? JSON.stringify(e.metadata) : null)),
        ]);
      }
      this.options.onFlushed?.(batch);
    } catch (err) {
      // Keep the events for the next flush (bounded, oldest dropped first).
      this.logger.warn({ err, events: batch.length }, "analytics flush failed; will retry");
      this.buffer = batch.concat(this.buffer).slice(-1_000_000);
      throw err;
    }
  }

  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopping";
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch(() => undefined);
    this.state = "stopped";
  }
}
