/**
 * What the worker does when a send is released (issue 16.4 and 16.5): a sent
 * e-mail moves the notification to `sent` with a `sent` analytics event per
 * channel; a held send about a notification read, archived or deleted in the
 * meantime, or whose channel the user switched off, is cancelled, not sent.
 * Real rules, real SMTP on loopback, a set clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnalyticsIngest } from "../../src/analytics/ingest.js";
import { EmailChannel } from "../../src/channels/index.js";
import { createMailer, unsubscribeKey } from "../../src/mail/index.js";
import { Inbox } from "../../src/notifications/inbox.js";
import type { NotificationDeps, RealtimePublisher } from "../../src/notifications/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";
import { DEFAULT_PREFERENCES, decideDelivery } from "../../src/preferences/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { drain, enqueue, makeWorker, queueRows } from "./harness.js";
import { type SmtpReceiver, seedNotification, seedUser, startSmtpReceiver } from "./support.js";

const APP_URL = "https://app.example.test";
const UNSUBSCRIBE_KEY = unsubscribeKey("x".repeat(32));
let db: TestDatabase;
let smtp: SmtpReceiver;
let mailer: ReturnType<typeof createMailer>;

beforeAll(async () => {
  db = await openTestDatabase();
  smtp = await startSmtpReceiver();
  mailer = createMailer({ host: "127.0.0.1", port: smtp.port, secure: false, from: "Herald <herald@example.test>" });
});
afterAll(async () => {
  await mailer?.close();
  await smtp?.close();
  await db?.cleanup();
});

// E-mail mode "always": these sends are held by quiet hours only, not by the wait to be seen in-app (unseen-email.test.ts).
const quiet = { ...DEFAULT_PREFERENCES, emailImmediate: "always" as const, quietHoursEnabled: true, quietHoursStart: "22:00", quietHoursEnd: "07:00" };

async function setup(userId: string, createdAt: Date) {
  await seedUser(db, { id: userId, email: `${userId}@example.test` });
  await db.query("INSERT INTO notification_preferences (user_id, email_immediate, quiet_hours_enabled, quiet_hours_start, quiet_hours_end) VALUES ($1, 'always', true, '22:00', '07:00')", [userId]);
  const id = await seedNotification(db, { userId, title: `About ${userId}`, priority: "normal", createdAt });
  const decision = decideDelivery({ type: "new_message", priority: "normal" }, quiet, "UTC", createdAt);
  expect(decision.outOfApp.email).toEqual({ mode: "hold_until", until: new Date("2030-01-08T07:00:00Z") });
  await enqueue(db, { id, userId }, decision, createdAt);
  return id;
}

/** The inbox as the service runs it, on this database, with no device to tell and no analytics to record. */
function inboxOn(database: TestDatabase): Inbox {
  const deps = { database, logger: silentLogger, analytics: { record() {} } } as unknown as NotificationDeps;
  return new Inbox(deps, { async publishToUser() {} } as unknown as RealtimePublisher);
}

const mailsTo = (address: string) => smtp.mails.filter((m) => m.to && JSON.stringify(m.to).includes(address));

