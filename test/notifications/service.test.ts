/**
 * NotificationService through a whole Herald (real database, real WebSocket
 * clients): creation and its live push with the user's presentation,
 * idempotency under concurrency, templates, preferences in the decision, and
 * inbox changes reaching the user's other devices and the analytics table.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeraldError } from "../../src/errors/index.js";
import { ManualClock } from "../../src/observability/index.js";
import type { NotificationService } from "../../src/notifications/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { connect } from "./ws-client.js";

let h: TestHerald;
let service: NotificationService;
// 12:00 UTC on a winter Monday: outside everybody's default quiet hours in UTC.
const clock = new ManualClock("2024-01-15T12:00:00Z");

beforeAll(async () => {
  h = await startTestHerald({ clock });
  service = h.herald.notifications;
});
afterAll(() => h?.stop());

async function events(notificationId: string): Promise<string[]> {
  await h.herald.runtime.analytics.flush();
  const rows = await h.database.query<{ event_type: string }>(
    `SELECT event_type FROM analytics_events WHERE notification_id = $1 AND event_type IN ('opened', 'archived', 'deleted') ORDER BY id`,
    [notificationId],
  );
  return rows.map((r) => r.event_type);
}

describe("createAndSendNotification", () => {
  it("pushes the committed notification to every live connection of the user with the preference presentation", async () => {
    await service.preferences.update("svc-live", { soundVolume: 35 });
    const [phone, laptop] = await Promise.all([connect(h.wsUrl, await h.tokenFor("svc-live")), connect(h.wsUrl, await h.tokenFor("svc-live"))]);
    try {
      const n = await service.createAndSendNotification({ userId: "svc-live", type: "booking_request", title: "Booking", message: "Tomorrow 10:00" });
      for (const ws of [phone, laptop]) {
        const m = await ws.next("notification");
        expect(m.notification).toMatchObject({ id: n!.id, priority: "high", title: "Booking" });
        expect(m.presentation).toEqual({ sound: true, volume: 35, desktop: true, silent: false });
      }
    } finally {
      await Promise.all([phone.close(), laptop.close()]);
    }
  });

  it("pushes silently during quiet hours in the user's time zone, but never a critical one", async () => {
    await h.herald.users.upsert({ id: "svc-tokyo", timezone: "Asia/Tokyo" });
    // 12:00 UTC is 21:00 in Tokyo: inside 20:00-07:00.
    await service.preferences.update("svc-tokyo", { quietHoursEnabled: true, quietHoursStart: "20:00", quietHoursEnd: "07:00" });
    const ws = await connect(h.wsUrl, await h.tokenFor("svc-tokyo"));
    try {
      await service.createAndSendNotification({ userId: "svc-tokyo", type: "new_message", title: "Hi", message: "m" });
      expect((await ws.next("notification")).presentation).toMatchObject({ silent: true, sound: false });
      await service.createAndSendNotification({ userId: "svc-tokyo", type: "security_alert", title: "Sign-in", message: "m" });
      const alert = await ws.next("notification");
      expect(alert.notification.priority).toBe("critical");
      expect(alert.presentation).toMatchObject({ silent: false, sound: true });
      // The e-mail of the first is held until 07:00 Tokyo (22:00 UTC); the alert's goes now.
      const queue = await h.database.query<{ title: string; next_retry_at: Date }>(
        `SELECT n.title, q.next_retry_at FROM notification_queue q JOIN notifications n ON n.id = q.notification_id
          WHERE q.user_id = 'svc-tokyo' AND q.channel = 'email' ORDER BY n.seq`,
      );
      expect(queue.map((q) => [q.title, new Date(q.next_retry_at).toISOString()])).toEqual([
        ["Hi", "2024-01-15T22:00:00.000Z"],
        ["Sign-in", "2024-01-15T12:00:00.000Z"],
      ]);
    } finally {
      await ws.close();
    }
  });

  it.each([
    ["new_message", "high"],
    ["booking_request", "high"],
    ["booking_confirmed", "normal"],
    ["payment_received", "high"],
    ["platform_update", "low"],
    ["security_alert", "critical"],
    ["invoice_overdue", "normal"],
  ])("gives %s without a priority the guide's default %s", async (type, priority) => {
    const n = await service.createAndSendNotification({ userId: "svc-prio", type, title: "t", message: "m" });
    expect(n!.priority).toBe(priority);
  });

  it("does not store a type the user switched off, and returns null", async () => {
    await service.preferences.update("svc-off", { bookingConfirmedEnabled: false });
    expect(await service.createAndSendNotification({ userId: "svc-off", type: "booking_confirmed", title: "t", message: "m" })).toBeNull();
    expect((await service.getNotifications("svc-off")).total).toBe(0);
  });

  it("stores but does not push when in-app is switched off", async () => {
    await service.preferences.update("svc-noinapp", { inAppEnabled: false });
    const ws = await connect(h.wsUrl, await h.tokenFor("svc-noinapp"));
    try {
      const quiet = await service.createAndSendNotification({ userId: "svc-noinapp", type: "new_message", title: "quiet", message: "m" });
      await service.createAndSendNotification({ userId: "svc-noinapp", type: "security_alert", title: "loud", message: "m" });
      // Messages on one socket arrive in order: the critical one is the first notification pushed.
      expect((await ws.next("notification")).notification.title).toBe("loud");
      expect(ws.messages.some((x) => x.type === "notification" && x.notification.id === quiet!.id)).toBe(false);
      // Kept for the digest and out-of-app channels, but not in the inbox (delivery rule 4).
      expect((await service.getNotifications("svc-noinapp")).notifications.map((x) => x.title)).toEqual(["loud"]);
    } finally {
      await ws.close();
    }
  });

  it("creates exactly one row for ten concurrent calls with the same idempotency key, all answering it", async () => {
    const input = { userId: "svc-idem", type: "payment_received", title: "Paid", message: "$40", idempotencyKey: "pay-1" };
    const results = await Promise.all(Array.from({ length: 10 }, () => service.createAndSendNotification(input)));
    expect(new Set(results.map((r) => r!.id)).size).toBe(1);
    const rows = await h.database.query<{ n: number }>(`SELECT count(*)::int AS n FROM notifications WHERE user_id = 'svc-idem'`);
    expect(rows[0]!.n).toBe(1);
    const queued = await h.database.query<{ n: number }>(`SELECT count(*)::int AS n FROM notification_queue WHERE user_id = 'svc-idem'`);
    expect(queued[0]!.n).toBe(1);
    // The same key for another user is another notification.
    const other = await service.createAndSendNotification({ ...input, userId: "svc-idem-2" });
    expect(other!.id).not.toBe(results[0]!.id);
  });

  it("refuses invalid input with a typed validation error naming the fields", async () => {
    const err = await service
      .createAndSendNotification({ userId: "svc-bad", type: "new_message", title: "x".repeat(201), message: "" } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HeraldError);
    expect((err as HeraldError).code).toBe("HERALD_VALIDATION");
    expect((err as HeraldError).fields.map((f) => f.field).sort()).toEqual(["message", "title"]);
  });
});

describe("createFromTemplate", () => {
  it("fills {{variables}} and lists every missing one in a HERALD_TEMPLATE_VARIABLES error", async () => {
    await service.templates.create({ key: "svc.welcome", type: "platform_update", titleTemplate: "Welcome {{name}}", messageTemplate: "Your plan: {{plan}} ({{seats}} seats)" });
    const n = await service.createFromTemplate("svc.welcome", "svc-tpl", { name: "Ada", plan: "Pro", seats: 3 });
    expect(n).toMatchObject({ title: "Welcome Ada", message: "Your plan: Pro (3 seats)", priority: "low" });
    const err = (await service.createFromTemplate("svc.welcome", "svc-tpl", { name: "Ada" }).catch((e: unknown) => e)) as HeraldError;
    expect(err.code).toBe("HERALD_TEMPLATE_VARIABLES");
    expect(err.message).toContain("plan, seats");
    expect((await service.getNotifications("svc-tpl")).total).toBe(1);
  });
});

describe("inbox changes", () => {
  it("a read over one socket goes through markRead: the row, the other device, the unread count and the opened event", async () => {
    const n = (await service.createAndSendNotification({ userId: "svc-sync", type: "new_message", title: "t", message: "m" }))!;
    const [a, b] = await Promise.all([connect(h.wsUrl, await h.tokenFor("svc-sync")), connect(h.wsUrl, await h.tokenFor("svc-sync"))]);
    try {
      a.send({ type: "read", id: n.id });
      expect(await b.next("notification_updated", (x) => x.id === n.id)).toMatchObject({ read: true, deleted: false });
      expect(await b.next("unread_count", (x) => x.count === 0)).toBeTruthy();
      expect((await service.getNotification("svc-sync", n.id))!.read).toBe(true);
      expect(await events(n.id)).toEqual(["opened"]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("archive, delete and read-all update the database, tell the devices and record archived / deleted (a read-all opens nothing)", async () => {
    const one = (await service.createAndSendNotification({ userId: "svc-ops", type: "new_message", title: "1", message: "m" }))!;
    const two = (await service.createAndSendNotification({ userId: "svc-ops", type: "new_message", title: "2", message: "m" }))!;
    const ws = await connect(h.wsUrl, await h.tokenFor("svc-ops"));
    try {
      expect(await service.archive("svc-ops", one.id)).toBe(true);
      expect(await ws.next("notification_updated", (x) => x.id === one.id)).toMatchObject({ archived: true });
      expect(await service.markAllRead("svc-ops")).toBe(2);
      expect(await service.getUnreadCount("svc-ops")).toBe(0);
      expect(await service.deleteNotification("svc-ops", two.id)).toBe(true);
      expect(await ws.next("notification_updated", (x) => x.id === two.id && x.deleted)).toBeTruthy();
      expect(await events(one.id)).toEqual(["archived"]);
      expect(await events(two.id)).toEqual(["deleted"]);
      // Another user cannot touch them, and nothing is recorded for the attempt.
      expect(await service.markRead("svc-intruder", one.id)).toBe(false);
      expect(await service.deleteNotification("svc-intruder", one.id)).toBe(false);
      expect(await service.getNotification("svc-ops", one.id)).not.toBeNull();
      expect(await service.getNotification("svc-ops", one.id)).toMatchObject({ read: true, archived: true });
      expect(await events(one.id)).toEqual(["archived"]);
    } finally {
      await ws.close();
    }
  });

  it("archive-all tells the devices which notifications it archived (with their read state) and the fresh count, records no archived events, and a deleted one below the watermark says archived", async () => {
    const user = "svc-archive-all";
    const [old, read, taken] = [
      (await service.createAndSendNotification({ userId: user, type: "new_message", title: "old", message: "m" }))!,
      (await service.createAndSendNotification({ userId: user, type: "new_message", title: "read", message: "m" }))!,
      (await service.createAndSendNotification({ userId: user, type: "new_message", title: "taken back", message: "m" }))!,
    ];
    expect(await service.markRead(user, read.id)).toBe(true);
    expect(await service.archive(user, old.id)).toBe(true);
    const ws = await connect(h.wsUrl, await h.tokenFor(user));
    try {
      await ws.next("sync");
      expect(await service.archiveAll(user)).toBe(2);
      const told = [await ws.next("notification_updated", (x) => x.id === read.id), await ws.next("notification_updated", (x) => x.id === taken.id)];
      expect(told).toEqual([
        { type: "notification_updated", id: read.id, read: true, archived: true, deleted: false },
        { type: "notification_updated", id: taken.id, read: false, archived: true, deleted: false },
      ]);
      expect(await ws.next("unread_count", (x) => x.count === 0)).toBeTruthy();
      // Archived by hand before the socket opened: the archive-all (whose messages all came before the count) did not tell it again.
      expect(ws.messages.some((m) => m.type === "notification_updated" && m.id === old.id)).toBe(false);

      // Unarchived below the watermark: the devices hear it, the count comes back; a second archive-all takes it again.
      expect(await service.updateNotification(user, taken.id, { archived: false })).toEqual({ read: false, archived: false });
      expect(await ws.next("unread_count", (x) => x.count === 1)).toBeTruthy();
      expect(await service.archiveAll(user)).toBe(1);
      expect(await ws.next("unread_count", (x) => x.count === 0)).toBeTruthy();
      // Archived by the watermark alone (the row's own column still says false): its deletion tells the real state.
      expect(await service.deleteNotification(user, read.id)).toBe(true);
      expect(await ws.next("notification_updated", (x) => x.id === read.id && x.deleted)).toEqual({
        type: "notification_updated",
        id: read.id,
        read: true,
        archived: true,
        deleted: true,
      });
      expect(await events(old.id)).toEqual(["archived"]);
      expect(await events(read.id)).toEqual(["opened", "deleted"]);
      expect(await events(taken.id)).toEqual([]);
    } finally {
      await ws.close();
    }
  });

  it("deleting an archived unread notification tells the devices its real state", async () => {
    const n = (await service.createAndSendNotification({ userId: "svc-del-state", type: "new_message", title: "t", message: "m" }))!;
    expect(await service.archive("svc-del-state", n.id)).toBe(true);
    const ws = await connect(h.wsUrl, await h.tokenFor("svc-del-state"));
    try {
      expect(await service.deleteNotification("svc-del-state", n.id)).toBe(true);
      const m = await ws.next("notification_updated", (x) => x.id === n.id);
      expect(m).toEqual({ type: "notification_updated", id: n.id, read: false, archived: true, deleted: true });
    } finally {
      await ws.close();
    }
  });

  it("reading an already read notification records opened only once", async () => {
    const n = (await service.createAndSendNotification({ userId: "svc-twice", type: "new_message", title: "t", message: "m" }))!;
    expect(await service.markRead("svc-twice", n.id)).toBe(true);
    expect(await service.markRead("svc-twice", n.id)).toBe(true);
    expect(await events(n.id)).toEqual(["opened"]);
  });
});

describe("user directory", () => {
  it("a change of time zone takes effect on the next notification (the cached zone is invalidated)", async () => {
    await h.herald.users.upsert({ id: "svc-move", timezone: "UTC" });
    await service.preferences.update("svc-move", { quietHoursEnabled: true, quietHoursStart: "20:00", quietHoursEnd: "07:00" });
    const ws = await connect(h.wsUrl, await h.tokenFor("svc-move"));
    try {
      // 12:00 UTC: not quiet in UTC...
      await service.createAndSendNotification({ userId: "svc-move", type: "new_message", title: "utc", message: "m" });
      expect((await ws.next("notification")).presentation.silent).toBe(false);
      // ...but 21:00 in Tokyo, once the user moved there.
      expect((await h.herald.users.upsert({ id: "svc-move", timezone: "Asia/Tokyo" })).timezone).toBe("Asia/Tokyo");
      await service.createAndSendNotification({ userId: "svc-move", type: "new_message", title: "tokyo", message: "m" });
      expect((await ws.next("notification")).presentation.silent).toBe(true);
    } finally {
      await ws.close();
    }
  });

  it("refuses an unknown IANA zone and an unknown field", async () => {
    const err = (await h.herald.users.upsert({ id: "svc-zone", timezone: "Europe/Atlantis" }).catch((e: unknown) => e)) as HeraldError;
    expect(err.code).toBe("HERALD_VALIDATION");
    expect(err.fields[0]!.field).toBe("timezone");
    expect(((await h.herald.users.upsert({ id: "svc-zone", admin: true } as never).catch((e: unknown) => e)) as HeraldError).code).toBe("HERALD_VALIDATION");
    expect(await h.herald.users.get("svc-zone")).toBeNull();
  });
});

describe("preferences", () => {
  it("are cached and the cache is invalidated by an update", async () => {
    const first = await service.preferences.get("svc-cache");
    expect(first.updatedAt).toBeNull();
    // Written behind the service's back: the cached copy is still served...
    await h.database.query(`INSERT INTO notification_preferences (user_id, sound_volume) VALUES ('svc-cache', 5)`);
    expect((await service.preferences.get("svc-cache")).soundVolume).toBe(70);
    // ...until an update through the service invalidates it.
    expect((await service.preferences.update("svc-cache", { soundEnabled: false })).soundVolume).toBe(5);
    expect(await service.preferences.get("svc-cache")).toMatchObject({ soundVolume: 5, soundEnabled: false });
  });
});
