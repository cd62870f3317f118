/**
 * Per-device sync when a device's acks never reach the server (the socket
 * died before the ack was flushed, an instance was killed, a client that does
 * not ack): the device is still not a brand-new one. A notification that
 * another device acknowledged while it was away must reach it on a restart
 * without a cursor (delivery rule 4: an ack from the laptop never hides a
 * notification from the phone).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NotificationDto } from "../../src/protocol/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { Probe, closedOnServer } from "./helpers.js";

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
    await closedOnServer(h.herald.realtime, u);
    expect(await sessionsClosed(u)).toBe(1);

    const x = await create(u, "x");
    const laptop = await open(u, "laptop");
    const page = await laptop.next("sync");
    expect(page.notifications.map((n) => n.id)).toEqual([w.id, x.id]);
    laptop.send({ type: "ack", ids: [w.id, x.id] });
    await laptop.roundTrip();
    await h.herald.realtime.flushDeliveryLog();
    expect([await status(w.id), await status(x.id)]).toEqual(["delivered", "delivered"]);

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
    await laptop.roundTrip();
    await h.herald.realtime.flushDeliveryLog();
    expect([await status(w.id), await status(x.id)]).toEqual(["delivered", "delivered"]);
    const back = await open(u, "silent");
    expect((await back.next("sync")).notifications.map((n) => n.id)).toEqual([w.id, x.id]);
    await Promise.all([back.close(), laptop.close()]);
  });
});

/**
 * Holds the statements whose text starts with a prefix until released: the batched writes of
 * the delivery log land in the order a loaded database gives them.
 */
class HeldStatements {
  private readonly held = new Map<string, { reached: Promise<void>; arrive: () => void; release: () => void; released: Promise<void> }>();

  constructor(database: TestDatabase) {
    database.query = this.gated(database.query.bind(database));
    // On PostgreSQL the delivery log writes through a writer of its own (Database.openWriter): held the same way.
    const openWriter = database.openWriter?.bind(database);
    if (openWriter)
      database.openWriter = (options) => {
        const writer = openWriter(options);
        return writer && { query: this.gated(writer.query.bind(writer)) };
      };
  }

  private gated(query: TestDatabase["query"]): TestDatabase["query"] {
    return (async (text: string, params?: unknown[]) => {
      const gate = [...this.held].find(([prefix]) => text.trimStart().startsWith(prefix))?.[1];
      if (gate) {
        gate.arrive();
        await gate.released;
      }
      return query(text, params);
    }) as TestDatabase["query"];
  }

  /** Holds the statements starting with `prefix` until `release()`; `reached` resolves when the first one waits. */
  hold(prefix: string): { reached: Promise<void>; release: () => void } {
    let arrive!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((r) => (arrive = r));
    const released = new Promise<void>((r) => (release = r));
    const gate = {
      reached,
      arrive,
      released,
      release: () => {
        this.held.delete(prefix);
        release();
      },
    };
    this.held.set(prefix, gate);
    return gate;
  }
}

describe("a device whose position the delivery log has not written yet", () => {
  it("still resumes past what its first (empty) sync showed it, when another device's ack of a later notification was written first", async () => {
    const database = await openTestDatabase();
    const held = new HeldStatements(database);
    const h2 = await startTestHerald({ sharedDatabase: database });
    const u = "u-position-unwritten";
    const open2 = async (device: string | undefined) => {
      const url = new URL(h2.wsUrl);
      if (device) url.searchParams.set("device", device);
      return Probe.open(url.toString(), await h2.tokenFor(u));
    };
    try {
      // A flush is under way (held at its first statement) when the phone syncs: the phone's position and
      // the laptop's later ack are written by the next flush, together, acks before device cursors.
      const opens = held.hold("INSERT INTO websocket_sessions");
      const cursors = held.hold("INSERT INTO device_cursors");
      const laptop = await open2(undefined);
      await laptop.next("sync");
      const underWay = h2.herald.realtime.flushDeliveryLog(); // (or the timer's, if it came first)
      await opens.reached;
      const phone = await open2("phone");
      expect((await phone.next("sync")).notifications).toEqual([]);
      await phone.close();
      const x = (await h2.herald.notifications.createAndSendNotification({ userId: u, type: "new_message", title: "x", message: "x" })) as NotificationDto;
      await laptop.next("notification", (m) => m.notification.id === x.id);
      laptop.send({ type: "ack", id: x.id });
      laptop.send({ type: "ping" });
      await laptop.next("pong"); // the ack is buffered
      opens.release();
      await underWay;
      // x is delivered (the laptop's ack is written); a device cursor written by the delivery log is not yet.
      await h2.herald.realtime.flushDeliveryLog();
      expect((await database.query<{ s: string }>("SELECT delivery_status AS s FROM notifications WHERE id = $1", [x.id]))[0]?.s).toBe("delivered");

      // The phone restarts (same device, no cursor): x came after everything its first sync showed it.
      const back = await open2("phone");
      const page = await back.next("sync");
      cursors.release();
      expect(page.notifications.map((n) => n.id)).toEqual([x.id]);
      await Promise.all([back.close(), laptop.close()]);
    } finally {
      await h2.stop();
      await database.cleanup();
    }
  });
});