describe(`releasing out-of-app sends (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("an e-mail sent by the worker moves the notification to sent and records a sent event for the channel", async () => {
    const at = new Date("2030-01-07T10:00:00Z");
    const clock = new ManualClock(at);
    const analytics = new AnalyticsIngest({ database: db, clock });
    const { worker } = makeWorker(db, { email: new EmailChannel({ mailer, appUrl: APP_URL, unsubscribeKey: UNSUBSCRIBE_KEY }) }, clock, { analytics });
    await seedUser(db, { id: "offline-user", email: "offline@example.test" });
    const id = await seedNotification(db, { userId: "offline-user", createdAt: at });
    await enqueue(db, { id, userId: "offline-user" }, { inApp: true, outOfApp: { email: { mode: "now" } } }, at);
    expect(await drain(worker)).toBe(1);
    await analytics.flush();
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent" });
    const [n] = await db.query<{ delivery_status: string; sent_at: Date | null }>("SELECT delivery_status, sent_at FROM notifications WHERE id = $1", [id]);
    expect(n!.delivery_status).toBe("sent");
    expect(new Date(n!.sent_at!).toISOString()).toBe(at.toISOString());
    const events = await db.query<{ event_type: string; metadata: unknown }>("SELECT event_type, metadata FROM analytics_events WHERE notification_id = $1", [id]);
    expect(events).toEqual([{ event_type: "sent", metadata: { channel: "email" } }]);
  });

  it("a held e-mail about a notification read in the meantime is cancelled at release", async () => {
    const clock = new ManualClock("2030-01-07T23:00:00Z");
    const { worker } = makeWorker(db, { email: new EmailChannel({ mailer, appUrl: APP_URL, unsubscribeKey: UNSUBSCRIBE_KEY }) }, clock);
    const id = await setup("read-user", clock.now());
    expect(await drain(worker)).toBe(0); // held until 07:00
    await db.query("UPDATE notifications SET read = true, read_at = $2 WHERE id = $1", [id, clock.now()]);
    clock.set("2030-01-08T07:01:00Z");
    await drain(worker);
    expect(mailsTo("read-user@example.test")).toHaveLength(0);
    const [row] = await queueRows(db, id);
    expect(row).toMatchObject({ status: "cancelled" });
    expect(row!.last_error).toMatch(/read/);
  });

  it("a held e-mail about a notification archived in the meantime is cancelled", async () => {
    const clock = new ManualClock("2030-01-07T23:00:00Z");
    const { worker } = makeWorker(db, { email: new EmailChannel({ mailer, appUrl: APP_URL, unsubscribeKey: UNSUBSCRIBE_KEY }) }, clock);
    const id = await setup("archive-user", clock.now());
    await db.query("UPDATE notifications SET archived = true WHERE id = $1", [id]);
    clock.set("2030-01-08T07:01:00Z");
    await drain(worker);
    expect(mailsTo("archive-user@example.test")).toHaveLength(0);
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "cancelled" });
  });

  it("a held e-mail about a notification archived by an archive-all's watermark is cancelled; one unarchived after the archive-all goes", async () => {
    const clock = new ManualClock("2030-01-07T23:00:00Z");
    const { worker } = makeWorker(db, { email: new EmailChannel({ mailer, appUrl: APP_URL, unsubscribeKey: UNSUBSCRIBE_KEY }) }, clock);
    const swept = await setup("archive-all-user", clock.now());
    const takenBack = await setup("unarchive-user", clock.now());
    const inbox = inboxOn(db);
    expect(await inbox.archiveAll("archive-all-user")).toBe(1);
    expect(await inbox.archiveAll("unarchive-user")).toBe(1);
    expect(await inbox.update("unarchive-user", takenBack, { archived: false })).toEqual({ read: false, archived: false });
    clock.set("2030-01-08T07:01:00Z");
    await drain(worker);
    expect(mailsTo("archive-all-user@example.test")).toHaveLength(0);
    const [row] = await queueRows(db, swept);
    expect(row).toMatchObject({ status: "cancelled" });
    expect(row!.last_error).toMatch(/archived/);
    expect(mailsTo("unarchive-user@example.test")).toHaveLength(1);
    expect((await queueRows(db, takenBack))[0]).toMatchObject({ status: "sent" });
  });

  it("a held e-mail whose channel the user switched off before release is cancelled; an unchanged one goes", async () => {
    const clock = new ManualClock("2030-01-07T23:00:00Z");
    const { worker } = makeWorker(db, { email: new EmailChannel({ mailer, appUrl: APP_URL, unsubscribeKey: UNSUBSCRIBE_KEY }) }, clock);
    const off = await setup("toggle-user", clock.now());
    const kept = await setup("kept-user", clock.now());
    await db.query("UPDATE notification_preferences SET email_enabled = false WHERE user_id = 'toggle-user'");
    clock.set("2030-01-08T07:01:00Z");
    await drain(worker);
    expect(mailsTo("toggle-user@example.test")).toHaveLength(0);
    const [row] = await queueRows(db, off);
    expect(row).toMatchObject({ status: "cancelled" });
    expect(row!.last_error).toMatch(/preferences/);
    expect(mailsTo("kept-user@example.test")).toHaveLength(1);
    expect((await queueRows(db, kept))[0]).toMatchObject({ status: "sent" });
  });
});
