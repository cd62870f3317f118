/**
 * Attacks on the batched sent marks (worker.ts SentMarks, queue-sql.ts
 * markSent): concurrent workers on overlapping notifications, the realtime
 * delivery log's MARK_DELIVERED on the same notifications, a lease taken over
 * mid-batch, a mark statement that fails or hangs, bundles mixed with singles
 * and large batches.
 */
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnalyticsEventInput } from "../../src/analytics/events.js";
import { type Channel, type ChannelJob, DeliveryWorker } from "../../src/channels/index.js";
import type { Database } from "../../src/db/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";
import { DeliveryLog } from "../../src/realtime/delivery-log.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";
import { blockedBy, hold, settledOrWaitingOn, waitingFor } from "../support/pg-locks.js";
import { countingMarks, enqueue, makeWorker, queueRows } from "./harness.js";
import { seedNotification, seedUser } from "./support.js";

const start = new Date("2030-01-07T10:00:00Z");
const smsNow = { inApp: true, outOfApp: { sms: { mode: "now" as const } } };
const both = { inApp: true, outOfApp: { sms: { mode: "now" as const }, email: { mode: "now" as const } } };

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase({ poolSize: 12 });
  for (let i = 0; i < 8; i++) await seedUser(db, { id: `att-${i}`, phone: "+15550003333", email: `att-${i}@example.test` });
});
afterAll(async () => db?.cleanup());

