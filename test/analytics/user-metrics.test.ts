/**
 * Per-notification, per-user and by-type metrics against hand-computed
 * expectations on a fixed data set (docs/delivery.md, Analytics).
 *
 * NOW = 2024-03-15T12:00:00Z. Alice's notifications:
 *   N1 new_message       sent, delivered, opened, opened again (duplicate), clicked   (-1 d)
 *   N2 booking_request   sent, delivered, opened                                      (-2 d)
 *   N3 new_message       sent only                                                    (-3 d)
 *   N5 new_message       sent, delivered (-6 d), archived, deleted (-5 d)
 *   N4 payment_received  sent, delivered, opened                                      (-10 d: outside 7 d, inside 30 d)
 *   N7 booking_request   sent at NOW-7d-1s (outside 7 d), delivered at NOW-7d exactly (inside)
 * Bob: N6 platform_update sent, delivered, opened (-1 d): never in Alice's numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rate } from "../../src/analytics/index.js";
import { type AnalyticsHarness, analyticsHarness, uuid } from "./fixtures.js";

const NOW = "2024-03-15T12:00:00.000Z";
const at = (ms: number) => new Date(Date.parse(NOW) - ms);
const H = 3_600_000;
const D = 24 * H;
const [N1, N2, N3, N4, N5, N6, N7] = [1, 2, 3, 4, 5, 6, 7].map(uuid) as [string, string, string, string, string, string, string];

describe("rate()", () => {
  it.each([
    [1, 3, 33.33],
    [2, 3, 66.67],
    [3, 4, 75],
    [0, 5, 0],
    [5, 0, 0],
    [0, 0, 0],
    [2, 1, 200],
    [1, 8, 12.5],
  ])("rate(%i, %i) is %d", (n, d, expected) => {
    expect(rate(n, d)).toBe(expected);
  });
});

describe("user and notification metrics on a fixed data set", () => {
  let h: AnalyticsHarness;

  beforeAll(async () => {
    h = await analyticsHarness(NOW);
    for (const [id, type] of [
      [N1, "new_message"],
      [N2, "booking_request"],
      [N3, "new_message"],
      [N4, "payment_received"],
      [N5, "new_message"],
      [N7, "booking_request"],
    ] as const) {
      await h.notification({ id, userId: "alice", type });
    }
    await h.notification({ id: N6, userId: "bob", type: "platform_update" });
    const a = "alice";
    h.event(N1, a, "sent", at(D));
    h.event(N1, a, "delivered", at(D - 1000));
    h.event(N1, a, "opened", at(D - H));
    h.event(N1, a, "opened", at(D - 2 * H));
    h.event(N1, a, "clicked", at(D - 3 * H));
    h.event(N2, a, "sent", at(2 * D));
    h.event(N2, a, "delivered", at(2 * D));
    h.event(N2, a, "opened", at(2 * D - H));
    h.event(N3, a, "sent", at(3 * D));
    h.event(N5, a, "sent", at(6 * D));
    h.event(N5, a, "delivered", at(6 * D));
    h.event(N5, a, "archived", at(5 * D));
    h.event(N5, a, "deleted", at(5 * D));
    h.event(N4, a, "sent", at(10 * D));
    h.event(N4, a, "delivered", at(10 * D));
    h.event(N4, a, "opened", at(10 * D));
    h.event(N7, a, "sent", at(7 * D + 1000));
    h.event(N7, a, "delivered", at(7 * D));
    h.event(N6, "bob", "sent", at(D));
    h.event(N6, "bob", "delivered", at(D));
    h.event(N6, "bob", "opened", at(D));
  });
  afterAll(async () => h.close());

  it("counts a duplicate open once and keeps raw counts beside it (N1)", async () => {
    const m = await h.service.getNotificationMetrics(N1);
    expect(m).toMatchObject({ notificationId: N1, sent: 1, delivered: 1, opened: 1, clicked: 1, archived: 0, deleted: 0 });
    expect(m).toMatchObject({ deliveryRate: 100, openRate: 100, clickRate: 100 });
    expect(m.events).toEqual({ sent: 1, delivered: 1, opened: 2, clicked: 1, archived: 0, deleted: 0 });
  });

  it("gives 0 rates when nothing was delivered (N3) and for an unknown notification", async () => {
    expect(await h.service.getNotificationMetrics(N3)).toMatchObject({ sent: 1, delivered: 0, deliveryRate: 0, openRate: 0, clickRate: 0 });
    const unknown = await h.service.getNotificationMetrics(uuid(999));
    expect(unknown).toMatchObject({ sent: 0, delivered: 0, opened: 0, deliveryRate: 0, openRate: 0, clickRate: 0 });
    await expect(h.service.getNotificationMetrics(uuid(999), { requireExisting: true })).rejects.toMatchObject({ code: "HERALD_NOT_FOUND" });
  });

  it("7-day user metrics exclude NOW-7d-1s and include NOW-7d exactly", async () => {
    const m = await h.service.getUserMetrics("alice", 7);
    // sent {N1,N2,N3,N5}, delivered {N1,N2,N5,N7}, opened {N1,N2}, clicked {N1}
    expect(m).toMatchObject({ userId: "alice", days: 7, sent: 4, delivered: 4, opened: 2, clicked: 1, archived: 1, deleted: 1 });
    expect(m).toMatchObject({ deliveryRate: 100, openRate: 50, clickRate: 25 });
    expect(m.until).toBe(NOW);
  });

  it("30-day user metrics include the 10-day-old notification", async () => {
    const m = await h.service.getUserMetrics("alice", 30);
    // sent 6, delivered {N1,N2,N5,N7,N4} 5, opened {N1,N2,N4} 3, clicked 1
    expect(m).toMatchObject({ sent: 6, delivered: 5, opened: 3, clicked: 1, archived: 1, deleted: 1 });
    expect(m).toMatchObject({ deliveryRate: 83.33, openRate: 60, clickRate: 20 });
  });

  it("a user with no events has zeros everywhere, not NaN", async () => {
    expect(await h.service.getUserMetrics("nobody", 7)).toMatchObject({ sent: 0, delivered: 0, deliveryRate: 0, openRate: 0, clickRate: 0 });
  });

  it("by type over 7 days: every known type listed, rates per type, other users excluded", async () => {
    const rows = await h.service.getMetricsByType("alice", 7);
    const byType = Object.fromEntries(rows.map((r) => [r.type, r]));
    expect(Object.keys(byType).sort()).toEqual(
      ["booking_confirmed", "booking_request", "new_message", "payment_received", "platform_update", "security_alert"].sort(),
    );
    // new_message: sent {N1,N3,N5}, delivered {N1,N5}, opened {N1}, clicked {N1}, archived/deleted {N5}
    expect(byType.new_message).toMatchObject({ sent: 3, delivered: 2, opened: 1, clicked: 1, archived: 1, deleted: 1, deliveryRate: 66.67, openRate: 50, clickRate: 50 });
    // booking_request: sent {N2} (N7's sent is outside), delivered {N2,N7}: rates are not capped
    expect(byType.booking_request).toMatchObject({ sent: 1, delivered: 2, opened: 1, deliveryRate: 200, openRate: 50, clickRate: 0 });
    expect(byType.payment_received).toMatchObject({ sent: 0, delivered: 0, opened: 0, deliveryRate: 0, openRate: 0 });
    expect(byType.platform_update).toMatchObject({ sent: 0 });
  });

  it("by type over 30 days picks up payment_received", async () => {
    const rows = await h.service.getMetricsByType("alice", 30);
    expect(rows.find((r) => r.type === "payment_received")).toMatchObject({ sent: 1, delivered: 1, opened: 1, openRate: 100 });
    expect(rows.find((r) => r.type === "booking_request")).toMatchObject({ sent: 2, delivered: 2, deliveryRate: 100 });
  });

  it("a read right after trackEvent sees the event, even with a cached result", async () => {
    const before = await h.service.getNotificationMetrics(N3);
    const userBefore = await h.service.getUserMetrics("alice", 7);
    expect(before.delivered).toBe(0);
    await h.service.trackEvent(N3, "alice", "delivered", { device: "mobile" });
    expect(h.ingest.pending).toBe(1);
    const after = await h.service.getNotificationMetrics(N3);
    expect(after).toMatchObject({ delivered: 1, deliveryRate: 100 });
    const userAfter = await h.service.getUserMetrics("alice", 7);
    expect(userAfter.delivered).toBe(userBefore.delivered + 1);
  });

  it("refuses an unknown event type, a non-UUID id and a bad window with HERALD_VALIDATION", async () => {
    await expect(h.service.trackEvent(N1, "alice", "bounced", {})).rejects.toMatchObject({ code: "HERALD_VALIDATION", status: 400 });
    await expect(h.service.trackEvent("notif-123", "alice", "opened", {})).rejects.toMatchObject({ code: "HERALD_VALIDATION" });
    await expect(h.service.getUserMetrics("alice", 0)).rejects.toMatchObject({ code: "HERALD_VALIDATION" });
    expect(h.ingest.pending).toBe(0);
  });

  it("a provider may track only on its own notifications", async () => {
    await expect(h.service.trackOwnEvent("bob", N1, "clicked", {})).rejects.toMatchObject({ code: "HERALD_NOT_FOUND" });
    expect(h.ingest.pending).toBe(0);
    await h.service.trackOwnEvent("bob", N6, "clicked", {});
    expect((await h.service.getNotificationMetrics(N6)).clicked).toBe(1);
  });
});
