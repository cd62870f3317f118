/**
 * Batches analytics events off the request path: `record()` appends to a
 * buffer; a flush writes the whole buffer with one statement per 5,000 events
 * (unnest arrays: the raw rows plus the rollups of migration 0005, see
 * sql.ts) every `intervalMs` or when `batchSize` events are waiting, and
 * `stop()` flushes what is left, so no accepted event is lost on SIGTERM.
 * Malformed events are refused at `record()` (logged), so one bad event can
 * never poison a batch that is then retried forever.
 */
import type { Queryable } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import { silentLogger, systemClock } from "../observability/index.js";
import { type AnalyticsEventInput, type AnalyticsSink, isEventType } from "./events.js";
import { FLUSH_EVENTS } from "./sql.js";

export interface AnalyticsIngestOptions {
  database: Queryable;
  clock?: Clock;
  logger?: Logger;
  intervalMs?: number;
  batchSize?: number;
  /** Called after each successful flush (cache invalidation, live dashboard); awaited before flush() resolves. */
  onFlushed?: FlushListener;
}

export type FlushListener = (events: readonly AnalyticsEventInput[]) => void | Promise<void>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CHUNK = 5000;

export class AnalyticsIngest implements AnalyticsSink {
  private buffer: AnalyticsEventInput[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly listeners = new Set<FlushListener>();
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
    const problem = malformed(event);
    if (problem) {
      this.logger.warn({ notificationId: event?.notificationId, eventType: event?.eventType }, `analytics event dropped: ${problem}`);
      return;
    }
    if (this.state === "stopped") {
      this.logger.warn({ notificationId: event.notificationId }, "analytics event recorded after stop; dropped");
      return;
    }
    this.buffer.push(event.timestamp ? event : { ...event, timestamp: this.clock.now() });
    if (this.buffer.length >= this.batchSize) this.flush().catch(() => undefined);
  }

  /** Adds a listener awaited after each successful flush; returns its removal. */
  onFlushed(listener: FlushListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
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
    let written = 0;
    try {
      for (; written < batch.length; written += CHUNK) {
        const chunk = batch.slice(written, written + CHUNK);
        await this.options.database.query(FLUSH_EVENTS, [
          chunk.map((e) => e.notificationId),
          chunk.map((e) => e.userId),
          chunk.map((e) => e.eventType),
          chunk.map((e) => (e.timestamp ?? this.clock.now()).toISOString()),
          chunk.map((e) => (e.metadata ? JSON.stringify(e.metadata) : null)),
        ]);
      }
    } catch (err) {
      // Keep the unwritten events for the next flush (bounded, oldest dropped first);
      // chunks already committed are not re-queued, so nothing is stored twice.
      const rest = batch.slice(written);
      this.logger.warn({ err, events: rest.length }, "analytics flush failed; will retry");
      this.buffer = rest.concat(this.buffer).slice(-1_000_000);
      if (written > 0) await this.notify(batch.slice(0, written));
      throw err;
    }
    await this.notify(batch);
  }

  /** The events are stored: a failing listener is logged, never retried as a write. */
  private async notify(events: AnalyticsEventInput[]): Promise<void> {
    const listeners = [...this.listeners, ...(this.options.onFlushed ? [this.options.onFlushed] : [])];
    const results = await Promise.allSettled(listeners.map(async (l) => l(events)));
    for (const r of results) if (r.status === "rejected") this.logger.warn({ err: r.reason }, "analytics flush listener failed");
  }

  /** Stops the timer and writes everything accepted so far, including events recorded while stopping. */
  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopping";
    if (this.timer) clearInterval(this.timer);
    for (let attempt = 0; (this.buffer.length > 0 || this.flushing) && attempt < 3; ) {
      try {
        await this.flush();
      } catch {
        attempt++;
      }
    }
    if (this.buffer.length > 0) this.logger.error({ events: this.buffer.length }, "analytics events lost at stop: database unavailable");
    this.state = "stopped";
  }
}

/** Why an event cannot be stored, or undefined when it can. */
function malformed(e: AnalyticsEventInput): string | undefined {
  if (!e || typeof e !== "object") return "not an object";
  if (typeof e.notificationId !== "string" || !UUID.test(e.notificationId)) return "notificationId is not a UUID";
  if (typeof e.userId !== "string" || e.userId.length === 0) return "userId is empty";
  if (!isEventType(e.eventType)) return `unknown event type ${String(e.eventType)}`;
  if (e.timestamp !== undefined && !(e.timestamp instanceof Date && Number.isFinite(e.timestamp.getTime()))) return "timestamp is not a valid Date";
  if (e.metadata != null) {
    try {
      JSON.stringify(e.metadata);
    } catch {
      return "metadata is not JSON-serialisable";
    }
  }
  return undefined;
}
