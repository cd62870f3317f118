/**
 * delivery rule 3 applied at release (issue 16.5's "held sends re-checked against
 * preferences"): a held send whose release time comes while the user's
 * CURRENT quiet hours still hold (the user moved their end later) waits for
 * them to end instead of going out inside them; the wait is not an attempt.
 * The channel is a recording one (the worker's edge); the queue is real.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Channel, ChannelJob } from "../../src/channels/index.js";
import { ManualClock } from "../../src/observability/index.js";
import { DEFAULT_PREFERENCES, decideDelivery } from "../../src/preferences/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { drain, enqueue, makeWorker, queueRows } from "./harness.js";
import { seedNotification, seedUser } from "./support.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  await db?.cleanup();
});

// E-mail mode "always": these sends are held by quiet hours only, not by the wait to be seen in-app (unseen-email.test.ts).
const quiet = { ...DEFAULT_PREFERENCES, emailImmediate: "always" as const, quietHoursEnabled: true, quietHoursStart: "22:00", quietHoursEnd: "07:00" };

describe(`a held send released inside the user's current quiet hours (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("waits for their new end, uncounted, then goes once", async () => {
    const sent: ChannelJob[] = [];
    const email: Channel = { name: "email", send: async (job) => void sent.push(job) };
    const clock = new ManualClock("2030-01-07T23:00:00Z");
    const { worker } = makeWorker(db, { email }, clock);
    const user = "later-quiet-end";
    await seedUser(db, { id: user, email: `${user}@example.test` });
    await db.query("INSERT INTO notification_preferences (user_id, email_immediate, quiet_hours_enabled, quiet_hours_start, quiet_hours_end) VALUES ($1, 'always', true, '22:00', '07:00')", [user]);
    const id = await seedNotification(db, { userId: user, priority: "normal", createdAt: clock.now() });
    const decision = decideDelivery({ type: "new_message", priority: "normal" }, quiet, "UTC", clock.now());
    expect(decision.outOfApp.email).toEqual({ mode: "hold_until", until: new Date("2030-01-08T07:00:00Z") });
    await enqueue(db, { id, userId: user }, decision, clock.now());

    // Before 07:00 the user moves the end of their quiet hours to 09:00.
    await db.query("UPDATE notification_preferences SET quiet_hours_end = '09:00' WHERE user_id = $1", [user]);
    clock.set("2030-01-08T07:01:00Z");
    await drain(worker);
    expect(sent).toHaveLength(0);
    const [held] = await queueRows(db, id);
    expect(held).toMatchObject({ status: "pending", attempts: 0 });
    expect(new Date(held!.next_retry_at).toISOString()).toBe("2030-01-08T09:00:00.000Z");

    clock.set("2030-01-08T09:00:30Z");
    await drain(worker);
    expect(sent.map((j) => j.notifications.map((n) => n.id))).toEqual([[id]]);
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 1 });
  });
});
