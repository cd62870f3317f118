/**
 * delivery rule 4: with inAppEnabled off, a notification is kept only for the
 * channels that need it (digest, out-of-app): not listed, counted, pushed or
 * synced, on the REST and the WebSocket paths alike. Critical ones still are.
 * And the unread badge contract: the server counts on connect and after every
 * inbox change; the client adds one per live unread `notification` (no
 * `unread_count` after a creation), which stays exact.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/observability/index.js";
import type { Listed } from "../support/bodies.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { api } from "./api.js";
import { connect } from "./ws-client.js";

let h: TestHerald;
let call: ReturnType<typeof api>;
const clock = new ManualClock("2024-01-15T12:00:00Z");

beforeAll(async () => {
  h = await startTestHerald({ clock });
  call = api(h);
});
afterAll(() => h?.stop());

const service = () => h.herald.notifications;

describe("inAppEnabled: false", () => {
  it("a booking_request is not pushed, listed, counted, synced or read-all'ed, but still queued for e-mail and left for the digest", async () => {
    const user = "off-inapp";
    await service().preferences.update(user, { inAppEnabled: false });
    const token = await h.tokenFor(user);
    const live = await connect(h.wsUrl, token);
    try {
      expect(await live.next("unread_count")).toMatchObject({ count: 0 });
      const hidden = (await service().createAndSendNotification({ userId: user, type: "booking_request", title: "hidden", message: "m" }))!;
      const alert = (await service().createAndSendNotification({ userId: user, type: "security_alert", title: "alert", message: "m" }))!;
      // One socket delivers in order: once the critical one is here, the hidden one would have been too.
      expect((await live.next("notification")).notification.id).toBe(alert.id);
      expect(live.messages.some((m) => m.type === "notification" && m.notification.id === hidden.id)).toBe(false);

      const page = await call<Listed>("GET", "/api/notifications", { token });
      expect(page.body.notifications.map((n: { id: string }) => n.id)).toEqual([alert.id]);
      expect([page.body.total, page.body.unreadCount]).toEqual([1, 1]);
      expect((await call<{ count: number }>("GET", "/api/notifications/unread-count", { token })).body.count).toBe(1);
      expect((await service().getNotifications(user)).total).toBe(1);
      expect(await service().getUnreadCount(user)).toBe(1);

      // A reconnect's sync (no cursor: everything not acknowledged) carries only the critical one.
      const again = await connect(h.wsUrl, token);
      try {
        expect(await again.next("unread_count")).toMatchObject({ count: 1 });
        const sync = await again.next("sync");
        expect(sync.notifications.map((n: { id: string }) => n.id)).toEqual([alert.id]);
      } finally {
        await again.close();
      }

      // Read-all reads what the user could see; the hidden one stays unread for the digest.
      expect((await call<{ updated: number }>("POST", "/api/notifications/read-all", { token })).body.updated).toBe(1);
      const [row] = await h.database.query<{ read: boolean }>("SELECT read FROM notifications WHERE id = $1", [hidden.id]);
      expect(row!.read).toBe(false);
      const queued = await h.database.query<{ channel: string }>("SELECT channel FROM notification_queue WHERE notification_id = $1", [hidden.id]);
      expect(queued.map((q) => q.channel)).toEqual(["email"]);
    } finally {
      await live.close();
    }
  });

  it("a broadcast to a user with in-app off is not listed or counted for them", async () => {
    await h.herald.users.upsert({ id: "off-bc-1" });
    await h.herald.users.upsert({ id: "off-bc-2" });
    await service().preferences.update("off-bc-1", { inAppEnabled: false });
    await service().broadcast({ type: "platform_update", title: "news", message: "m" });
    expect((await service().getNotifications("off-bc-1")).total).toBe(0);
    expect(await service().getUnreadCount("off-bc-1")).toBe(0);
    expect((await service().getNotifications("off-bc-2")).total).toBe(1);
  });
});

describe("the unread badge after creations", () => {
  it("is the count on connect plus one per live unread notification, and no unread_count follows a creation", async () => {
    const user = "badge-user";
    await service().createAndSendNotification({ userId: user, type: "new_message", title: "before", message: "m" });
    await service().preferences.update(user, { inAppEnabled: false });
    const ws = await connect(h.wsUrl, await h.tokenFor(user));
    try {
      const start = (await ws.next("unread_count")).count;
      await service().createAndSendNotification({ userId: user, type: "new_message", title: "hidden", message: "m" });
      await service().preferences.update(user, { inAppEnabled: true });
      await service().createAndSendNotification({ userId: user, type: "new_message", title: "one", message: "m" });
      await service().createAndSendNotification({ userId: user, type: "payment_received", title: "two", message: "m" });
      const got = [await ws.next("notification"), await ws.next("notification")];
      expect(got.map((m) => m.notification.title)).toEqual(["one", "two"]);
      // A pong answers after everything sent before it: nothing else was pushed by the creations.
      ws.send({ type: "ping" });
      await ws.next("pong");
      expect(ws.messages.filter((m) => m.type === "unread_count" || m.type === "notification")).toEqual([]);
      const live = got.filter((m) => !m.notification.read).length;
      expect(start + live).toBe(await service().getUnreadCount(user));
    } finally {
      await ws.close();
    }
  });
});
