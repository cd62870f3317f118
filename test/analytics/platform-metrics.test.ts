/**
 * Platform-wide trends, overview and top notifications against hand-computed
 * expectations, with bucket boundaries in America/New_York (UTC-5 in January)
 * and exact window edges inside a 15-minute rollup bucket.
 *
 * NOW = 2024-01-10T17:07:00Z (Wednesday 12:07 in New York).
 *   T1 new_message       sent 2024-01-08T04:59Z (Sun Jan 7 23:59 NY), delivered 05:00Z (Mon Jan 8 00:00 NY)
 *   T2 new_message       sent 17:00Z, delivered 17:05Z, opened 17:06Z and 17:06:30Z (dup), clicked 17:10Z (after NOW) on Jan 10
 *   T3 payment_received  sent 2024-01-05T12:00Z, opened 13:00Z (no delivery event: the open implies one at 13:00Z)
 *   T4 platform_update   sent 2024-01-01T04:30Z (Dec 31 23:30 NY: December locally, January in UTC)
 *   T5 booking_request   delivered 2024-01-03T17:05Z, sent 17:10Z (the delivery implies a send at 17:05Z; NOW-7d = 17:07Z)
 *   Broadcast B (platform_update, "Big news", 4 recipients, 2023-06-01): 4 sent, 4 delivered, 3 opened (+1 dup), 1 clicked
 *   Broadcast C (platform_update, "Flash sale", 2 recipients, 2023-06-02): 2 sent, 2 delivered, 2 opened, 2 clicked
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rebuildRollups } from "../../src/analytics/index.js";
import { type AnalyticsHarness, analyticsHarness, uuid } from "./fixtures.js";

const NOW = "2024-01-10T17:07:00.000Z";
const [T1, T2, T3, T4, T5] = [1, 2, 3, 4, 5].map(uuid) as [string, string, string, string, string];
const B = uuid(100);
const C = uuid(200);
const Bs = [101, 102, 103, 104].map(uuid);
const Cs = [201, 202].map(uuid);

const pick = (b: { sent: number; delivered: number; opened: number; clicked: number }) => ({
  sent: b.sent,
  delivered: b.delivered,
  opened: b.opened,
  clicked: b.clicked,
});

describe("platform trends, overview and top on a fixed data set", () => {
  let h: AnalyticsHarness;

  beforeAll(async () => {
    h = await analyticsHarness(NOW);
    await h.notification({ id: T1, userId: "u1", type: "new_message" });
    await h.notification({ id: T2, userId: "u2", type: "new_message" });
    await h.notification({ id: T3, userId: "u3", type: "payment_received" });
    await h.notification({ id: T4, userId: "u4", type: "platform_update" });
    await h.notification({ id: T5, userId: "u5", type: "booking_request" });
    for (const [i, id] of Bs.entries()) await h.notification({ id, userId: `b${i}`, type: "platform_update", title: "Big news", broadcastId: B });
    for (const [i, id] of Cs.entries()) await h.notification({ id, userId: `c${i}`, type: "platform_update", title: "Flash sale", broadcastId: C });

    h.event(T1, "u1", "sent", "2024-01-08T04:59:00Z");
    h.event(T1, "u1", "delivered", "2024-01-08T05:00:00Z");
    h.event(T2, "u2", "sent", "2024-01-10T17:00:00Z");
    h.event(T2, "u2", "delivered", "2024-01-10T17:05:00Z");
    h.event(T2, "u2", "opened", "2024-01-10T17:06:00Z");
    h.event(T2, "u2", "opened", "2024-01-10T17:06:30Z");
    h.event(T2, "u2", "clicked", "2024-01-10T17:10:00Z");
    h.event(T3, "u3", "sent", "2024-01-05T12:00:00Z");
    h.event(T3, "u3", "opened", "2024-01-05T13:00:00Z");
    h.event(T4, "u4", "sent", "2024-01-01T04:30:00Z");
    h.event(T5, "u5", "delivered", "2024-01-03T17:05:00Z");
    h.event(T5, "u5", "sent", "2024-01-03T17:10:00Z");
    for (const [i, id] of Bs.entries()) {
      h.event(id, `b${i}`, "sent", "2023-06-01T10:00:00Z");
      h.event(id, `b${i}`, "delivered", "2023-06-01T10:01:00Z");
      if (i < 3) h.event(id, `b${i}`, "opened", "2023-06-01T11:00:00Z");
      if (i === 0) h.event(id, `b${i}`, "opened", "2023-06-01T12:00:00Z");
      if (i === 0) h.event(id, `b${i}`, "clicked", "2023-06-01T12:00:00Z");
    }
    for (const [i, id] of Cs.entries()) {
      for (const t of ["sent", "delivered", "opened", "clicked"] as const) h.event(id, `c${i}`, t, "2023-06-02T10:00:00Z");
    }
    await h.ingest.flush();
  });
  afterAll(async () => h.close());

  it("daily trend in New York puts 23:59 and 00:00 local on different days and starts at local midnight", async () => {
    const t = await h.service.getTrends({ interval: "day", days: 7, timeZone: "America/New_York" });
    expect(t.since).toBe("2024-01-03T05:00:00.000Z");
    expect(t.buckets.map((b) => b.local)).toEqual([
      "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08", "2024-01-09", "2024-01-10",
    ]);
    const by = Object.fromEntries(t.buckets.map((b) => [b.local, b]));
    expect(pick(by["2024-01-03"]!)).toEqual({ sent: 1, delivered: 1, opened: 0, clicked: 0 });
    expect(pick(by["2024-01-05"]!)).toEqual({ sent: 1, delivered: 1, opened: 1, clicked: 0 });
    expect(by["2024-01-05"]).toMatchObject({ openRate: 100, deliveryRate: 100 });
    expect(by["2024-01-08"]).toMatchObject({ deliveryRate: 0 }); // zero denominator: T1 was sent the day before
    expect(pick(by["2024-01-07"]!)).toEqual({ sent: 1, delivered: 0, opened: 0, clicked: 0 });
    expect(pick(by["2024-01-08"]!)).toEqual({ sent: 0, delivered: 1, opened: 0, clicked: 0 });
    // T2: the duplicate open counts once; the click after NOW is not counted.
    expect(by["2024-01-10"]).toMatchObject({ sent: 1, delivered: 1, opened: 1, clicked: 0, openRate: 100 });
    expect(pick(by["2024-01-04"]!)).toEqual({ sent: 0, delivered: 0, opened: 0, clicked: 0 });
    expect(by["2024-01-08"]!.start).toBe("2024-01-08T05:00:00.000Z");
  });

  it("daily trend in UTC puts T1's sent and delivered on the same day", async () => {
    const t = await h.service.getTrends({ interval: "day", days: 7, timeZone: "UTC" });
    const by = Object.fromEntries(t.buckets.map((b) => [b.local, b]));
    expect(pick(by["2024-01-08"]!)).toEqual({ sent: 1, delivered: 1, opened: 0, clicked: 0 });
    expect(by["2024-01-07"]?.sent ?? 0).toBe(0);
  });

  it("weekly trend in New York starts weeks on Monday local time", async () => {
    const t = await h.service.getTrends({ interval: "week", days: 14, timeZone: "America/New_York" });
    expect(t.buckets.map((b) => [b.local, pick(b)])).toEqual([
      ["2023-12-25", { sent: 1, delivered: 0, opened: 0, clicked: 0 }], // T4 (Dec 31 local)
      ["2024-01-01", { sent: 3, delivered: 2, opened: 1, clicked: 0 }], // T1 sent (Sun 23:59), T3, T5
      ["2024-01-08", { sent: 1, delivered: 2, opened: 1, clicked: 0 }], // T1 delivered (Mon 00:00), T2
    ]);
    // Each event type counts in the bucket where it happened: T1 was sent the week before it was delivered.
    expect(t.buckets[2]).toMatchObject({ deliveryRate: 200, openRate: 50 });
    expect(t.buckets[1]!.start).toBe("2024-01-01T05:00:00.000Z");
  });

  it("weekly trend in UTC moves T1's sent and T4 to other weeks", async () => {
    const t = await h.service.getTrends({ interval: "week", days: 14, timeZone: "UTC" });
    expect(t.buckets.map((b) => [b.local, b.sent])).toEqual([
      ["2023-12-25", 0],
      ["2024-01-01", 3], // T3, T4, T5
      ["2024-01-08", 2], // T1, T2
    ]);
  });

  it("monthly trend in New York keeps Dec 31 23:30 local in December", async () => {
    const t = await h.service.getTrends({ interval: "month", days: 30, timeZone: "America/New_York" });
    expect(t.buckets.map((b) => [b.local, pick(b)])).toEqual([
      ["2023-12-01", { sent: 1, delivered: 0, opened: 0, clicked: 0 }],
      ["2024-01-01", { sent: 4, delivered: 4, opened: 2, clicked: 0 }],
    ]);
    expect(t.buckets[1]).toMatchObject({ deliveryRate: 100, openRate: 50, clickRate: 0 });
  });

  it("per-user trend reads only that user's events", async () => {
    const t = await h.service.getTrends({ interval: "day", days: 7, timeZone: "America/New_York", userId: "u2" });
    expect(t.buckets.reduce((s, b) => s + b.sent, 0)).toBe(1);
    expect(t.buckets.at(-1)).toMatchObject({ local: "2024-01-10", sent: 1, delivered: 1, opened: 1 });
  });

  it("overview over 7 days is exact at edges inside a 15-minute bucket", async () => {
    const o = await h.service.getOverview({ days: 7 });
    // sent T1,T2,T3 and delivered T1,T2,T3 (T5's, and the send it implies, are 2 min before the window); opened T2,T3; the click is after NOW.
    expect(o).toMatchObject({ days: 7, sent: 3, delivered: 3, opened: 2, clicked: 0, deliveryRate: 100, openRate: 66.67, clickRate: 0 });
    expect(o.since).toBe("2024-01-03T17:07:00.000Z");
    // raw events in the window: T1 2, T2 4 (dup open, not the later click), T3 2, T5 1
    expect(o.events).toBe(9);
    const byType = Object.fromEntries(o.byType.map((t) => [t.type, t]));
    expect(pick(byType.new_message!)).toEqual({ sent: 2, delivered: 2, opened: 1, clicked: 0 });
    expect(pick(byType.payment_received!)).toEqual({ sent: 1, delivered: 1, opened: 1, clicked: 0 });
    expect(pick(byType.booking_request!)).toEqual({ sent: 0, delivered: 0, opened: 0, clicked: 0 });
  });

  it("overview over all time adds the broadcasts", async () => {
    const o = await h.service.getOverview();
    expect(o).toMatchObject({ days: null, since: null, sent: 11, delivered: 10, opened: 7, clicked: 3 });
    expect(o).toMatchObject({ deliveryRate: 90.91, openRate: 70, clickRate: 30 });
    expect(o.events).toBe(32);
  });

  it("top by open rate ranks broadcasts with the minimum sample", async () => {
    const top = await h.service.getTopNotifications({ by: "open", minDelivered: 2 });
    expect(top.map((t) => [t.id, t.title, t.broadcast, t.delivered, t.opened, t.openRate])).toEqual([
      [C, "Flash sale", true, 2, 2, 100],
      [B, "Big news", true, 4, 3, 75],
    ]);
    const byClick = await h.service.getTopNotifications({ by: "click", minDelivered: 2 });
    expect(byClick.map((t) => [t.id, t.clickRate])).toEqual([
      [C, 100],
      [B, 25],
    ]);
    expect((await h.service.getTopNotifications({ minDelivered: 3 })).map((t) => t.id)).toEqual([B]);
  });

  it("with a minimum of one delivery, single notifications appear and ties go to the larger sample", async () => {
    const top = await h.service.getTopNotifications({ by: "open", minDelivered: 1, limit: 3 });
    expect(top.map((t) => [t.id, t.broadcast, t.openRate])).toEqual([
      [C, true, 100],
      [T2, false, 100],
      [T3, false, 100], // its open implies its delivery
    ]);
  });

  it("a new flush invalidates cached platform results", async () => {
    const before = await h.service.getOverview({ days: 7 });
    h.event(T1, "u1", "opened", "2024-01-09T10:00:00Z");
    await h.ingest.flush();
    const after = await h.service.getOverview({ days: 7 });
    expect(after.opened).toBe(before.opened + 1);
  });

  it("refuses a bad interval and an unknown zone with HERALD_VALIDATION", async () => {
    await expect(h.service.getTrends({ interval: "hour" })).rejects.toMatchObject({ code: "HERALD_VALIDATION" });
    await expect(h.service.getTrends({ timeZone: "Mars/Olympus" })).rejects.toMatchObject({ code: "HERALD_VALIDATION" });
    await expect(h.service.getTopNotifications({ by: "views" })).rejects.toMatchObject({ code: "HERALD_VALIDATION" });
  });

  it("rollups maintained at flush equal rollups rebuilt from the raw events", async () => {
    const read = async () => ({
      overview: await h.service.getOverview({ days: 7 }),
      all: await h.service.getOverview(),
      weeks: await h.service.getTrends({ interval: "week", days: 14, timeZone: "America/New_York" }),
      top: await h.service.getTopNotifications({ minDelivered: 1, limit: 20 }),
      rows: await h.db.query("SELECT bucket::text, notification_type, sent, delivered, opened, clicked, archived, deleted, events FROM analytics_rollup ORDER BY 1, 2"),
    });
    // The rebuild drops the rollup tables' secondary indexes for its bulk inserts: they must all come back as they were.
    const indexes = () =>
      h.db.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'analytics_%' ORDER BY 1");
    const indexesBefore = await indexes();
    const maintained = await read();
    await rebuildRollups(h.db, { memory: "64MB" });
    await h.cache.deletePrefix("analytics:");
    const rebuilt = await read();
    expect(rebuilt).toEqual(maintained);
    expect(maintained.rows.length).toBeGreaterThan(8);
    expect(await indexes()).toEqual(indexesBefore);
    expect(indexesBefore.map((i) => i.indexname)).toEqual(expect.arrayContaining(["analytics_firsts_user_idx", "analytics_group_stats_delivered_idx"]));
  });
});
