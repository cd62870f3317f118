/**
 * BatchWriter (src/db), the buffer under GroupCommit, the delivery log, the analytics ingest and the
 * digest sent marks: when a batch starts, what flush() waits for, failures, requeue and discard.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { BatchWriter, type BatchWriterOptions } from "../../src/db/index.js";

/** A writer whose batches finish only when the test says so. */
function controlled(options: BatchWriterOptions = {}) {
  const batches: { items: number[]; done: () => void; fail: (err: unknown) => void }[] = [];
  const writer = new BatchWriter<number>(
    (items) => new Promise<void>((resolve, reject) => batches.push({ items, done: resolve, fail: reject })),
    options,
  );
  return { writer, batches, items: () => batches.map((b) => b.items) };
}

/** Whether `p` has settled once pending callbacks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("BatchWriter", () => {
  it("without an interval, writes the first item at once and batches what arrives while it runs, up to maxBatch", async () => {
    const { writer, batches, items } = controlled({ maxBatch: 2 });
    writer.add(1);
    expect(items()).toEqual([[1]]);
    for (const n of [2, 3, 4]) writer.add(n);
    expect(writer.queued).toBe(3);
    batches[0]!.done();
    await vi.waitUntil(() => batches.length === 2);
    batches[1]!.done();
    await vi.waitUntil(() => batches.length === 3);
    batches[2]!.done();
    await writer.flush();
    expect(items()).toEqual([[1], [2, 3], [4]]);
    expect(writer.idle).toBe(true);
  });

  it("runs up to maxInFlight batches at once", () => {
    const { writer, items } = controlled({ maxInFlight: 2 });
    for (const n of [1, 2, 3, 4]) writer.add(n);
    expect(items()).toEqual([[1], [2]]);
    expect(writer.queued).toBe(2);
  });

  it("flush() waits for the batch in flight and for what was queued before the call, not for later items", async () => {
    const { writer, batches } = controlled();
    writer.add(1);
    writer.add(2);
    const first = writer.flush();
    writer.add(3);
    expect(await settled(first)).toBe(false);
    batches[0]!.done(); // [1]
    await vi.waitUntil(() => batches.length === 2);
    expect(batches[1]!.items).toEqual([2, 3]);
    expect(await settled(first)).toBe(false);
    const second = writer.flush();
    batches[1]!.done();
    await first;
    await second;
    await expect(writer.flush()).resolves.toBeUndefined();
  });

  it("with an interval, writes on the timer, at flushAt, or when asked, and stop() writes the rest and ends the timer", async () => {
    vi.useFakeTimers();
    const written: number[][] = [];
    const writer = new BatchWriter<number>(async (items) => void written.push(items), { intervalMs: 50, flushAt: 3 });
    writer.start();
    writer.add(1);
    writer.add(2);
    await vi.advanceTimersByTimeAsync(49);
    expect(written).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(written).toEqual([[1, 2]]);
    for (const n of [3, 4, 5]) writer.add(n);
    expect(written).toEqual([[1, 2], [3, 4, 5]]);
    writer.add(6);
    await writer.flush();
    expect(written.at(-1)).toEqual([6]);
    writer.add(7);
    await writer.stop();
    expect(written.at(-1)).toEqual([7]);
    writer.add(8);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(writer.queued).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a flush asked while a batch runs starts the next batch when it ends, not at the next tick", async () => {
    vi.useFakeTimers();
    const { writer, batches, items } = controlled({ intervalMs: 1_000 });
    writer.add(1);
    const first = writer.flush();
    writer.add(2);
    const second = writer.flush();
    expect(items()).toEqual([[1]]);
    batches[0]!.done();
    await first;
    expect(items()).toEqual([[1], [2]]);
    batches[1]!.done();
    await second;
  });

  it("a failed batch rejects the flushes that waited for it; requeued items go first in the next batch", async () => {
    const attempts: number[][] = [];
    let failing = true;
    const writer: BatchWriter<number> = new BatchWriter(
      async (items) => {
        attempts.push(items);
        if (!failing) return;
        writer.requeue(items.slice(1)); // the first was written
        throw new Error("database unavailable");
      },
      { intervalMs: 60_000 },
    );
    writer.add(1);
    writer.add(2);
    writer.add(3);
    await expect(writer.flush()).rejects.toThrow("database unavailable");
    expect(writer.queued).toBe(2);
    writer.add(4);
    failing = false;
    await writer.flush();
    expect(attempts).toEqual([
      [1, 2, 3],
      [2, 3, 4],
    ]);
  });

  it("a flush waiting for items queued behind a failing batch still waits for them after a requeue", async () => {
    const { writer, batches, items } = controlled();
    writer.add(1);
    writer.add(2); // queued behind [1]
    const flushed = writer.flush();
    writer.requeue([0]); // put back ahead of 2
    batches[0]!.done();
    await vi.waitUntil(() => batches.length === 2);
    expect(items()[1]).toEqual([0, 2]);
    expect(await settled(flushed)).toBe(false);
    batches[1]!.done();
    await flushed;
  });

  it("discard() drops waiting items, oldest first, and flush() counts them as done", async () => {
    const { writer, batches } = controlled();
    writer.add(1);
    writer.add(2);
    writer.add(3);
    const flushed = writer.flush();
    expect(writer.discard(1)).toEqual([2]);
    expect(writer.discard()).toEqual([3]);
    expect(writer.queued).toBe(0);
    batches[0]!.done();
    await flushed;
    expect(batches).toHaveLength(1);
  });
  it("stopTrying flushes again while a failing write puts its items back, up to the attempts, and returns what is left", async () => {
    const tries = (failures: number) => {
      let calls = 0;
      const writer: BatchWriter<number> = new BatchWriter<number>(async (items) => {
        calls++;
        if (calls <= failures) writer.requeue(items); // as the delivery log does on an unavailable database
      }, { intervalMs: 60_000 }); // never started: the items wait for stopTrying
      writer.add(1);
      writer.add(2);
      return { writer, calls: () => calls };
    };
    const recovering = tries(2);
    expect(await recovering.writer.stopTrying(3, 0)).toBe(0);
    expect(recovering.calls()).toBe(3);
    const down = tries(Number.POSITIVE_INFINITY);
    expect(await down.writer.stopTrying(3, 0)).toBe(2);
    expect(down.calls()).toBe(3);
  });
});