/** A pino logger whose warn/error lines are kept. */
function capturingLogger() {
  const lines: { level: number; msg: string; err?: { code?: string; message?: string } }[] = [];
  const logger = pino({ level: "warn" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

/** A channel whose every send is recorded and answers after `delay()` resolves. */
function recordingChannel(name: "sms" | "email", sent: string[], delay: (job: ChannelJob) => Promise<void> = () => Promise.resolve()): Channel {
  return {
    name,
    async send(job: ChannelJob) {
      await delay(job);
      sent.push(`${job.queueId}`);
    },
  } as Channel;
}

async function clearQueue() {
  await db.query("DELETE FROM notification_queue");
  await db.query("DELETE FROM notifications");
}

const statusOf = async (id: string) => (await db.query<{ delivery_status: string }>("SELECT delivery_status FROM notifications WHERE id = $1", [id]))[0]!.delivery_status;

describe(`sent marks under attack (${usingPostgres ? "postgres" : "pglite"})`, () => {
  it("a lease taken over mid-batch: the first worker neither marks the row nor counts it (analytics, metrics); the taker's mark wins", async () => {
    await clearQueue();
    const clock = new ManualClock(start);
    const n1 = await seedNotification(db, { userId: "att-0", title: "kept" });
    const n2 = await seedNotification(db, { userId: "att-1", title: "taken over" });
    await enqueue(db, { id: n1, userId: "att-0" }, smsNow, clock.now());
    await enqueue(db, { id: n2, userId: "att-1" }, smsNow, clock.now());
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered = 0;
    let bothIn!: () => void;
    const bothEntered = new Promise<void>((r) => (bothIn = r));
    const sent1: string[] = [];
    const events1: AnalyticsEventInput[] = [];
    const registry1 = new Registry();
    const { worker: w1 } = makeWorker(
      db,
      {
        sms: recordingChannel("sms", sent1, async () => {
          if (++entered === 2) bothIn();
          await gate;
        }),
      },
      clock,
      { workerId: "worker-1", registry: registry1, analytics: { record: (e) => events1.push(e) }, leaseMs: 60_000 },
    );
    const round1 = w1.runOnce();
    await bothEntered;
    // worker-1's lease on n2's row ends (n1's holds), and worker-2 takes n2's row over and sends it.
    const [r2held] = await queueRows(db, n2);
    await db.query("UPDATE notification_queue SET locked_until = $2 WHERE id = $1", [r2held!.id, new Date(start.getTime() - 1)]);
    const sent2: string[] = [];
    const events2: AnalyticsEventInput[] = [];
    const registry2 = new Registry();
    const { worker: w2 } = makeWorker(db, { sms: recordingChannel("sms", sent2) }, clock, {
      workerId: "worker-2",
      registry: registry2,
      analytics: { record: (e) => events2.push(e) },
    });
    expect(await w2.runOnce()).toBe(1);
    const [r2] = await queueRows(db, n2);
    expect(sent2).toEqual([r2!.id]);
    const [{ sent_at: takerSentAt }] = (await db.query<{ sent_at: Date }>("SELECT sent_at FROM notification_queue WHERE id = $1", [r2!.id])) as [{ sent_at: Date }];
    clock.advance(5_000);
    release();
    expect(await round1).toBe(2);

    expect((await queueRows(db, n1))[0]).toMatchObject({ status: "sent" });
    expect((await queueRows(db, n2))[0]).toMatchObject({ status: "sent" });
    const [{ sent_at: after }] = (await db.query<{ sent_at: Date }>("SELECT sent_at FROM notification_queue WHERE id = $1", [r2!.id])) as [{ sent_at: Date }];
    expect(after.getTime()).toBe(takerSentAt.getTime());
    // worker-1 counts only the row it still held.
    expect(events1.filter((e) => e.eventType === "sent").map((e) => e.notificationId)).toEqual([n1]);
    expect(events2.filter((e) => e.eventType === "sent").map((e) => e.notificationId)).toEqual([n2]);
    const sends = async (r: Registry) => (await r.getSingleMetric("herald_channel_sends_total")!.get()).values.reduce((s, v) => s + v.value, 0);
    expect(await sends(registry1)).toBe(1);
    expect(await sends(registry2)).toBe(1);
  });

  it("the mark statement fails: rows stay leased and unmarked, the worker keeps running, and after the lease they are sent again and marked", async () => {
    await clearQueue();
    const clock = new ManualClock(start);
    let failNext = 1;
    const failing = Object.create(db) as Database;
    failing.query = ((text: string, params?: unknown[]) => {
      if (text.includes("WITH row AS") && failNext > 0) {
        failNext--;
        return Promise.reject(Object.assign(new Error("Connection terminated unexpectedly"), { code: "57P01" }));
      }
      return db.query(text, params);
    }) as Database["query"];
    const ids = [await seedNotification(db, { userId: "att-2" }), await seedNotification(db, { userId: "att-3" })];
    for (const [i, id] of ids.entries()) await enqueue(db, { id, userId: `att-${i + 2}` }, smsNow, clock.now());
    const sent: string[] = [];
    const { logger, lines } = capturingLogger();
    const worker = new DeliveryWorker({
      database: failing,
      channels: { sms: recordingChannel("sms", sent) },
      clock,
      logger,
      workerId: "worker-1",
      leaseMs: 60_000,
      pollIntervalMs: 10,
    });
    worker.start();
    try {
      await worker.whenIdle();
      // Both sent once, one statement failed for both: both rows still leased to worker-1, notifications pending.
      expect(sent).toHaveLength(2);
      for (const id of ids) {
        expect((await queueRows(db, id))[0]).toMatchObject({ status: "processing" });
        expect(await statusOf(id)).toBe("pending");
      }
      expect(lines.filter((l) => l.msg === "delivery bookkeeping failed")).toHaveLength(2);
      expect(worker.status).toBe("active");
      clock.advance(61_000);
      worker.notify();
      // The worker is idle again only once both rows were sent and marked.
      for (;;) {
        await worker.whenIdle();
        if ((await db.query("SELECT 1 FROM notification_queue WHERE status <> 'sent'")).length === 0) break;
        worker.notify();
      }
      expect(sent).toHaveLength(4);
      expect(new Set(sent).size).toBe(2);
      for (const id of ids) {
        expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 2 });
        expect(await statusOf(id)).toBe("sent");
      }
    } finally {
      await worker.stop();
    }
  });

  it("stop() resolves once a mark in flight has been written", async () => {
    await clearQueue();
    const clock = new ManualClock(start);
    let releaseMark!: () => void;
    const markGate = new Promise<void>((r) => (releaseMark = r));
    let markEntered!: () => void;
    const inMark = new Promise<void>((r) => (markEntered = r));
    const gated = Object.create(db) as Database;
    gated.query = (async (text: string, params?: unknown[]) => {
      if (text.includes("WITH row AS")) {
        markEntered();
        await markGate;
      }
      return db.query(text, params);
    }) as Database["query"];
    const id = await seedNotification(db, { userId: "att-4" });
    await enqueue(db, { id, userId: "att-4" }, smsNow, clock.now());
    const sent: string[] = [];
    const worker = new DeliveryWorker({ database: gated, channels: { sms: recordingChannel("sms", sent) }, clock, logger: silentLogger, workerId: "worker-1", pollIntervalMs: 10 });
    worker.start();
    await inMark;
    let stopped = false;
    const stopping = worker.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(false);
    releaseMark();
    await stopping;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent" });
    expect(await statusOf(id)).toBe("sent");
  });

  it("two workers drain e-mail and SMS rows of the same notifications (singles, null payloads, bundles) at once: each sent once, all marked, no error", async () => {
    await clearQueue();
    const clock = new ManualClock(start);
    const hourAt = new Date(start.getTime() - 1000);
    const notifications: string[] = [];
    for (let i = 0; i < 160; i++) {
      const userId = `att-${i % 8}`;
      const id = await seedNotification(db, { userId, title: `n${i}` });
      notifications.push(id);
      if (i % 5 === 0) {
        // Hourly bundles on both channels: every user's fifth notifications go in one bundle a channel.
        await enqueue(db, { id, userId }, { inApp: true, outOfApp: { sms: { mode: "hourly", at: hourAt }, email: { mode: "hourly", at: hourAt } } }, clock.now());
      } else await enqueue(db, { id, userId }, both, clock.now());
    }
    // Some singles with no payload at all (rows written before payloads existed).
    await db.query("UPDATE notification_queue SET payload = NULL WHERE id IN (SELECT id FROM notification_queue WHERE status = 'pending' AND payload->>'mode' = 'single' ORDER BY id LIMIT 40)");
    const expected = (await db.query<{ id: string }>("SELECT id FROM notification_queue WHERE status = 'pending'")).map((r) => r.id);
    const sends: string[] = [];
    const jitter = () => new Promise<void>((r) => (Math.random() < 0.5 ? setImmediate(r) : setTimeout(r, Math.floor(Math.random() * 3))));
    const logs = capturingLogger();
    const workers = ["worker-a", "worker-b"].map(
      (workerId) =>
        new DeliveryWorker({
          database: db,
          channels: { sms: recordingChannel("sms", sends, jitter), email: recordingChannel("email", sends, jitter) },
          clock,
          logger: logs.logger,
          workerId,
          pollIntervalMs: 5,
          batchSize: 20,
        }),
    );
    for (const w of workers) w.start();
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        await Promise.all(workers.map((w) => w.whenIdle()));
        const [{ n }] = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM notification_queue WHERE status NOT IN ('sent')")) as [{ n: number }];
        if (n === 0 || Date.now() > deadline) break;
        for (const w of workers) w.notify();
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    expect(logs.lines.map((l) => `${l.msg} ${l.err?.code ?? ""} ${l.err?.message ?? ""}`)).toEqual([]);
    expect(sends.sort()).toEqual([...expected].sort());
    expect(await db.query("SELECT id, status FROM notification_queue WHERE status <> 'sent'")).toEqual([]);
    expect(await db.query("SELECT id, delivery_status FROM notifications WHERE delivery_status <> 'sent'")).toEqual([]);
  }, 90_000);

  it("hundreds of sends finishing in one turn are recorded by one statement", async () => {
    await clearQueue();
    const clock = new ManualClock(start);
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) {
      const id = await seedNotification(db, { userId: `att-${i % 8}`, title: `bulk ${i}` });
      ids.push(id);
    }
    for (const [i, id] of ids.entries()) await enqueue(db, { id, userId: `att-${i % 8}` }, i % 3 === 0 ? both : smsNow, clock.now());
    const rows = await db.query<{ id: string }>("SELECT id FROM notification_queue");
    const { database: counted, marks } = countingMarks(db);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered = 0;
    const sent: string[] = [];
    const { worker } = makeWorker(
      counted,
      {
        sms: recordingChannel("sms", sent, async () => {
          if (++entered === rows.length) release();
          await gate;
        }),
        email: recordingChannel("email", sent, async () => {
          if (++entered === rows.length) release();
          await gate;
        }),
      },
      clock,
      { batchSize: rows.length },
    );
    expect(await worker.runOnce()).toBe(rows.length);
    expect(marks()).toBe(1);
    expect(await db.query("SELECT id FROM notification_queue WHERE status <> 'sent'")).toEqual([]);
    expect(await db.query("SELECT id FROM notifications WHERE delivery_status <> 'sent'")).toEqual([]);
  }, 60_000);
});

