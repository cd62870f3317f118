/**
 * Group commit: items submitted while `maxInFlight` batches are running wait
 * and go together in the next batch, so under load the database sees one
 * statement per batch instead of one per item, and under light load an item
 * goes at once. With `collectTurn`, a batch also waits for the end of the
 * current event-loop turn, so requests made together (a connect storm) share
 * the first statement too.
 *
 * `run` answers each item of a batch in order, as Promise.allSettled would,
 * so one item's failure can stay its own; if `run` throws, every item of the
 * batch is rejected with that error.
 */
export interface GroupCommitOptions {
  /** Batches running at once (default 1). */
  maxInFlight?: number;
  /** Items per batch (default 500). */
  maxBatch?: number;
  collectTurn?: boolean;
}

interface Waiting<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<T, R> {
  private queue: Waiting<T, R>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: (items: T[]) => Promise<PromiseSettledResult<R>[]>,
    private readonly options: GroupCommitOptions = {},
  ) {}

  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.options.collectTurn) return this.pump();
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    });
  }

  private pump(): void {
    const maxInFlight = this.options.maxInFlight ?? 1;
    const maxBatch = this.options.maxBatch ?? 500;
    while (this.queue.length > 0 && this.inFlight < maxInFlight) {
      const batch = this.queue.splice(0, maxBatch);
      this.inFlight++;
      void this.settle(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async settle(batch: Waiting<T, R>[]): Promise<void> {
    let results: PromiseSettledResult<R>[];
    try {
      results = await this.run(batch.map((w) => w.item));
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i]!;
      if (r.status === "fulfilled") w.resolve(r.value);
      else w.reject(r.reason);
    });
  }
}
