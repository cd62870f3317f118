/**
 * The one buffered writer behind every batched write (GroupCommit, the
 * realtime delivery log, the analytics ingest, digest sent marks, the
 * delivery worker's sent marks through GroupCommit): add()
 * queues an item; a batch takes what is queued and `write` stores it with one
 * statement instead of one per item. At most `maxInFlight` batches run at once
 * (default 1); what arrives meanwhile waits for the next batch.
 *
 * When a batch starts:
 * - without `intervalMs` (group commit): as soon as a batch slot is free, so
 *   an item goes at once under light load; with `collectTurn`, at the end of
 *   the current event-loop turn, so items added together share the first batch;
 * - with `intervalMs` (a flusher): every `intervalMs` once started, when
 *   `flushAt` items are waiting, and when flush() is called.
 *
 * `write` may return a function: it is called once the batch's slot is free
 * and the next batch (items that waited meanwhile) has been started, so a
 * group commit answers its callers (whose continuations run at once: their
 * pushes and responses) without holding the next statement back behind them.
 *
 * flush() resolves once every item added before the call is written, and
 * rejects if a batch carrying one of them failed. A failed batch is not
 * retried here: `write` decides, with requeue() (put items back ahead of
 * newer ones) and discard() (drop waiting items). stop() ends the timer and
 * flushes.
 */
export interface BatchWriterOptions {
  /** Batches running at once (default 1). */
  maxInFlight?: number;
  /** Items per batch (default: everything queued). */
  maxBatch?: number;
  /** Group commit only: a batch waits for the end of the event-loop turn. */
  collectTurn?: boolean;
  /** Items wait for this timer (after start()), for `flushAt` or for flush(), instead of going at once. */
  intervalMs?: number;
  /** With `intervalMs`: a batch starts as soon as this many items are waiting. */
  flushAt?: number;
}

interface Flush {
  /** Resolves once items up to this number are done. */
  upTo: number;
  resolve: () => void;
  reject: (err: unknown) => void;
  failed?: { err: unknown };
}

export class BatchWriter<T> {
  private queue: T[] = [];
  /** Items taken into a batch (or discarded) so far: queue[i] is item number `taken + i + 1`. */
  private taken = 0;
  /** Items up to this number are due: each goes in a batch as soon as a slot is free. */
  private due = 0;
  /** The first item number of each running batch. */
  private readonly running: number[] = [];
  private flushes: Flush[] = [];
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (items: T[]) => Promise<unknown>,
    private readonly options: BatchWriterOptions = {},
  ) {}

  /** Items waiting for a batch (not those being written). */
  get queued(): number {
    return this.queue.length;
  }

  /** Nothing is waiting and no batch is running. */
  get idle(): boolean {
    return this.queue.length === 0 && this.running.length === 0;
  }

  add(item: T): void {
    this.queue.push(item);
    const { intervalMs, flushAt, collectTurn } = this.options;
    if (intervalMs !== undefined) {
      if (flushAt !== undefined && this.queue.length >= flushAt) this.request();
      return;
    }
    this.due = this.taken + this.queue.length;
    if (!collectTurn) {
      this.pump();
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Resolves once everything added before the call is written (or discarded); rejects if its batch failed. */
  flush(): Promise<void> {
    const upTo = this.taken + this.queue.length;
    if (upTo < this.lowestOpen()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.flushes.push({ upTo, resolve, reject });
      this.request();
    });
  }

  /** Starts the `intervalMs` timer (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.timer || this.options.intervalMs === undefined) return;
    this.timer = setInterval(() => this.request(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Ends the timer and flushes. */
  stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    return this.flush();
  }

  /**
   * stop(), then, while items are left (a failed batch puts its items back), flushes again `pauseMs`
   * apart (a restarting database gets a moment), `attempts` flushes in all. Returns the items left:
   * what the owner must report lost.
   */
  async stopTrying(attempts: number, pauseMs: number): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      await (attempt === 1 ? this.stop() : this.flush()).catch(() => undefined);
      if (this.idle || attempt >= attempts) return this.queued;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  /** Puts items back ahead of everything waiting (a failed batch's unwritten part); they go with the next batch. */
  requeue(items: T[]): void {
    if (items.length === 0) return;
    this.queue = items.concat(this.queue);
    // Waiting items moved up by items.length: so do the numbers that name them.
    for (const f of this.flushes) if (f.upTo > this.taken) f.upTo += items.length;
    if (this.due > this.taken) this.due += items.length;
  }

  /** Drops the `count` oldest waiting items (all by default); flush() counts them as done. */
  discard(count = this.queue.length): T[] {
    const dropped = this.queue.splice(0, count);
    this.taken += dropped.length;
    this.due = Math.max(this.due, this.taken);
    this.settle();
    return dropped;
  }

  /** Makes everything added so far due. */
  private request(): void {
    this.due = this.taken + this.queue.length;
    this.pump();
  }

  private pump(): void {
    const maxInFlight = this.options.maxInFlight ?? 1;
    const maxBatch = this.options.maxBatch ?? Infinity;
    while (this.due > this.taken && this.queue.length > 0 && this.running.length < maxInFlight) {
      let batch: T[];
      if (this.queue.length <= maxBatch) {
        batch = this.queue;
        this.queue = [];
      } else batch = this.queue.splice(0, maxBatch);
      const first = this.taken + 1;
      this.taken += batch.length;
      this.running.push(first);
      void this.run(first, batch);
    }
  }

  private async run(first: number, batch: T[]): Promise<void> {
    let after: (() => void) | undefined;
    try {
      const written = await this.write(batch);
      if (typeof written === "function") after = written as () => void;
    } catch (err) {
      for (const f of this.flushes) if (f.upTo >= first) f.failed ??= { err };
    }
    this.running.splice(this.running.indexOf(first), 1);
    this.pump();
    after?.();
    this.settle();
  }

  /** The lowest item number not yet done: in a running batch or still queued. */
  private lowestOpen(): number {
    let lowest = this.taken + 1;
    for (const first of this.running) if (first < lowest) lowest = first;
    return lowest;
  }

  private settle(): void {
    if (this.flushes.length === 0) return;
    const open = this.lowestOpen();
    this.flushes = this.flushes.filter((f) => {
      if (f.upTo >= open) return true;
      if (f.failed) f.reject(f.failed.err);
      else f.resolve();
      return false;
    });
  }
}
