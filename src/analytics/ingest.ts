/**
 * Batches analytics events off the request path: `record()` appends to a
 * buffer; a flush writes the whole buffer with one statement per 5,000 events
 * (unnest arrays: the raw rows plus the rollups of migration 0005, see
 * sql.ts) every `intervalMs` or when `batchSize` events are waiting, and
 * `stop()` flushes what is left, so no accepted event is lost on SIGTERM.
 * Malformed events are refused at `record()` (logged); a statement that the
 * database still refuses is split in halves until the rows it cannot store
 * stand alone, and those are set aside with one log line per flush, so one
 * bad event never blocks the others and is never retried forever. Only an
 * unavailable database keeps events for the next flush.
 */
import { BatchWriter, type Queryable } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import { silentLogger, systemClock } from "../observability/index.js";
import { type AnalyticsEventInput, type AnalyticsSink, isEventType } from "./events.js";
import { FLUSH_EVENTS } from "./sql.js";
import { metadataProblem, textProblem } from "./validate.js";
import { isDatabaseUnavailable } from "../errors/index.js";

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
/** Events kept for the next flush while the database is unavailable (the oldest beyond it are dropped). */
const MAX_KEPT = 1_000_000;

export class AnalyticsIngest implements AnalyticsSink {
  private readonly writer: BatchWriter<AnalyticsEventInput>;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly listeners = new Set<FlushListener>();
  state: "created" | "active" | "stopping" | "stopped" = "created";

  constructor(private readonly options: AnalyticsIngestOptions) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.writer = new BatchWriter((batch) => this.write(batch), { intervalMs: options.intervalMs ?? 200, flushAt: options.batchSize ?? 1000 });
  }

  start(): void {
    if (this.state !== "created") return;
    this.state = "active";
    this.writer.start();
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
    this.writer.add(event.timestamp ? event : { ...event, timestamp: this.clock.now() });
  }

  /** Adds a listener awaited after each successful flush; returns its removal. */
  onFlushed(listener: FlushListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Number of events accepted but not yet written. */
  get pending(): number {
    return this.writer.queued;
  }

  /** Writes everything recorded before the call; resolves when it is in the database, rejects when the database is unavailable. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  private async write(batch: AnalyticsEventInput[]): Promise<void> {
    const written: AnalyticsEventInput[] = [];
    const setAside: { event: AnalyticsEventInput; err: unknown }[] = [];
    // Segments still to write, next first: the 5,000-row chunks, then the halves of any that fail.
    const todo: AnalyticsEventInput[][] = [];
    for (let i = Math.ceil(batch.length / CHUNK) - 1; i >= 0; i--) todo.push(batch.slice(i * CHUNK, (i + 1) * CHUNK));
    try {
      while (todo.length > 0) {
        const segment = todo[todo.length - 1]!;
        try {
          await this.insert(segment);
          written.push(...segment);
          todo.pop();
        } catch (err) {
          if (isTransient(err)) throw err;
          // The statement wrote nothing: split it until the rows it cannot store stand alone.
          todo.pop();
          if (segment.length === 1) setAside.push({ event: segment[0]!, err });
          else todo.push(segment.slice(segment.length >> 1), segment.slice(0, segment.length >> 1));
        }
      }
    } catch (err) {
      // The database is unavailable: keep the unwritten events for the next flush
      // (bounded, oldest dropped first); what was committed is not re-queued.
      const rest = todo.reverse().flat();
      this.logger.warn({ err, events: rest.length }, "analytics flush failed; will retry");
      this.writer.requeue(rest);
      if (this.writer.queued > MAX_KEPT) this.writer.discard(this.writer.queued - MAX_KEPT);
      this.reportSetAside(setAside);
      if (written.length > 0) await this.notify(written);
      throw err;
    }
    this.reportSetAside(setAside);
    await this.notify(setAside.length > 0 ? written : batch);
  }

  private insert(chunk: AnalyticsEventInput[]): Promise<unknown> {
    return this.options.database.query(FLUSH_EVENTS, [
      chunk.map((e) => e.notificationId),
      chunk.map((e) => e.userId),
      chunk.map((e) => e.eventType),
      chunk.map((e) => (e.timestamp ?? this.clock.now()).toISOString()),
      chunk.map((e) => (e.metadata ? JSON.stringify(e.metadata) : null)),
    ]);
  }

  /** One line per flush, whatever the number of rows the database refused: never a stream. */
  private reportSetAside(setAside: { event: AnalyticsEventInput; err: unknown }[]): void {
    if (setAside.length === 0) return;
    const first = setAside[0]!;
    this.logger.error(
      {
        err: first.err,
        events: setAside.length,
        sample: setAside.slice(0, 5).map(({ event: e }) => ({ notificationId: e.notificationId, userId: e.userId, eventType: e.eventType })),
      },
      "analytics events set aside: the database refused them; the rest of the batch was written",
    );
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
    let failures = 0;
    for (let flushed = this.writer.stop(); ; flushed = this.writer.flush()) {
      try {
        await flushed;
      } catch {
        failures++;
      }
      if (this.writer.idle || failures === 3) break;
    }
    if (this.writer.queued > 0) this.logger.error({ events: this.writer.queued }, "analytics events lost at stop: database unavailable");
    this.state = "stopped";
  }
}

/** Why an event cannot be stored, or undefined when it can. */
function malformed(e: AnalyticsEventInput): string | undefined {
  if (!e || typeof e !== "object") return "not an object";
  if (typeof e.notificationId !== "string" || !UUID.test(e.notificationId)) return "notificationId is not a UUID";
  if (typeof e.userId !== "string" || e.userId.length === 0) return "userId is empty";
  const userProblem = textProblem(e.userId);
  if (userProblem) return `userId ${userProblem}`;
  if (!isEventType(e.eventType)) return `unknown event type ${String(e.eventType)}`;
  if (e.timestamp !== undefined && !(e.timestamp instanceof Date && Number.isFinite(e.timestamp.getTime()))) return "timestamp is not a valid Date";
  const problem = metadataProblem(e.metadata);
  return problem ? `metadata ${problem}` : undefined;
}

/** Errors worth retrying the same rows for; any other failure is about the rows themselves. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code ?? "";
  // 40001 serialization failure, 40P01 deadlock, 53xxx out of resources, 55P03 lock not available.
  return isDatabaseUnavailable(err) || code === "40001" || code === "40P01" || code.startsWith("53") || code === "55P03";
}
