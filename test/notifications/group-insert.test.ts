/**
 * Group commit of single creations (src/notifications/group-insert.ts) on the
 * real database: concurrent creations share statements, keep arrival order in
 * seq, keep idempotency inside a batch, write their queue rows, and one row
 * PostgreSQL rejects fails only its own caller.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotificationInsertBatcher, type PendingInsert } from "../../src/notifications/group-insert.js";
import type { Queryable, WriterOptions } from "../../src/db/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";

let db: TestDatabase;
let statements = 0;
let batcher: NotificationInsertBatcher;

beforeAll(async () => {
  db = await openTestDatabase();
  // The real database, with the statements counted.
  const count = (q: Queryable): Queryable => ({
    query: <T>(text: string, params?: unknown[]) => {
      statements++;
      return q.query<T>(text, params);
    },
  });
  // On PostgreSQL the batches go through the writer's own connections (Database.openWriter): counted too.
  const counted = {
    ...db,
    ...count(db),
    openWriter: (options: WriterOptions) => {
      const writer = db.openWriter?.(options);
      return writer && count(writer);
    },
  };
  batcher = new NotificationInsertBatcher(counted, { maxAttempts: 5, maxInFlight: 1 });
});
afterAll(() => db?.cleanup());

const now = new Date("2026-01-05T12:00:00Z");
function item(userId: string, title: string, extra: { key?: string; email?: boolean } = {}): PendingInsert {
  return {
    params: [userId, "new_message", "medium", title, "m", null, null, null, null, null, JSON.stringify({ n: title }), extra.key ?? null, true, null],
    sends: extra.email
      ? { channels: ["email"], dueAt: [now], payloads: [JSON.stringify({ mode: "single", inApp: true })] }
      : { channels: [], dueAt: [], payloads: [] },
    now,
    keyCutoff: new Date(now.getTime() - 86_400_000),
  };
}

describe("NotificationInsertBatcher", () => {
  it("writes 50 creations of one event-loop turn in one statement, each answered with its own row, seq in arrival order", async () => {
    const before = statements;
    const rows = await Promise.all(Array.from({ length: 50 }, (_, i) => batcher.insert(item("gi-order", `t${i}`))));
    expect(rows.map((r) => r?.title)).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`));
    expect(rows.map((r) => r?.data)).toEqual(Array.from({ length: 50 }, (_, i) => ({ n: `t${i}` })));
    const seqs = rows.map((r) => Number(r!.seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    // Submitted in one event-loop turn: one statement, though a slot was free for the first.
    expect(statements - before).toBe(1);
    const stored = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM notifications WHERE user_id = 'gi-order'");
    expect(stored[0]!.n).toBe(50);
  });

  it("keeps one row per idempotency key inside one batch; the repeat gets nothing", async () => {
    // The three share one statement; the second of the two with the same new key gets nothing.
    const [, first, repeat] = await Promise.all([
      batcher.insert(item("gi-idem", "filler")),
      batcher.insert(item("gi-idem", "a", { key: "k1" })),
      batcher.insert(item("gi-idem", "b", { key: "k1" })),
    ]);
    expect(first?.title).toBe("a");
    expect(repeat).toBeUndefined();
    const stored = await db.query<{ title: string }>("SELECT title FROM notifications WHERE user_id = 'gi-idem' AND idempotency_key = 'k1'");
    expect(stored.map((r) => r.title)).toEqual(["a"]);
  });

  it("writes the out-of-app queue rows of each batched notification", async () => {
    const rows = await Promise.all([batcher.insert(item("gi-send", "x", { email: true })), batcher.insert(item("gi-send", "y")), batcher.insert(item("gi-send", "z", { email: true }))]);
    const queued = await db.query<{ notification_id: string; channel: string; status: string }>(
      "SELECT notification_id, channel, status FROM notification_queue WHERE user_id = 'gi-send'",
    );
    expect(queued.map((q) => q.notification_id).sort()).toEqual([rows[0]!.id, rows[2]!.id].sort());
    expect(queued.every((q) => q.channel === "email" && q.status === "pending")).toBe(true);
  });

  it("fails only the caller whose row PostgreSQL rejects; the rest of the batch is stored", async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => batcher.insert(item("gi-bad", i === 7 ? "bad\u0000title" : `ok${i}`))),
    );
    expect(results.filter((r) => r.status === "rejected")).toHaveLength(1);
    expect(results[7]!.status).toBe("rejected");
    const stored = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM notifications WHERE user_id = 'gi-bad'");
    expect(stored[0]!.n).toBe(19);
  });
});
