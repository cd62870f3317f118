/**
 * Two Herald instances on different ports sharing one database and one bus:
 * the same tests over an in-process MemoryBus and over real Redis.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bus, MemoryBus, RedisBus, createPresence } from "../../src/bus/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { usingRedis } from "../support/database.js";
import { LOUD, Probe, broadcastBase, eventually, insertNotification } from "./helpers.js";

if (!usingRedis) console.warn("[realtime cluster] REDIS_URL is unset: the Redis variants are skipped (the MemoryBus variants run).");

const modes = [
  { name: "a shared MemoryBus", redis: false },
  { name: "real Redis", redis: true },
] as const;

for (const mode of modes) {
  describe.skipIf(mode.redis && !usingRedis)(`two instances over ${mode.name}`, () => {
    let a: TestHerald;
    let b: TestHerald;
    let sharedBus: Bus | undefined;

    beforeAll(async () => {
      const busPrefix = `herald-cluster-${randomUUID()}:`;
      sharedBus = mode.redis ? undefined : new MemoryBus();
      const common = mode.redis ? { busPrefix } : { bus: sharedBus };
      a = await startTestHerald(common);
      b = await startTestHerald({ ...common, sharedDatabase: a.database });
    });
    afterAll(async () => {
      await b?.stop();
      await a?.stop();
      await sharedBus?.close();
    });

    it("listens on two different ports", () => {
      expect(new URL(a.baseUrl).port).not.toBe(new URL(b.baseUrl).port);
    });

    it("a notification created on A reaches the user's socket on B (end to end through NotificationService)", async () => {
      const onB = await Probe.open(b.wsUrl, await b.tokenFor("u-x"));
      await onB.next("sync");
      const n = (await a.herald.notifications.createAndSendNotification({ userId: "u-x", type: "booking_request", title: "from A", message: "m" })) as NotificationDto;
      const got = await onB.next("notification", (m) => m.notification.id === n.id);
      expect(got.notification.title).toBe("from A");
      // B pushed it, so B marks it sent.
      await b.herald.realtime.flushDeliveryLog();
      expect((await a.database.query<{ s: string }>("SELECT delivery_status AS s FROM notifications WHERE id = $1", [n.id]))[0]?.s).toBe("sent");
      await onB.close();
    });

    it("a read on B reaches the same user's socket on A", async () => {
      const token = await a.tokenFor("u-y");
      const onA = await Probe.open(a.wsUrl, token);
      const onB = await Probe.open(b.wsUrl, token);
      await Promise.all([onA.next("sync"), onB.next("sync")]);
      const n = await insertNotification(a.database, "u-y");
      onB.send({ type: "read", id: n.id });
      expect(await onA.next("notification_updated", (m) => m.id === n.id)).toMatchObject({ read: true });
      await onA.next("unread_count", (m) => m.count === 0);
      await Promise.all([onA.close(), onB.close()]);
    });

    it("a broadcast published on A reaches recipients on both instances, each with its own id and seq, and nobody else", async () => {
      const [r1, r2, other] = await Promise.all([
        Probe.open(a.wsUrl, await a.tokenFor("u-b1")),
        Probe.open(b.wsUrl, await b.tokenFor("u-b2")),
        Probe.open(b.wsUrl, await b.tokenFor("u-b3")),
      ]);
      await Promise.all([r1, r2, other].map((p) => p.next("sync")));
      const base = broadcastBase({ v: 1 });
      const recipients = [
        { userId: "u-b1", id: randomUUID(), seq: 101, presentation: LOUD },
        { userId: "u-b2", id: randomUUID(), seq: 102, presentation: { ...LOUD, silent: true } },
      ];
      await a.herald.realtime.publishBroadcast(base, recipients);
      const [m1, m2] = await Promise.all([r1.next("notification"), r2.next("notification")]);
      expect(m1.notification).toEqual({ ...base, id: recipients[0]!.id, seq: 101, userId: "u-b1" });
      expect(m2.notification).toEqual({ ...base, id: recipients[1]!.id, seq: 102, userId: "u-b2" });
      expect(m2.presentation.silent).toBe(true);
      // A later message to u-b3 proves the broadcast was not delivered to it before.
      await b.herald.realtime.publishToUser("u-b3", { type: "unread_count", count: 42 });
      await other.next("unread_count", (m) => m.count === 42);
      expect(other.of("notification")).toEqual([]);
      await Promise.all([r1, r2, other].map((p) => p.close()));
    });

    it("three devices on two instances with interleaved acks: each offline device gets what it missed, whoever acked it (#16.1)", async () => {
      const u = "u-devices-cluster";
      const token = await a.tokenFor(u);
      const at = (h: TestHerald, device: string, cursor?: number) => {
        const url = new URL(h.wsUrl);
        url.searchParams.set("device", device);
        return Probe.open(url.toString(), token, { cursor });
      };
      const status = async (id: string) => (await a.database.query<{ s: string }>("SELECT delivery_status AS s FROM notifications WHERE id = $1", [id]))[0]?.s;
      const create = async (title: string) => (await a.herald.notifications.createAndSendNotification({ userId: u, type: "new_message", title, message: "m" })) as NotificationDto;
      const [phone, laptop, tablet] = await Promise.all([at(a, "phone"), at(b, "laptop"), at(a, "tablet")]);
      await Promise.all([phone, laptop, tablet].map((p) => p.next("sync")));
      const x0 = await create("x0");
      for (const p of [phone, laptop, tablet]) {
        await p.next("notification", (m) => m.notification.id === x0.id);
        p.send({ type: "ack", id: x0.id });
      }
      await Promise.all([phone, laptop, tablet].map((p) => p.roundTrip()));
      await Promise.all([a, b].map((h) => h.herald.realtime.flushDeliveryLog()));
      expect((await a.database.query<{ n: number }>("SELECT count(*)::int AS n FROM device_cursors WHERE user_id = $1", [u]))[0]!.n).toBe(3);
      await Promise.all([phone.close(), tablet.close()]);
      // The laptop on B acks x1; the phone will ack x2 after it comes back on B.
      const x1 = await create("x1");
      await laptop.next("notification", (m) => m.notification.id === x1.id);
      laptop.send({ type: "ack", id: x1.id });
      const x2 = await create("x2");
      await laptop.roundTrip();
      await b.herald.realtime.flushDeliveryLog();
      expect(await status(x1.id)).toBe("delivered");

      const phone2 = await at(b, "phone", x0.seq);
      expect((await phone2.next("sync")).notifications.map((n) => n.id)).toEqual([x1.id, x2.id]);
      phone2.send({ type: "ack", id: x2.id });
      await phone2.roundTrip();
      await b.herald.realtime.flushDeliveryLog();
      expect(await status(x2.id)).toBe("delivered");
      // The tablet returns to A without a cursor: its own acknowledged cursor (x0, written on A) stands in.
      const tablet2 = await at(a, "tablet");
      expect((await tablet2.next("sync")).notifications.map((n) => n.id)).toEqual([x1.id, x2.id]);
      // A notification created now reaches all three devices once, on both instances.
      const x3 = await create("x3");
      for (const p of [phone2, laptop, tablet2]) expect((await p.next("notification", (m) => m.notification.id === x3.id)).notification.seq).toBe(x3.seq);
      await Promise.all([phone2, laptop, tablet2].map((p) => p.close()));
    });

    it("counts connections and providers cluster-wide on both instances", async () => {
      // Earlier tests closed their sockets; wait until every instance has heard.
      for (const h of [a, b]) await eventually(() => h.herald.realtime.getConnectedClientsCount(), (n) => n === 0);
      const base = 0;
      const probes = [
        await Probe.open(a.wsUrl, await a.tokenFor("u-c1")),
        await Probe.open(b.wsUrl, await b.tokenFor("u-c2")),
        await Probe.open(b.wsUrl, await b.tokenFor("u-c2")),
      ];
      await Promise.all(probes.map((p) => p.next("sync")));
      for (const h of [a, b]) {
        await eventually(() => h.herald.realtime.getConnectedClientsCount(), (n) => n === base + 3);
        await eventually(() => h.herald.realtime.getConnectedProviders(), (u) => u.includes("u-c1") && u.includes("u-c2"));
      }
      expect(await a.herald.realtime.isOnline("u-c2")).toBe(true);
      expect(a.herald.realtime.getLocalConnectionsCount()).toBe(1);
      await Promise.all(probes.slice(1).map((p) => p.close()));
      await eventually(() => a.herald.realtime.getConnectedProviders(), (u) => !u.includes("u-c2"));
      expect(await a.herald.realtime.isOnline("u-c2")).toBe(false);
      await probes[0]!.close();
    });
  });
}

describe.skipIf(!usingRedis)("Redis presence", () => {
  it("forgets the users of an instance whose presence key expired (a crashed instance)", async () => {
    const prefix = `herald-presence-${randomUUID()}:`;
    const bus = new RedisBus(process.env.REDIS_URL!, prefix);
    const observer = createPresence(bus, "observer", { heartbeatMs: 50 });
    try {
      await observer.start();
      // What a crashed instance leaves behind: its hash and index entry, never refreshed again.
      await bus.client.multi().hset(`${prefix}presence:i:ghost`, { "ghost-user": "2" }).pexpire(`${prefix}presence:i:ghost`, 400).zadd(`${prefix}presence:instances`, Date.now(), "ghost").exec();
      await eventually(() => observer.users(), (u) => u.includes("ghost-user"));
      expect(observer.connectionCount()).toBe(2);
      await eventually(() => observer.users(), (u) => !u.includes("ghost-user"), 3_000);
      expect(observer.connectionCount()).toBe(0);
    } finally {
      await observer.stop();
      await bus.close();
    }
  });
});
