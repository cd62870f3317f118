/**
 * The delivery rules apply to each recipient of a broadcast (issue 16.3): out-of-app
 * sends are queued per user by their own channel toggles, frequency, quiet
 * hours and zone, exactly as for a single creation, in the broadcast's
 * transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/observability/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

let h: TestHerald;
// 12:00 UTC on a winter Monday.
const clock = new ManualClock("2024-01-15T12:00:00Z");

beforeAll(async () => {
  h = await startTestHerald({ clock });
  const prefs = h.herald.notifications.preferences;
  for (const [id, timezone] of [
    ["bo-default", "UTC"],
    ["bo-no-email", "UTC"],
    ["bo-digest", "UTC"],
    ["bo-tokyo-quiet", "Asia/Tokyo"],
    ["bo-hourly", "UTC"],
    ["bo-push", "UTC"],
    ["bo-type-off", "UTC"],
    ["bo-in-app-off", "UTC"],
    ["bo-always", "UTC"],
  ] as const) {
    await h.herald.users.upsert({ id, email: `${id}@example.com`, timezone });
  }
  await prefs.update("bo-no-email", { emailEnabled: false });
  await prefs.update("bo-digest", { frequency: "daily_digest" });
  // 21:00 in Tokyo: inside 20:00-07:00, which ends at 22:00 UTC.
  await prefs.update("bo-tokyo-quiet", { quietHoursEnabled: true, quietHoursStart: "20:00", quietHoursEnd: "07:00" });
  await prefs.update("bo-hourly", { frequency: "hourly" });
  await prefs.update("bo-push", { browserPushEnabled: true });
  await prefs.update("bo-type-off", { platformUpdateEnabled: false });
  await prefs.update("bo-in-app-off", { inAppEnabled: false });
  await prefs.update("bo-always", { emailImmediate: "always" });
});
afterAll(() => h?.stop());

interface QueueRow {
  user: string;
  channel: string;
  status: string;
  due: string;
  mode: string;
  inApp: boolean | null;
}

async function queueOf(broadcastId: string): Promise<QueueRow[]> {
  const rows = await h.database.query<{ user: string; channel: string; status: string; due: Date; payload: { mode: string; inApp?: boolean } }>(
    `SELECT n.user_id AS "user", q.channel, q.status, q.next_retry_at AS due, q.payload
       FROM notification_queue q JOIN notifications n ON n.id = q.notification_id
      WHERE n.broadcast_id = $1 ORDER BY n.user_id, q.channel`,
    [broadcastId],
  );
  return rows.map((r) => ({ user: r.user, channel: r.channel, status: r.status, due: new Date(r.due).toISOString(), mode: r.payload.mode, inApp: r.payload.inApp ?? null }));
}

const NOW = "2024-01-15T12:00:00.000Z";
/** A low/normal e-mail in the default "unseen" mode waits 2 minutes to be seen in-app (docs/delivery.md, rule 3). */
const UNLESS_SEEN = "2024-01-15T12:02:00.000Z";

describe("broadcast out-of-app sends", () => {
  it("are queued per recipient by their own toggles, frequency, quiet hours and zone", async () => {
    const { broadcastId, count } = await h.herald.notifications.broadcast({ type: "platform_update", title: "New feature", message: "m" });
    expect(count).toBe(8);
    expect(await queueOf(broadcastId)).toEqual([
      { user: "bo-always", channel: "email", status: "pending", due: NOW, mode: "single", inApp: true },
      { user: "bo-default", channel: "email", status: "pending", due: UNLESS_SEEN, mode: "single", inApp: true },
      { user: "bo-hourly", channel: "email", status: "held", due: "2024-01-15T13:00:00.000Z", mode: "member", inApp: true },
      { user: "bo-in-app-off", channel: "email", status: "pending", due: NOW, mode: "single", inApp: false },
      { user: "bo-push", channel: "email", status: "pending", due: UNLESS_SEEN, mode: "single", inApp: true },
      { user: "bo-push", channel: "push", status: "pending", due: NOW, mode: "single", inApp: true },
      { user: "bo-tokyo-quiet", channel: "email", status: "pending", due: "2024-01-15T22:00:00.000Z", mode: "single", inApp: true },
    ]);
    // The hourly member's bundle row is due at the top of the hour, once.
    const bundles = await h.database.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM notification_queue WHERE user_id = 'bo-hourly' AND payload->>'mode' = 'bundle' AND next_retry_at = '2024-01-15T13:00:00Z'`,
    );
    expect(bundles[0]!.n).toBe(1);
  });

  it("a critical broadcast goes now on every enabled channel, quiet hours and frequency notwithstanding", async () => {
    const { broadcastId } = await h.herald.notifications.broadcast({ type: "security_alert", title: "Rotate your password", message: "m" });
    const rows = await queueOf(broadcastId);
    expect(rows.filter((r) => r.user === "bo-tokyo-quiet" || r.user === "bo-hourly" || r.user === "bo-digest" || r.user === "bo-type-off")).toEqual([
      { user: "bo-digest", channel: "email", status: "pending", due: NOW, mode: "single", inApp: true },
      { user: "bo-hourly", channel: "email", status: "pending", due: NOW, mode: "single", inApp: true },
      { user: "bo-tokyo-quiet", channel: "email", status: "pending", due: NOW, mode: "single", inApp: true },
      { user: "bo-type-off", channel: "email", status: "pending", due: NOW, mode: "single", inApp: true },
    ]);
    expect(rows.some((r) => r.user === "bo-no-email")).toBe(false);
  });
});