describe.skipIf(!usingPostgres)("sent marks against the realtime delivery log (postgres)", () => {
  it("a worker's mark and the delivery log's MARK_DELIVERED on the same notifications do not deadlock", async () => {
    await clearQueue();
    const clock = new ManualClock(start);
    // Three notifications of one user with ids a < b < c, stored c, b, a (heap order = the acks' arrival order).
    const ids = ["00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b", "00000000-0000-4000-8000-00000000000c"];
    for (const id of [...ids].reverse()) {
      await db.query("INSERT INTO notifications (id, user_id, type, priority, title, message) VALUES ($1, 'att-5', 'new_message', 'high', 'x', 'y')", [id]);
    }
    const [a, b, c] = ids as [string, string, string];
    // E-mail rows for a and c: one worker round sends both and records them with one statement (locks a, then c).
    await enqueue(db, { id: a, userId: "att-5" }, { inApp: true, outOfApp: { email: { mode: "now" } } }, clock.now());
    await enqueue(db, { id: c, userId: "att-5" }, { inApp: true, outOfApp: { email: { mode: "now" } } }, clock.now());
    const sent: string[] = [];
    const { logger, lines } = capturingLogger();
    const worker = new DeliveryWorker({ database: db, channels: { email: recordingChannel("email", sent) }, clock, logger, workerId: "worker-1", leaseMs: 60_000 });
    const logEvents: AnalyticsEventInput[] = [];
    const log = new DeliveryLog({ database: db, analytics: { record: (e) => logEvents.push(e) }, clock, logger, intervalMs: 60_000 });

    // The test holds b, so the delivery log's statement (acks c, b, a) locks c and waits.
    const held = await hold(db);
    await held.c.query("BEGIN");
    await held.c.query("SELECT id FROM notifications WHERE id = $1 FOR UPDATE", [b]);
    for (const id of [c, b, a]) log.markDelivered(id, "att-5");
    const flushed = log.flush();
    const logPid = await blockedBy(db, held.c);
    // The worker's mark locks a and waits for c (held by the delivery log's statement).
    const round = worker.runOnce();
    expect(await settledOrWaitingOn(db, round, logPid)).toBe("waiting");
    // b is let go: the delivery log's statement goes on to a, which the worker's mark holds.
    await held.c.query("COMMIT");
    held.release();
    await held.done;
    await round;
    await flushed;
    await log.flush();

    expect(lines.map((l) => `${l.msg} ${l.err?.code ?? ""} ${l.err?.message ?? ""}`)).toEqual([]);
    expect(sent).toHaveLength(2);
    for (const id of [a, c]) expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent" });
    for (const id of ids) expect(await statusOf(id)).toBe("delivered");
  }, 30_000);

  it("a mark that loses a deadlock to another writer (locking in another order) runs again instead of leaving its rows to be sent twice", async () => {
    await clearQueue();
    const clock = new ManualClock(start);
    const [a, c] = ["00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000c1"] as const;
    for (const id of [a, c]) {
      await db.query("INSERT INTO notifications (id, user_id, type, priority, title, message) VALUES ($1, 'att-6', 'new_message', 'high', 'x', 'y')", [id]);
      await enqueue(db, { id, userId: "att-6" }, { inApp: true, outOfApp: { email: { mode: "now" } } }, clock.now());
    }
    const sent: string[] = [];
    const { logger, lines } = capturingLogger();
    const worker = new DeliveryWorker({ database: db, channels: { email: recordingChannel("email", sent) }, clock, logger, workerId: "worker-1", leaseMs: 60_000 });

    // Another writer locks c, then a: the reverse of the mark's id order. Its deadlock check waits 10 s, so
    // the mark's backend (1 s, the default) finds the cycle first and its statement is the one cancelled.
    const other = await hold(db);
    await other.c.query("BEGIN");
    await other.c.query("SET LOCAL deadlock_timeout = '10s'");
    await other.c.query("SELECT id FROM notifications WHERE id = $1 FOR UPDATE", [c]);
    const round = worker.runOnce();
    // The mark has locked a and waits for c.
    await waitingFor(db, other.c);
    // Waits for a until the mark's statement is cancelled; the mark's next run then waits for a.
    await other.c.query("SELECT id FROM notifications WHERE id = $1 FOR UPDATE", [a]);
    await other.c.query("COMMIT");
    other.release();
    await other.done;
    await round;

    expect(lines.map((l) => `${l.msg} ${l.err?.code ?? ""}`)).toEqual([]);
    expect(sent).toHaveLength(2);
    for (const id of [a, c]) {
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent" });
      expect(await statusOf(id)).toBe("sent");
    }
  }, 30_000);
});
