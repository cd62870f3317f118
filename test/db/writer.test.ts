/**
 * Database.openWriter (PostgreSQL: connections of their own with session
 * settings) and what the creation batch writer does with it (issue 17): its
 * statements do not NOTIFY from the queue trigger (migration 0018), and the
 * wake it sends itself arrives after the commit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotificationInsertBatcher, type PendingInsert } from "../../src/notifications/group-insert.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(() => db?.cleanup());

const CHANNEL = "herald_queue";

/** Collects NOTIFY payloads on herald_queue until stopped. */
async function collectWakes(onWake?: () => void): Promise<{ payloads: string[]; stop: () => Promise<void> }> {
  const payloads: string[] = [];
  // Other test files (other schemas of this database) wake the same channel: the payload names the schema.
  const [{ schema }] = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
  const stop = await db.listen(CHANNEL, (p) => {
    if (p !== schema && p !== "marker") return;
    payloads.push(p === schema ? "wake" : p);
    onWake?.();
  });
  return { payloads, stop };
}

function item(userId: string, dueAt: Date, now: Date): PendingInsert {
  return {
    params: [userId, "new_message", "high", "t", "m", null, null, null, null, null, null, null, true, null],
    sends: { channels: ["email"], dueAt: [dueAt], payloads: [JSON.stringify({ mode: "single", inApp: true })] },
    now,
    keyCutoff: new Date(now.getTime() - 86_400_000),
  };
}

describe("openWriter", () => {
  it.runIf(!usingPostgres)("is not offered on PGlite (one connection: its settings would apply to every caller)", () => {
    expect(db.openWriter?.({ connections: 1, settings: { "herald.queue_wake": "client" } })).toBeUndefined();
  });

  it.runIf(usingPostgres)("runs statements with its session settings in the test's schema; the pool's sessions do not have them", async () => {
    const writer = db.openWriter!({ connections: 2, settings: { "herald.queue_wake": "client" } })!;
    const [mine] = await writer.query<{ wake: string | null; schema: string }>("SELECT current_setting('herald.queue_wake', true) AS wake, current_schema() AS schema");
    const [pooled] = await db.query<{ wake: string | null; schema: string }>("SELECT current_setting('herald.queue_wake', true) AS wake, current_schema() AS schema");
    expect(mine).toEqual({ wake: "client", schema: pooled!.schema });
    expect(pooled!.wake ?? "").toBe("");
    // Prepared by name on first use: the same text again (and with other values) still answers.
    const again = await Promise.all([1, 2, 3].map((n) => writer.query<{ n: number }>("SELECT $1::int AS n", [n])));
    expect(again.map((r) => r[0]!.n)).toEqual([1, 2, 3]);
  });

  it.runIf(usingPostgres)("the pool's and the writer's sessions run with JIT off (it compiled short statements longer than they ran)", async () => {
    const writer = db.openWriter!({ connections: 1, settings: { "herald.queue_wake": "client" } })!;
    const [pooled] = await db.query<{ jit: string }>("SHOW jit");
    const [mine] = await writer.query<{ jit: string; wake: string }>("SELECT current_setting('jit') AS jit, current_setting('herald.queue_wake') AS wake");
    expect(pooled).toEqual({ jit: "off" });
    expect(mine).toEqual({ jit: "off", wake: "client" });
  });

  it.runIf(usingPostgres)("a queue row due now written by the writer's session notifies nobody; the same written by the pool wakes", async () => {
    const writer = db.openWriter!({ connections: 1, settings: { "herald.queue_wake": "client" } })!;
    const [n] = await db.query<{ id: string }>("INSERT INTO notifications (user_id, type, priority, title, message) VALUES ('w-1', 'new_message', 'high', 't', 'm') RETURNING id");
    const queue = `INSERT INTO notification_queue (notification_id, user_id, channel, status, next_retry_at, max_attempts, payload)
                   VALUES ($1, 'w-1', $2, 'pending', now(), 5, '{"mode":"single","inApp":true}')`;
    let markerSeen!: () => void;
    const marker = new Promise<void>((resolve) => {
      markerSeen = resolve;
    });
    const wakes = await collectWakes(() => {
      if (wakes.payloads.includes("marker")) markerSeen();
    });
    try {
      await writer.query(queue, [n!.id, "email"]);
      // NOTIFYs arrive in commit order: a wake from the writer's commit would come before the marker.
      await db.query("SELECT pg_notify($1, 'marker')", [CHANNEL]);
      await marker;
      expect(wakes.payloads).toEqual(["marker"]);
      await db.query(queue, [n!.id, "sms"]);
      await expect.poll(() => wakes.payloads.length).toBe(2);
      expect(wakes.payloads).toEqual(["marker", "wake"]);
    } finally {
      await wakes.stop();
    }
  });
});

describe("NotificationInsertBatcher's wake", () => {
  it("wakes the workers once the creations with a send due now are committed: the queued rows are visible when the wake arrives", async () => {
    const batcher = new NotificationInsertBatcher(db, { maxAttempts: 5 });
    const now = new Date();
    let seenAtWake: number | undefined;
    let woken!: () => void;
    const wake = new Promise<void>((resolve) => {
      woken = resolve;
    });
    const wakes = await collectWakes(() => {
      if (seenAtWake !== undefined) return;
      seenAtWake = -1;
      // Read at once in the callback: what a worker's claim would see.
      void db.query<{ n: number }>("SELECT count(*)::int AS n FROM notification_queue WHERE user_id LIKE 'bw-%'").then(([r]) => {
        seenAtWake = r!.n;
        woken();
      });
    });
    try {
      await Promise.all(Array.from({ length: 5 }, (_, i) => batcher.insert(item(`bw-${i}`, now, now))));
      await wake;
      expect(seenAtWake).toBe(5);
    } finally {
      await wakes.stop();
    }
  });

  it.runIf(usingPostgres)("sends no wake for creations whose sends are due later (an unseen e-mail in 2 minutes)", async () => {
    const batcher = new NotificationInsertBatcher(db, { maxAttempts: 5 });
    const now = new Date();
    const wakes = await collectWakes();
    try {
      await Promise.all(Array.from({ length: 3 }, (_, i) => batcher.insert(item(`bl-${i}`, new Date(now.getTime() + 120_000), now))));
      await db.query("SELECT pg_notify($1, 'marker')", [CHANNEL]);
      await expect.poll(() => wakes.payloads.length).toBeGreaterThan(0);
      expect(wakes.payloads).toEqual(["marker"]);
    } finally {
      await wakes.stop();
    }
  });
});
