/**
 * Issues #16.10 and #16.11: a deleted notification keeps its type, group
 * and title in analytics, whether its events were flushed before or after the
 * delete, and rollups rebuilt from the raw events equal those kept live.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rebuildRollups } from "../../src/analytics/index.js";
import { DELETE_OWN } from "../../src/notifications/sql.js";
import { type AnalyticsHarness, analyticsHarness, uuid } from "./fixtures.js";

const NOW = "2024-03-01T12:00:00.000Z";
const SINGLE = uuid(1); // events flushed, then deleted
const EARLY_DELETE = uuid(2); // deleted before its events are flushed
const B = uuid(100);
const [B1, B2] = [uuid(101), uuid(102)];

describe("analytics of deleted notifications", () => {
  let h: AnalyticsHarness;
  const read = async () => {
    await h.cache.deletePrefix("analytics:");
    const overview = await h.service.getOverview();
    return {
      byType: overview.byType.filter((t) => t.sent > 0).map((t) => [t.type, t.sent, t.delivered, t.opened, t.deleted]),
      top: (await h.service.getTopNotifications({ minDelivered: 1, limit: 10 })).map((t) => [t.id, t.broadcast, t.type, t.title, t.delivered]),
      trends: (await h.service.getTrends({ interval: "day", days: 2 })).buckets.map((b) => [b.local, b.sent, b.delivered, b.opened, b.deleted]),
      rollup: await h.db.query("SELECT bucket::text, notification_type, sent, delivered, opened, clicked, archived, deleted, events FROM analytics_rollup ORDER BY 1, 2"),
      groups: await h.db.query("SELECT group_id::text, notification_type, title, broadcast, sent, delivered, opened, deleted FROM analytics_group_stats ORDER BY 1"),
      firsts: await h.db.query("SELECT notification_id::text, event_type, notification_type, group_id::text FROM analytics_firsts ORDER BY 1, 2"),
    };
  };

  beforeAll(async () => {
    h = await analyticsHarness(NOW);
    await h.notification({ id: SINGLE, userId: "u1", type: "booking_request", title: "Your booking" });
    await h.notification({ id: EARLY_DELETE, userId: "u2", type: "payment_received", title: "Paid" });
    await h.notification({ id: B1, userId: "b1", type: "platform_update", title: "Big news", broadcastId: B });
    await h.notification({ id: B2, userId: "b2", type: "platform_update", title: "Big news", broadcastId: B });
    const sentAndDelivered = (id: string, user: string) => {
      h.event(id, user, "sent", "2024-03-01T10:00:00Z");
      h.event(id, user, "delivered", "2024-03-01T10:01:00Z");
    };
    // SINGLE's and B2's events reach the database while the rows exist...
    sentAndDelivered(SINGLE, "u1");
    sentAndDelivered(B2, "b2");
    h.event(B2, "b2", "opened", "2024-03-01T10:05:00Z");
    await h.ingest.flush();
    // ...EARLY_DELETE's and B1's are still buffered when their rows go.
    for (const [id, user] of [[EARLY_DELETE, "u2"], [B1, "b1"]] as const) {
      sentAndDelivered(id, user);
      h.event(id, user, "opened", "2024-03-01T10:30:00Z");
    }
    for (const [id, user] of [[SINGLE, "u1"], [EARLY_DELETE, "u2"], [B1, "b1"]] as const) {
      expect(await h.db.query(DELETE_OWN, [id, user])).toHaveLength(1);
      h.event(id, user, "deleted", "2024-03-01T11:00:00Z");
    }
    await h.ingest.flush();
  });
  afterAll(async () => h.close());

  it("live figures keep the real type and group after the delete (no 'unknown')", async () => {
    const live = await read();
    expect(live.firsts.filter((f) => f.notification_type === "unknown")).toEqual([]);
    expect(live.byType).toEqual([
      ["booking_request", 1, 1, 0, 1],
      ["payment_received", 1, 1, 1, 1],
      ["platform_update", 2, 2, 2, 1],
    ]);
  });

  it("a deleted single notification is listed as a single one with its title, a broadcast with a deleted recipient stays one group", async () => {
    const { top } = await read();
    expect(top).toEqual(
      expect.arrayContaining([
        [SINGLE, false, "booking_request", "Your booking", 1],
        [EARLY_DELETE, false, "payment_received", "Paid", 1],
        [B, true, "platform_update", "Big news", 2],
      ]),
    );
    expect(top).toHaveLength(3);
  });

  it("rebuildRollups gives the same figures as the live rollups", async () => {
    const live = await read();
    await rebuildRollups(h.db);
    const rebuilt = await read();
    expect(rebuilt).toEqual(live);
  });
});
