/**
 * Batches analytics events off the request path: `record()` appends to a
 * buffer; a flush writes the whole buffer with one INSERT per 5,000 events
 * (unnest arrays, raw rows only: sql.ts INSERT_EVENTS) every `intervalMs` or
 * when `batchSize` events are waiting, and `stop()` flushes what is left, so
 * no accepted event is lost on SIGTERM. The rollups of migrations 0005 and
 * 0014 are maintained apart from the ingest by its RollupWorker (`rollups`,
 * roller.ts), started and stopped with it; `flush()` also catches them up,
 * so a read after it is exact.
 * Malformed events are refused at `record()` (logged); a statement that the
 * database still refuses is split in halves until the rows it cannot store
 * stand alone, and those are set aside with one log line per flush, so one
 * bad event never blocks the others and is never retried forever. Only an
 * unavailable database keeps events for the next flush.
 */
import { BatchWriter, type Database } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import { silentLogger, systemClock } from "../observability/index.js";
import { type AnalyticsEventInput, type AnalyticsSink, channelOf, isAnalyticsChannel, isEventType } from "./events.js";
import { INSERT_EVENTS } from "./sql.js";
import { RollupWorker } from "./roller.js";
import { metadataProblem, textProblem } from "./validate.js";
import { isDatabaseUnavailable, isLockConflict } from "../errors/index.js";

export interface AnalyticsIngestOptions {
  database: Pick<Database, "query" | "transaction">;
  clock?: Clock;
  logger?: Logger;
  intervalMs?: number;
  batchSize?: number;
  /** Between the roll-up worker's timer passes (default 1,000 ms). */
  rollupIntervalMs?: number;
  /** The roll-up worker's pass budget (RollupWorkerOptions.passBudgetMs). */
  rollupPassBudgetMs?: number;
  /** Called after each successful flush (observers; cache invalidation follows the rollups: RollupWorker.onRolledUp); awaited before flush() resolves. */
  onFlushed?: FlushListener;
}

export type FlushListener = (events: readonly AnalyticsEventInput[]) => void | Promise<void>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CHUNK = 5000;
/** Events kept for the next flush while the database is unavailable (the oldest beyond it are dropped). */
const MAX_KEPT = 1_000_000;
/** Flushes tried at stop while the database refuses them, this far apart, before what is left is reported lost. */
const STOP_ATTEMPTS = 3;
const STOP_RETRY_PAUSE_MS = 200;

export class AnalyticsIngest implements AnalyticsSink {
  private readonly writer: BatchWriter<AnalyticsEventInput>;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly listeners = new Set<FlushListener>();
  /** Keeps the rollups current from the raw events (timer and catchUp()). */
  readonly rollups: RollupWorker;
  state: "created" | "active" | "stopping" | "stopped" = "created";

  constructor(private readonly options: AnalyticsIngestOptions) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.writer = new BatchWriter((batch) => this.write(batch), { intervalMs: options.intervalMs ?? 200, flushAt: options.batchSize ?? 1000 });
    this.rollups = new RollupWorker({ database: options.database, clock: this.clock, logger: this.logger, intervalMs: options.rollupIntervalMs, passBudgetMs: options.rollupPassBudgetMs });
  }

  start(): void {
    if (this.state !== "created") return;
    this.state = "active";
    this.writer.start();
    this.rollups.start();
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

  /**
   * Writes everything recorded before the call and catches the rollups up
   * (not with `catchUp: false`); resolves when it is in the database and
   * counted, rejects when the database is unavailable.
   */
  async flush(options: { catchUp?: boolean } = {}): Promise<void> {
    await this.writer.flush();
    if (options.catchUp !== false) await this.rollups.catchUp();
  }

  /** Folds every raw event committed so far into the rollups (see RollupWorker.catchUp). */
  catchUp(): Promise<void> {
    return this.rollups.catchUp();
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
    return this.options.database.query(INSERT_EVENTS, [
      chunk.map((e) => e.notificationId),
      chunk.map((e) => e.userId),
      chunk.map((e) => e.eventType),
      chunk.map((e) => (e.timestamp ?? this.clock.now()).toISOString()),
      chunk.map((e) => (e.metadata ? JSON.stringify(e.metadata) : null)),
      chunk.map((e) => channelOf(e)),
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

  /**
   * Stops the timers, writes everything accepted so far (including events
   * recorded while stopping) and catches the rollups up. A roll-up that
   * fails here loses nothing: the raw rows wait for any instance's next pass.
   */
  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopping";
    const left = await this.writer.stopTrying(STOP_ATTEMPTS, STOP_RETRY_PAUSE_MS);
    if (left > 0) this.logger.error({ events: left }, "analytics events lost at stop: database unavailable");
    await this.rollups.stop();
    await this.rollups.catchUp().catch((err) => this.logger.warn({ err }, "analytics roll-up at stop failed; the next pass of any instance does it"));
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
  if (!isEventType(e.eventType) && e.eventType !== "failed") return `unknown event type ${String(e.eventType)}`;
  if (e.channel !== undefined && !isAnalyticsChannel(e.channel)) return `unknown channel ${String(e.channel)}`;
  if (e.eventType === "failed" && channelOf(e) === null) return "a failed event names no channel";
  if (e.timestamp !== undefined && !(e.timestamp instanceof Date && Number.isFinite(e.timestamp.getTime()))) return "timestamp is not a valid Date";
  const problem = metadataProblem(e.metadata);
  return problem ? `metadata ${problem}` : undefined;
}

/** Errors worth retrying the same rows for; any other failure is about the rows themselves. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code ?? "";
  // 53xxx out of resources, 55P03 lock not available.
  return isDatabaseUnavailable(err) || isLockConflict(err) || code.startsWith("53") || code === "55P03";
}
