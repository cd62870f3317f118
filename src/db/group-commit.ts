/**
 * Group commit: items submitted while `maxInFlight` batches are running wait
 * and go together in the next batch, so under load the database sees one
 * statement per batch instead of one per item, and under light load an item
 * goes at once. With `collectTurn`, a batch also waits for the end of the
 * current event-loop turn, so requests made together (a connect storm) share
 * the first statement too. The batching is BatchWriter's; this adds an answer
 * per caller.
 *
 * `run` answers each item of a batch in order, as Promise.allSettled would,
 * so one item's failure can stay its own; if `run` throws, every item of the
 * batch is rejected with that error. The callers are answered after the next
 * batch has been sent (BatchWriter): what they do next (#17: push, serialize
 * and write 10-30 responses, several ms on a loaded event loop) no longer
 * delays the statement of the creations that waited meanwhile.
 */
import { BatchWriter } from "./batch-writer.js";

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
  private readonly writer: BatchWriter<Waiting<T, R>>;

  constructor(
    private readonly run: (items: T[]) => Promise<PromiseSettledResult<R>[]>,
    options: GroupCommitOptions = {},
  ) {
    this.writer = new BatchWriter((batch) => this.settle(batch), {
      maxInFlight: options.maxInFlight ?? 1,
      maxBatch: options.maxBatch ?? 500,
      collectTurn: options.collectTurn,
    });
  }

  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => this.writer.add({ item, resolve, reject }));
  }

  /** Resolves once every item submitted before the call is answered. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Runs the batch; returns the answering of its callers, which the writer calls once the next batch is under way. */
  private async settle(batch: Waiting<T, R>[]): Promise<() => void> {
    let results: PromiseSettledResult<R>[];
    try {
      results = await this.run(batch.map((w) => w.item));
    } catch (err) {
      return () => {
        for (const w of batch) w.reject(err);
      };
    }
    return () =>
      batch.forEach((w, i) => {
        const r = results[i]!;
        if (r.status === "fulfilled") w.resolve(r.value);
        else w.reject(r.reason);
      });
  }
}
