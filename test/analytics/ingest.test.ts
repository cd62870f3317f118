/** The batched ingest: nothing accepted is lost on stop, failures are retried without duplicates, rollups stay exact under concurrent flushes. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnalyticsIngest, type AnalyticsEventInput } from "../../src/analytics/index.js";
import type { Database, Queryable } from "../../src/db/index.js";
import { silentLogger } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { uuid } from "./fixtures.js";

const count = async (db: Queryable, sql: string) => Number((await db.query<{ n: number }>(sql))[0]!.n);

describe("AnalyticsIngest", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => db.cleanup());

  const reset = () => db.query("TRUNCATE analytics_events, analytics_firsts, analytics_rollup, analytics_group_stats");

  it("stop() writes every accepted event, across several 5,000-row statements, and then refuses new ones", async () => {
    await reset();
    const ingest = new AnalyticsIngest({ database: db, logger: silentLogger, intervalMs: 3_600_000, batchSize: 1_000_000 });
    ingest.start();
    for (let i = 0; i < 12_000; i++) ingest.record({ notificationId: uuid(i % 3000), userId: `u${i % 50}`, eventType: i < 6000 ? "sent" : "opened" });
    expect(ingest.pending).toBe(12_000);
    const stopping = ingest.stop();
    // Recorded while the final flush is in flight: still written.
    ingest.record({ notificationId: uuid(99_999), userId: "late", eventType: "clicked" });
    await stopping;
    expect(ingest.pending).toBe(0);
    expect(ingest.state).toBe("stopped");
    expect(await count(db, "SELECT count(*)::int AS n FROM analytics_events")).toBe(12_001);
    // 3000 notifications x {sent, delivered (implied by the open), opened} + the late click (and the delivery and send it implies), each counted once
    expect(await count(db, "SELECT count(*)::int AS n FROM analytics_firsts")).toBe(9003);
    expect(await count(db, "SELECT sum(events)::int AS n FROM analytics_rollup")).toBe(12_001);
    ingest.record({ notificationId: uuid(1), userId: "u", eventType: "sent" });
    expect(ingest.pending).toBe(0);
  });

  it("flushes by itself when the batch size is reached", async () => {
    await reset();
    const ingest = new AnalyticsIngest({ database: db, logger: silentLogger, intervalMs: 3_600_000, batchSize: 10 });
    const flushed = new Promise<readonly AnalyticsEventInput[]>((resolve) => ingest.onFlushed(resolve));
    for (let i = 0; i < 10; i++) ingest.record({ notificationId: uuid(i), userId: "u", eventType: "delivered" });
    expect(await flushed).toHaveLength(10);
    expect(await count(db, "SELECT count(*)::int AS n FROM analytics_events")).toBe(10);
    await ingest.stop();
  });

  it("drops malformed events at record() instead of poisoning a batch", async () => {
    await reset();
    const ingest = new AnalyticsIngest({ database: db, logger: silentLogger });
    ingest.record({ notificationId: "notif-123", userId: "u", eventType: "opened" });
    ingest.record({ notificationId: uuid(1), userId: "", eventType: "opened" });
    ingest.record({ notificationId: uuid(1), userId: "u", eventType: "bounced" as never });
    ingest.record({ notificationId: uuid(1), userId: "u", eventType: "opened", timestamp: new Date("nope") });
    ingest.record({ notificationId: uuid(1), userId: "u", eventType: "opened" });
    expect(ingest.pending).toBe(1);
    await ingest.stop();
    expect(await count(db, "SELECT count(*)::int AS n FROM analytics_events")).toBe(1);
  });

  it("keeps the events of a failed flush and writes them once on the next one", async () => {
    await reset();
    let failNext = true;
    const flaky: Pick<Database, "query" | "transaction"> = {
      async query(text, params) {
        if (failNext) {
          failNext = false;
          throw Object.assign(new Error("connection terminated"), { code: "57P01" });
        }
        return db.query(text, params);
      },
      transaction: (fn) => db.transaction(fn),
    };
    const ingest = new AnalyticsIngest({ database: flaky, logger: silentLogger });
    for (let i = 0; i < 5; i++) ingest.record({ notificationId: uuid(i), userId: "u", eventType: "sent" });
    await expect(ingest.flush()).rejects.toThrow("connection terminated");
    expect(ingest.pending).toBe(5);
    await ingest.flush();
    expect(ingest.pending).toBe(0);
    expect(await count(db, "SELECT count(*)::int AS n FROM analytics_events")).toBe(5);
    await ingest.stop();
  });

  it("two instances flushing the same notifications at once count each (notification, type) once", async () => {
    await reset();
    const a = new AnalyticsIngest({ database: db, logger: silentLogger });
    const b = new AnalyticsIngest({ database: db, logger: silentLogger });
    const at = new Date("2024-01-01T10:00:00Z");
    for (let i = 0; i < 300; i++) {
      a.record({ notificationId: uuid(i), userId: `u${i}`, eventType: "delivered", timestamp: at });
      b.record({ notificationId: uuid(299 - i), userId: `u${299 - i}`, eventType: "delivered", timestamp: at });
    }
    await Promise.all([a.flush(), b.flush()]);
    // 300 deliveries and the 300 sends they imply
    expect(await count(db, "SELECT count(*)::int AS n FROM analytics_firsts")).toBe(600);
    expect(await count(db, "SELECT sum(sent + delivered + opened + clicked + archived + deleted)::int AS n FROM analytics_rollup")).toBe(600);
    expect(await count(db, "SELECT sum(events)::int AS n FROM analytics_rollup")).toBe(600);
    expect(await count(db, "SELECT sum(delivered)::int AS n FROM analytics_group_stats")).toBe(300);
    await Promise.all([a.stop(), b.stop()]);
  });
});
