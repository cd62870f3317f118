/**
 * The frequency and quiet-hours rules end to end: the pure delivery rules of
 * src/preferences decide, `enqueueOutOfApp` writes the rows, the worker sends
 * to a real SMS webhook at the right instants.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SmsChannel, WebhookSmsProvider } from "../../src/channels/index.js";
import { claimDue } from "../../src/channels/queue-sql.js";
import { ManualClock } from "../../src/observability/index.js";
import { DEFAULT_PREFERENCES, type PreferenceFields, decideDelivery } from "../../src/preferences/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { drain, enqueue, makeWorker, queueRows } from "./harness.js";
import { WEBHOOK_SECRET, type SmsReceiver, seedNotification, seedUser, startSmsReceiver } from "./support.js";

const APP_URL = "https://app.example.test";
let db: TestDatabase;
let receiver: SmsReceiver;

beforeAll(async () => {
  db = await openTestDatabase();
  receiver = await startSmsReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await db?.cleanup();
});

const prefs = (p: Partial<PreferenceFields>): PreferenceFields => ({ ...DEFAULT_PREFERENCES, emailEnabled: false, smsEnabled: true, ...p });

/** Creates a notification at the clock's time and enqueues what the rules decide for it. */
async function notify(userId: string, clock: ManualClock, p: PreferenceFields, n: { title: string; type?: string; priority?: string }) {
  const type = n.type ?? "new_message";
  const priority = n.priority ?? "high";
  const id = await seedNotification(db, { userId, title: n.title, type, priority, createdAt: clock.now() });
  const decision = decideDelivery({ type, priority }, p, "UTC", clock.now());
  await enqueue(db, { id, userId }, decision, clock.now());
  return id;
}

function smsFor(userId: string) {
  return receiver.delivered.filter((d) => String(d.to) === `+1-${userId}`);
}

describe(`frequency and quiet hours (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("hourly bundles the hour's notifications into one SMS at the top of the hour", async () => {
    const user = "hourly-1";
    await seedUser(db, { id: user, phone: `+1-${user}` });
    const clock = new ManualClock("2030-03-04T10:05:00Z");
    const { worker } = makeWorker(db, { sms: new SmsChannel(new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), APP_URL) }, clock);
    const p = prefs({ frequency: "hourly" });
    const ids = [await notify(user, clock, p, { title: "First" })];
    clock.set("2030-03-04T10:20:00Z");
    ids.push(await notify(user, clock, p, { title: "Second" }));
    clock.set("2030-03-04T10:59:59Z");
    ids.push(await notify(user, clock, p, { title: "Third" }));
    await drain(worker);
    expect(smsFor(user)).toHaveLength(0);

    clock.set("2030-03-04T11:00:00Z");
    await drain(worker);
    expect(smsFor(user)).toEqual([
      { to: `+1-${user}`, title: "3 new notifications", message: "- First\n- Second\n- Third", notificationId: ids[0] },
    ]);
    for (const id of ids) expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent" });

    // The next notification opens the next hour's bundle.
    clock.set("2030-03-04T11:00:30Z");
    const late = await notify(user, clock, p, { title: "Fourth" });
    expect(new Date((await queueRows(db, late))[0]!.next_retry_at).toISOString()).toBe("2030-03-04T12:00:00.000Z");
    clock.set("2030-03-04T12:00:00Z");
    await drain(worker);
    expect(smsFor(user).map((s) => s.title)).toEqual(["3 new notifications", "Fourth"]);
  });

  it("a notification arriving while its hour's bundle is being sent joins the next bundle, never lost", async () => {
    const user = "hourly-2";
    await seedUser(db, { id: user, phone: `+1-${user}` });
    const clock = new ManualClock("2030-03-04T10:30:00Z");
    const p = prefs({ frequency: "hourly" });
    await notify(user, clock, p, { title: "Early" });
    // Another worker has claimed the 11:00 bundle (it is being sent) ...
    clock.set("2030-03-04T11:00:00Z");
    const claimed = await claimDue(db, "other-worker", clock.now(), 60_000, 100);
    expect(claimed.filter((r) => r.userId === user)).toHaveLength(1);
    // ... when a straggler decided at 10:59:59 commits.
    const id = await seedNotification(db, { userId: user, title: "Straggler" });
    const decision = decideDelivery({ type: "new_message", priority: "high" }, p, "UTC", new Date("2030-03-04T10:59:59Z"));
    expect(decision.outOfApp.sms).toEqual({ mode: "hourly", at: new Date("2030-03-04T11:00:00Z") });
    await enqueue(db, { id, userId: user }, decision, clock.now());
    const [row] = await queueRows(db, id);
    expect(row).toMatchObject({ status: "held" });
    expect(new Date(row!.next_retry_at).toISOString()).toBe("2030-03-04T12:00:00.000Z");
  });

  it("quiet hours hold an immediate SMS until they end; critical goes at once", async () => {
    const user = "quiet-1";
    await seedUser(db, { id: user, phone: `+1-${user}` });
    const clock = new ManualClock("2030-03-04T23:00:00Z");
    const { worker } = makeWorker(db, { sms: new SmsChannel(new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), APP_URL) }, clock);
    const p = prefs({ quietHoursEnabled: true, quietHoursStart: "22:00", quietHoursEnd: "08:00" });
    const held = await notify(user, clock, p, { title: "Booking request", type: "booking_request" });
    const critical = await notify(user, clock, p, { title: "New sign-in", type: "security_alert", priority: "critical" });

    await drain(worker);
    expect(smsFor(user).map((s) => s.notificationId)).toEqual([critical]);
    expect(new Date((await queueRows(db, held))[0]!.next_retry_at).toISOString()).toBe("2030-03-05T08:00:00.000Z");

    clock.set("2030-03-05T07:59:59Z");
    await drain(worker);
    expect(smsFor(user)).toHaveLength(1);
    clock.set("2030-03-05T08:00:00Z");
    await drain(worker);
    expect(smsFor(user).map((s) => s.notificationId)).toEqual([critical, held]);
  });

  it("daily_digest leaves e-mail to the digest and switched-off channels get no row", async () => {
    const user = "digest-1";
    await seedUser(db, { id: user, phone: `+1-${user}`, email: "d@example.test" });
    const clock = new ManualClock("2030-03-04T12:00:00Z");
    const id = await notify(user, clock, prefs({ frequency: "daily_digest", emailEnabled: true, smsEnabled: false }), { title: "Digest me" });
    expect(await queueRows(db, id)).toEqual([]);
  });

  it("enqueueing the same notification twice adds nothing: one row per (notification, channel)", async () => {
    const user = "idem-1";
    await seedUser(db, { id: user, phone: `+1-${user}`, email: "i@example.test" });
    const clock = new ManualClock("2030-03-04T12:00:00Z");
    const id = await seedNotification(db, { userId: user });
    const decision = { inApp: true, outOfApp: { sms: { mode: "now" as const }, email: { mode: "now" as const } } };
    await enqueue(db, { id, userId: user }, decision, clock.now());
    await enqueue(db, { id, userId: user }, decision, clock.now());
    expect((await queueRows(db, id)).map((r) => r.channel).sort()).toEqual(["email", "sms"]);
  });
});
