/** GroupCommit (src/db): batching while in flight, per-item answers, a failed batch failing only its own items. */
import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../src/db/index.js";

describe("GroupCommit", () => {
  it("sends the first item at once and batches what arrives while it runs", async () => {
    const batches: number[][] = [];
    const commits = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      return items.map((n) => ({ status: "fulfilled", value: n * 10 }));
    });
    const results = await Promise.all([1, 2, 3, 4].map((n) => commits.submit(n)));
    expect(results).toEqual([10, 20, 30, 40]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it("with collectTurn, items submitted in one turn share the first batch", async () => {
    const batches: number[][] = [];
    const commits = new GroupCommit<number, number>(
      async (items) => {
        batches.push(items);
        return items.map((n) => ({ status: "fulfilled", value: n }));
      },
      { collectTurn: true },
    );
    await Promise.all([1, 2, 3].map((n) => commits.submit(n)));
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("answers each item on its own, rejects a whole batch when run throws, and keeps serving after", async () => {
    let calls = 0;
    const commits = new GroupCommit<number, number>(async (items) => {
      calls++;
      if (items.includes(0)) throw new Error("batch failed");
      return items.map((n) => (n < 0 ? { status: "rejected", reason: new Error(`bad ${n}`) } : { status: "fulfilled", value: n }));
    });
    const first = await Promise.allSettled([commits.submit(0), commits.submit(-1), commits.submit(5)]);
    expect(first.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual(["batch failed", "bad -1", 5]);
    await expect(commits.submit(7)).resolves.toBe(7);
    expect(calls).toBe(3);
  });
});

describe("GroupCommit pipelining", () => {
  it("sends the batch that waited before answering the callers of the one that ended (their follow-up work does not hold it back)", async () => {
    const log: string[] = [];
    const gates: (() => void)[] = [];
    const commits = new GroupCommit<number, number>(async (items) => {
      log.push(`sent ${items.join(",")}`);
      await new Promise<void>((r) => gates.push(r));
      return items.map((n) => ({ status: "fulfilled", value: n }));
    });
    const answers = [1, 2, 3].map((n) => commits.submit(n).then((v) => void log.push(`answered ${v}`)));
    // 1 runs alone; 2 and 3 wait for its slot.
    expect(log).toEqual(["sent 1"]);
    gates.shift()!();
    await answers[0];
    expect(log).toEqual(["sent 1", "sent 2,3", "answered 1"]);
    gates.shift()!();
    await Promise.all(answers);
    expect(log).toEqual(["sent 1", "sent 2,3", "answered 1", "answered 2", "answered 3"]);
  });
});

describe("GroupCommit.flush", () => {
  it("resolves once every item submitted before the call is answered", async () => {
    const answered: number[] = [];
    const commits = new GroupCommit<number, number>(async (items) => {
      await new Promise((r) => setTimeout(r, 5));
      return items.map((n) => ({ status: "fulfilled", value: n }));
    });
    for (const n of [1, 2, 3]) void commits.submit(n).then((v) => answered.push(v));
    await commits.flush();
    expect(answered).toEqual([1, 2, 3]);
  });
});
