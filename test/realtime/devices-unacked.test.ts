/**
 * Per-device sync when a device's acks never reach the server (the socket
 * died before the ack was flushed, an instance was killed, a client that does
 * not ack): the device is still not a brand-new one. A notification that
 * another device acknowledged while it was away must reach it on a restart
 * without a cursor (SPEC 6.4: an ack from the laptop never hides a
 * notification from the phone).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NotificationDto } from "../../src/notifications/types.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { Probe, eventually } from "./helpers.js";

let h: TestHerald;
beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(async () => {
  await h?.stop();
});

const create = (userId: string, title: string) =>
  h.herald.notifications.createAndSendNotification({ userId, type: "new_message", title, message: `${title} body` }) as Promise<NotificationDto>;

const open = async (userId: string, device: string) => {
  const url = new URL(h.wsUrl);
  url.searchParams.set("device", device);
  return Probe.open(url.toString(), await h.tokenFor(userId));
};

const status = async (id: string) => (await h.database.query<{ s: string }>("SELECT delivery_status AS s FROM notifications WHERE id = $1", [id]))[0]?.s;
const sessionsClosed = async (userId: string) =>
  (await h.database.query<{ n: number }>("SELECT count(*)::int AS n FROM websocket_sessions WHERE user_id = $1 AND disconnected_at IS NOT NULL", [userId]))[0]!.n;

describe("a device whose acks never arrived", () => {
  it("gets, on a restart without a cursor, what it was synced and what another device acked while it was away", async () => {
    const u = "u-unacked-phone";
    const w = await create(u, "w");
    // The phone is synced [w] but its ack never reaches the server (it dies first).
    const phone = await open(u, "phone");
    expect((await phone.next("sync")).notifications.map((n) => n.id)).toEqual([w.id]);
    await phone.close();
    // Everything the phone's connection wrote (its session close comes after its marks) is stored.
    await eventually(() => sessionsClosed(u), (n) => n === 1);

    const x = await create(u, "x");
    const laptop = await open(u, "laptop");
    const page = await laptop.next("sync");
    expect(page.notifications.map((n) => n.id)).toEqual([w.id, x.id]);
    laptop.send({ type: "ack", ids: [w.id, x.id] });
    await eventually(() => Promise.all([status(w.id), status(x.id)]), (s) => s.every((v) => v === "delivered"));

    // The phone restarts (no cursor, same device id): w and x were never acknowledged by it.
    const back = await open(u, "phone");
    expect((await back.next("sync")).notifications.map((n) => n.id)).toEqual([w.id, x.id]);
    await Promise.all([back.close(), laptop.close()]);
  });

  it("a device that never acks what it is pushed live still gets it after another device acked it", async () => {
    const u = "u-never-acks";
    const w = await create(u, "w");
    const silent = await open(u, "silent");
    expect((await silent.next("sync")).notifications.map((n) => n.id)).toEqual([w.id]);
    const laptop = await open(u, "laptop");
    await laptop.next("sync");
    const x = await create(u, "x");
    await silent.next("notification", (m) => m.notification.id === x.id);
    await laptop.next("notification", (m) => m.notification.id === x.id);
    await silent.close();
    laptop.send({ type: "ack", ids: [w.id, x.id] });
    await eventually(() => Promise.all([status(w.id), status(x.id)]), (s) => s.every((v) => v === "delivered"));
    const back = await open(u, "silent");
    expect((await back.next("sync")).notifications.map((n) => n.id)).toEqual([w.id, x.id]);
    await Promise.all([back.close(), laptop.close()]);
  });
});
