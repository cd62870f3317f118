/**
 * Per-device sync (delivery rule 4, issue #16.1): each device resumes from its own
 * cursor, so an ack from one device never hides a notification from another
 * that was offline, with or without a cursor on reconnect.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { HeraldClient, type DeviceStorage, type WebSocketConstructor } from "../../src/client/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";
import type { AnalyticsEventInput } from "../../src/analytics/events.js";
import { silentLogger, systemClock } from "../../src/observability/index.js";
import { DeliveryLog } from "../../src/realtime/delivery-log.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { Probe, eventually, upgradeStatus } from "./helpers.js";

let h: TestHerald;

beforeAll(async () => {
  h = await startTestHerald({ realtime: { maxDevicesPerUser: 3 } });
});
afterAll(async () => {
  await h?.stop();
});

const create = (userId: string, title: string) =>
  h.herald.notifications.createAndSendNotification({ userId, type: "new_message", title, message: `${title} body` }) as Promise<NotificationDto>;

const open = async (userId: string, device: string | undefined, cursor?: number) => {
  const url = new URL(h.wsUrl);
  if (device) url.searchParams.set("device", device);
  return Probe.open(url.toString(), await h.tokenFor(userId), { cursor });
};

const deviceCursor = async (userId: string, device: string) =>
  (await h.database.query<{ s: string }>("SELECT acked_seq AS s FROM device_cursors WHERE user_id = $1 AND device_id = $2", [userId, device]))[0]?.s;

const status = async (id: string) => (await h.database.query<{ s: string }>("SELECT delivery_status AS s FROM notifications WHERE id = $1", [id]))[0]?.s;

describe("per-device sync", () => {
  it("three devices with interleaved acks: each offline device gets what it missed, with its cursor or from its stored cursor", async () => {
    const u = "u-three-devices";
    const [phone, laptop, tablet] = await Promise.all([open(u, "phone"), open(u, "laptop"), open(u, "tablet")]);
    await Promise.all([phone.next("sync"), laptop.next("sync"), tablet.next("sync")]);
    const x0 = await create(u, "x0");
    for (const p of [phone, laptop, tablet]) {
      await p.next("notification", (m) => m.notification.id === x0.id);
      p.send({ type: "ack", id: x0.id });
    }
    await Promise.all([phone, laptop, tablet].map((p) => p.roundTrip()));
    await h.herald.realtime.flushDeliveryLog();
    for (const d of ["phone", "laptop", "tablet"]) expect(Number(await deviceCursor(u, d))).toBe(x0.seq);

    await Promise.all([phone.close(), tablet.close()]);
    const x1 = await create(u, "x1");
    await laptop.next("notification", (m) => m.notification.id === x1.id);
    laptop.send({ type: "ack", id: x1.id });
    const x2 = await create(u, "x2");
    await laptop.next("notification", (m) => m.notification.id === x2.id);
    await laptop.roundTrip();
    await h.herald.realtime.flushDeliveryLog();
    expect(await status(x1.id)).toBe("delivered");

    // The phone comes back with its cursor: x1 (acked by the laptop) is still its to receive.
    const phone2 = await open(u, "phone", x0.seq);
    expect((await phone2.next("sync")).notifications.map((n) => n.id)).toEqual([x1.id, x2.id]);
    phone2.send({ type: "ack", id: x2.id });
    await phone2.roundTrip();
    await h.herald.realtime.flushDeliveryLog();
    expect(await status(x2.id)).toBe("delivered");

    // The tablet comes back without a cursor: its own acknowledged cursor (x0) stands in.
    const tablet2 = await open(u, "tablet");
    expect((await tablet2.next("sync")).notifications.map((n) => n.id)).toEqual([x1.id, x2.id]);
    // Each device's cursor moved with its own acks only.
    expect(Number(await deviceCursor(u, "phone"))).toBe(x2.seq);
    expect(Number(await deviceCursor(u, "tablet"))).toBe(x0.seq);

    // A brand-new device and an old client without a device id get what nobody acknowledged: nothing here.
    const fresh = await open(u, "fresh");
    const legacy = await open(u, undefined);
    expect((await fresh.next("sync")).notifications).toEqual([]);
    expect((await legacy.next("sync")).notifications).toEqual([]);
    await Promise.all([phone2, laptop, tablet2, fresh, legacy].map((p) => p.close()));
  });

  it("the first ack makes a notification delivered (one analytics event); later acks from other devices move only their cursors", async () => {
    const u = "u-delivered-once";
    const x = await create(u, "x");
    const events: AnalyticsEventInput[] = [];
    const log = new DeliveryLog({ database: h.database, analytics: { record: (e) => events.push(e) }, clock: systemClock, logger: silentLogger });
    log.markDelivered(x.id, u, "a");
    log.markDelivered(x.id, u, "b");
    await log.flush();
    log.markDelivered(x.id, u, "c");
    await log.flush();
    expect(events.filter((e) => e.eventType === "delivered").map((e) => e.notificationId)).toEqual([x.id]);
    for (const d of ["a", "b", "c"]) expect(Number(await deviceCursor(u, d))).toBe(x.seq);
  });

  it("keeps at most maxDevicesPerUser device cursors per user, dropping the least recently seen", async () => {
    const u = "u-many-devices";
    const x = await create(u, "x");
    for (const d of ["d1", "d2", "d3", "d4", "d5"]) {
      const p = await open(u, d);
      await p.next("sync");
      // Stored by the sync itself, before the page is sent (an ack would move it later, in a batched write).
      expect(Number(await deviceCursor(u, d))).toBe(x.seq - 1);
      await p.close();
    }
    const rows = await h.database.query<{ d: string }>("SELECT device_id AS d FROM device_cursors WHERE user_id = $1 ORDER BY device_id", [u]);
    expect(rows.map((r) => r.d)).toEqual(["d3", "d4", "d5"]);
  });

  it("a device that connected to an empty inbox and comes back without a cursor gets what another device acked meanwhile", async () => {
    const u = "u-empty-inbox";
    const [phone, laptop] = await Promise.all([open(u, "phone"), open(u, "laptop")]);
    await Promise.all([phone.next("sync"), laptop.next("sync")]);
    // Stored by the sync itself, before the (empty) page is sent.
    expect(await deviceCursor(u, "phone")).toBeDefined();
    await phone.close();
    const x = await create(u, "x");
    await laptop.next("notification", (m) => m.notification.id === x.id);
    laptop.send({ type: "ack", id: x.id });
    await laptop.roundTrip();
    await h.herald.realtime.flushDeliveryLog();
    expect(await status(x.id)).toBe("delivered");
    const back = await open(u, "phone");
    expect((await back.next("sync")).notifications.map((n) => n.id)).toEqual([x.id]);
    await Promise.all([back.close(), laptop.close()]);
  });

  it("refuses a malformed device id with 400 before the upgrade", async () => {
    const url = new URL(h.wsUrl);
    url.searchParams.set("token", await h.tokenFor("u-bad-device"));
    url.searchParams.set("device", "not a device id!");
    expect(await upgradeStatus(url.toString())).toBe(400);
  });

  it("the SDK: a client offline while another device acked gets the notification on reconnect, and a restart with the same storage resumes", async () => {
    const u = "u-sdk-devices";
    const token = await h.tokenFor(u);
    const store = new Map<string, string>();
    const storage: DeviceStorage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => void store.set(k, v) };
    const sockets: WebSocket[] = [];
    class Tracking extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    }
    // The phone's reconnect waits on `gate`, so the laptop's ack surely lands while it is offline.
    let gate: Promise<void> | undefined;
    let openGate: () => void = () => undefined;
    const getToken = async () => {
      await gate;
      return token;
    };
    const phone = new HeraldClient({ url: h.wsUrl, getToken, WebSocket: Tracking as unknown as WebSocketConstructor, storage, initialDelayMs: 1, maxDelayMs: 5 });
    const laptop = new HeraldClient({ url: h.wsUrl, token, WebSocket: WebSocket as unknown as WebSocketConstructor, deviceId: "laptop" });
    const seen: string[] = [];
    phone.on("notification", (n) => seen.push(n.id));
    const first = [phone.once("sync"), laptop.once("sync")];
    phone.connect();
    laptop.connect();
    await Promise.all(first);
    expect(store.get("herald.deviceId")).toBe(phone.deviceId);

    gate = new Promise<void>((resolve) => (openGate = resolve));
    const lost = phone.once("disconnect");
    sockets[0]!.terminate();
    await lost;
    const laptopGot = new Promise<NotificationDto>((resolve) => laptop.on("notification", (n) => resolve(n)));
    const x = await create(u, "while the phone was away");
    await laptopGot; // the laptop acks it (the SDK acks everything it receives)
    await eventually(() => status(x.id), (s) => s === "delivered");
    const back = phone.once("sync");
    openGate();
    await back;
    await eventually(() => seen, (ids) => ids.includes(x.id));
    phone.close();

    // A new process with the same storage: same device, no cursor; the server's device cursor resumes it.
    await eventually(() => deviceCursor(u, phone.deviceId), (s) => Number(s) === x.seq);
    const y = await create(u, "while no phone ran");
    const restarted = new HeraldClient({ url: h.wsUrl, token, WebSocket: WebSocket as unknown as WebSocketConstructor, storage });
    expect(restarted.deviceId).toBe(phone.deviceId);
    const replayed: string[] = [];
    restarted.on("notification", (n) => replayed.push(n.id));
    const synced = restarted.once("sync");
    restarted.connect();
    await synced;
    expect(replayed).toEqual([y.id]);
    restarted.close();
    laptop.close();
  });
});
