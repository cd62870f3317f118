/**
 * The delivery worker records its successes in batches (queue-sql.ts
 * markSent, worker.ts SentMarks): sends that finish together share one
 * statement, and each row in it is recorded with its own bundle members and
 * notifications while it is being sent (by this claim or a later one), not
 * once another claim settled it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Channel, ChannelJob } from "../../src/channels/index.js";
import { bundleMembers, claimDue, markSent } from "../../src/channels/queue-sql.js";
import { ManualClock } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { countingMarks, drain, enqueue, makeWorker, queueRows } from "./harness.js";
import { seedNotification, seedUser } from "./support.js";

const now = new Date("2030-01-07T10:00:00Z");
const smsNow = { inApp: true, outOfApp: { sms: { mode: "now" as const } } };

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
  for (const id of ["sm-a", "sm-b", "sm-c", "sm-d"]) await seedUser(db, { id, phone: "+15550002222", email: `${id}@example.test` });
});
afterAll(async () => db?.cleanup());

const statusOf = async (id: string) => (await db.query<{ delivery_status: string }>("SELECT delivery_status FROM notifications WHERE id = $1", [id]))[0]!.delivery_status;

describe(`sent marks (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("sends that finish together are recorded by one statement, each row and notification as its own", async () => {
    const clock = new ManualClock(now);
    const sent: string[] = [];
    // Every send answers at once, so the whole claimed batch finishes in the same turns.
    const sms: Channel = {
      name: "sms",
      async send(job: ChannelJob) {
        sent.push(job.notifications[0]!.id);
      },
    };
    const { database, marks } = countingMarks(db);
    const { worker } = makeWorker(database, { sms }, clock, { batchSize: 20 });
    const ids: string[] = [];
    for (const userId of ["sm-a", "sm-b", "sm-c", "sm-d"]) {
      const id = await seedNotification(db, { userId, title: `for ${userId}` });
      await enqueue(db, { id, userId }, smsNow, clock.now());
      ids.push(id);
    }
    // One notification an earlier give-up marked failed: a success moves it to sent (delivery rule 5).
    await db.query("UPDATE notifications SET delivery_status = 'failed' WHERE id = $1", [ids[3]]);

    expect(await drain(worker)).toBe(4);
    expect(sent.sort()).toEqual([...ids].sort());
    for (const id of ids) {
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 1, last_error: null });
      expect(await statusOf(id)).toBe("sent");
    }
    expect(marks()).toBeLessThan(4);
  });

  it("a success is recorded even on a row another claim took over; a row another claim already sent keeps its record; the rest of the statement is recorded", async () => {
    const clock = new ManualClock(now);
    // Three rows of single sends and a bundle of two members, all claimed by worker-1.
    const single = [
      await seedNotification(db, { userId: "sm-a", title: "kept" }),
      await seedNotification(db, { userId: "sm-b", title: "taken over" }),
      await seedNotification(db, { userId: "sm-a", title: "settled" }),
    ];
    await enqueue(db, { id: single[0]!, userId: "sm-a" }, smsNow, clock.now());
    await enqueue(db, { id: single[1]!, userId: "sm-b" }, smsNow, clock.now());
    await enqueue(db, { id: single[2]!, userId: "sm-a" }, smsNow, clock.now());
    const hourAt = new Date("2030-01-07T11:00:00Z");
    const bundled = [await seedNotification(db, { userId: "sm-c", title: "m1" }), await seedNotification(db, { userId: "sm-c", title: "m2" })];
    for (const id of bundled) await enqueue(db, { id, userId: "sm-c" }, { inApp: true, outOfApp: { sms: { mode: "hourly", at: hourAt } } }, clock.now());
    const claimed = await claimDue(db, "worker-1", hourAt, 60_000, 20);
    const row = (notificationId: string) => claimed.find((r) => r.notificationId === notificationId)!;
    const bundle = claimed.find((r) => r.payload?.mode === "bundle" && r.userId === "sm-c")!;
    const members = await bundleMembers(db, bundle);
    expect(members).toHaveLength(2);
    // worker-1's leases ran out: worker-2 claimed the second row (its send in flight) and already sent the third.
    const settledAt = new Date("2030-01-07T10:59:00Z");
    await db.query("UPDATE notification_queue SET locked_by = 'worker-2' WHERE id = $1", [row(single[1]!).id]);
    await db.query("UPDATE notification_queue SET status = 'sent', sent_at = $2, locked_by = NULL, locked_until = NULL WHERE id = $1", [row(single[2]!).id, settledAt]);

    const single1 = (i: number) => ({ id: row(single[i]!).id, payload: { mode: "single" as const, inApp: true as const }, memberIds: [], notificationIds: [single[i]!] });
    const held = await markSent(db, hourAt, [
      single1(0),
      single1(1),
      single1(2),
      { id: bundle.id, payload: { mode: "bundle", at: hourAt.toISOString() }, memberIds: members.map((m) => m.id), notificationIds: bundled },
    ]);

    expect([...held].sort()).toEqual([row(single[0]!).id, row(single[1]!).id, bundle.id].sort());
    for (const i of [0, 1]) {
      expect((await queueRows(db, single[i]))[0]).toMatchObject({ status: "sent" });
      expect(await statusOf(single[i]!)).toBe("sent");
    }
    // The row worker-2 already sent keeps its record, and worker-1's send of it is not counted.
    const [{ sent_at }] = (await db.query<{ sent_at: Date }>("SELECT sent_at FROM notification_queue WHERE id = $1", [row(single[2]!).id])) as [{ sent_at: Date }];
    expect(sent_at.getTime()).toBe(settledAt.getTime());
    for (const id of bundled) {
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent" });
      expect(await statusOf(id)).toBe("sent");
    }
  });
});
