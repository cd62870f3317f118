/**
 * What a digest contains and how sending fails and recovers, against a real
 * SMTP server on loopback (refusals scripted per stage) and the .eml outbox.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type ParsedMail, simpleParser } from "mailparser";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EmailDigestService, MAX_ATTEMPTS } from "../../src/digests/index.js";
import { claimDueDigests } from "../../src/digests/claim.js";
import { dueWindow } from "../../src/digests/index.js";
import { Inbox } from "../../src/notifications/inbox.js";
import type { NotificationDeps, RealtimePublisher } from "../../src/notifications/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import {
  APP_URL,
  type SmtpSink,
  addNotification,
  addUser,
  digestDeps,
  digestRows,
  resetDigestTables,
  smtpFor,
  startSmtpSink,
  testConfig,
  toRecipient,
} from "./support.js";

/** The header as sent (mailparser folds List-* headers into an object). */
const rawHeader = (mail: ParsedMail, key: string) => mail.headerLines.find((h) => h.key === key)?.line ?? "";

const T = new Date("2025-06-10T08:00:00Z");

/** The inbox as the service runs it, on the digest tests' database, with no device to tell and no analytics to record. */
function inboxOn(database: TestDatabase): Inbox {
  const deps = { database, logger: silentLogger, analytics: { record() {} } } as unknown as NotificationDeps;
  const realtime = { async publishToUser() {} } as unknown as RealtimePublisher;
  return new Inbox(deps, realtime);
}
const at = (ms: number) => new Date(T.getTime() + ms);

describe("digest delivery", () => {
  let database: TestDatabase;
  let sink: SmtpSink;
  const services: EmailDigestService[] = [];
  const service = (clock = new ManualClock(T), config = testConfig()) => {
    const deps = digestDeps(database, clock, config);
    const s = new EmailDigestService(smtpFor(sink), deps);
    services.push(s);
    return { s, deps };
  };

  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(() => database.cleanup());
  beforeEach(async () => {
    await resetDigestTables(database);
    sink = await startSmtpSink();
  });
  afterEach(async () => {
    await Promise.all(services.splice(0).map((s) => s.stop()));
    await sink.close();
  });

  it("groups by type with counts, newest first, escapes a <script> title, builds absolute links and a text part", async () => {
    await addUser(database, "ann");
    await addNotification(database, "ann", "2025-06-10T06:00:00Z", {
      type: "booking_request",
      title: '<script>alert("x")</script>',
      message: 'Tom & "Jerry" <b>bold</b>',
      actionUrl: "/bookings/42",
    });
    await addNotification(database, "ann", "2025-06-10T07:00:00Z", { type: "new_message", title: "Link trap", actionUrl: "javascript:alert(1)" });
    await addNotification(database, "ann", "2025-06-10T07:30:00Z", { type: "new_message", title: "Newest", actionUrl: "https://other.example/x?a=1&b=2" });
    await addNotification(database, "ann", "2025-06-10T07:40:00Z", { title: "Already read", read: true });
    await addNotification(database, "ann", "2025-06-10T07:41:00Z", { title: "Archived", archived: true });
    await addNotification(database, "ann", "2025-06-10T08:00:01Z", { title: "Next window" });

    const { s } = service();
    expect(await s.runDue(T)).toMatchObject({ claimed: 1, sent: 1 });
    const [mail] = sink.messages;
    expect(mail!.subject).toBe("You have 3 new notifications");
    const html = String(mail!.html);
    expect(html).not.toContain("<script");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(html).toContain("Tom &amp; &quot;Jerry&quot; &lt;b&gt;bold&lt;/b&gt;");
    expect(html).toContain(`href="${APP_URL}/bookings/42"`);
    expect(html).toContain('href="https://other.example/x?a=1&amp;b=2"');
    expect(html).not.toContain("javascript:");
    expect(html).not.toContain("Already read");
    expect(html).not.toContain("Archived");
    expect(html).not.toContain("Next window");
    // Groups ordered by their newest item; items newest first.
    expect(html.indexOf("New messages")).toBeLessThan(html.indexOf("Booking requests"));
    expect(html.indexOf("Newest")).toBeLessThan(html.indexOf("Link trap"));
    expect(html).toMatch(/New messages <span[^>]*>2<\/span>/);
    expect(html).toMatch(/Booking requests <span[^>]*>1<\/span>/);
    expect(mail!.text).toContain('<script>alert("x")</script>');
    expect(mail!.text).toContain(`${APP_URL}/bookings/42`);
    expect(mail!.text).toContain("New messages (2)");
    const unsubscribe = rawHeader(mail!, "list-unsubscribe");
    expect(unsubscribe).toMatch(new RegExp(`<${APP_URL}/api/unsubscribe\\?token=[\\w-]+\\.[\\w-]{43}>`));
    expect(rawHeader(mail!, "list-unsubscribe-post")).toBe("List-Unsubscribe-Post: List-Unsubscribe=One-Click");
    expect(unsubscribe).toContain("<mailto:noreply@example.test?subject=unsubscribe>");
    const [row] = await digestRows(database, "ann");
    expect(mail!.messageId).toBe(`<digest-${row!.id}@app.example.test>`);
    expect(row).toMatchObject({ status: "sent", notification_count: 3, attempts: 1 });
  });

  it("an empty window sends nothing: no unread notifications, digests off, no address, or everything read before sending", async () => {
    await addUser(database, "quiet");
    await addNotification(database, "quiet", "2025-06-10T07:00:00Z", { read: true });
    await addNotification(database, "quiet", "2025-06-10T07:10:00Z", { archived: true });
    await addNotification(database, "quiet", "2025-06-10T09:00:00Z");
    await addUser(database, "off", { enabled: false });
    await addNotification(database, "off", "2025-06-10T07:00:00Z");
    await addUser(database, "nomail", { email: null });
    await addNotification(database, "nomail", "2025-06-10T07:00:00Z");
    const { s } = service();
    expect(await s.runDue(T)).toEqual({ claimed: 0, sent: 0, skipped: 0, retrying: 0, failed: 0 });

    // Claimed with something to say, then read before the send: marked skipped, no e-mail.
    await addUser(database, "reader");
    const id = await addNotification(database, "reader", "2025-06-10T07:00:00Z");
    const w = dueWindow("daily", "UTC", T);
    expect(await claimDueDigests(database, [{ timezone: "UTC", frequency: "daily", windowStart: w.start, scheduledFor: w.end }], T)).toBe(1);
    await database.query("UPDATE notifications SET read = true WHERE id = $1", [id]);
    expect(await s.runDue(at(60_000))).toMatchObject({ sent: 0, skipped: 1 });
    expect(sink.messages).toHaveLength(0);
    expect((await digestRows(database)).map((r) => [r.user_id, r.status])).toEqual([["reader", "skipped"]]);
    expect(await s.getDigestStats("reader")).toMatchObject({ totalSent: 0, totalSkipped: 1 });
  });

  it("what an archive-all's watermark archived is not in the next digest (claimed or not); what was unarchived after it, or came later, is", async () => {
    await addUser(database, "tidy");
    await addNotification(database, "tidy", "2025-06-10T06:00:00Z", { title: "Swept away" });
    const takenBack = await addNotification(database, "tidy", "2025-06-10T06:30:00Z", { title: "Taken back" });
    const inbox = inboxOn(database);
    expect(await inbox.archiveAll("tidy")).toBe(2);
    expect(await inbox.update("tidy", takenBack, { archived: false })).toEqual({ read: false, archived: false });
    await addNotification(database, "tidy", "2025-06-10T07:00:00Z", { title: "After the sweep" });
    // Everything archived by the watermark: nothing to say, no digest claimed.
    await addUser(database, "swept");
    await addNotification(database, "swept", "2025-06-10T07:00:00Z", { title: "Gone" });
    expect(await inboxOn(database).archiveAll("swept")).toBe(1);

    const { s } = service();
    expect(await s.runDue(T)).toMatchObject({ claimed: 1, sent: 1 });
    const [mail] = sink.messages;
    expect(mail!.subject).toBe("You have 2 new notifications");
    expect(String(mail!.html)).toContain("Taken back");
    expect(String(mail!.html)).toContain("After the sweep");
    expect(String(mail!.html)).not.toContain("Swept away");
    expect((await digestRows(database)).map((r) => [r.user_id, r.status, r.notification_count])).toEqual([["tidy", "sent", 2]]);

    // Claimed with something to say, then archived by an archive-all before the send: skipped, no e-mail.
    await addUser(database, "late-sweeper");
    await addNotification(database, "late-sweeper", "2025-06-10T07:00:00Z");
    const w = dueWindow("daily", "UTC", T);
    expect(await claimDueDigests(database, [{ timezone: "UTC", frequency: "daily", windowStart: w.start, scheduledFor: w.end }], T)).toBe(1);
    expect(await inboxOn(database).archiveAll("late-sweeper")).toBe(1);
    expect(await s.runDue(at(60_000))).toMatchObject({ sent: 0, skipped: 1 });
    expect(sink.messages).toHaveLength(1);
    expect((await digestRows(database, "late-sweeper")).map((r) => r.status)).toEqual(["skipped"]);
  });

  it("a server that refuses (421 on connect, then 451 after DATA) and then accepts yields one delivered digest and recorded attempts", async () => {
    sink.refuse({ stage: "connect", code: 421, times: 1 });
    sink.refuse({ stage: "data", code: 451, times: 1 });
    await addUser(database, "bob");
    await addNotification(database, "bob", "2025-06-10T07:00:00Z");
    const { s, deps } = service();

    expect(await s.runDue(T)).toMatchObject({ claimed: 1, sent: 0, retrying: 1 });
    let [row] = await digestRows(database, "bob");
    // A 421 greeting: no connection took the message, so it is no delivery attempt (issue #14.6).
    expect(row).toMatchObject({ status: "pending", attempts: 0 });
    expect(row!.last_error).toMatch(/421/);
    const firstRetry = row!.next_attempt_at!.getTime() - T.getTime();
    expect(firstRetry).toBeGreaterThanOrEqual(60_000);

    // Not before the backoff has elapsed.
    expect(await s.runDue(at(firstRetry - 1000))).toMatchObject({ sent: 0, retrying: 0 });
    expect(await s.runDue(row!.next_attempt_at!)).toMatchObject({ sent: 0, retrying: 1 });
    [row] = await digestRows(database, "bob");
    expect(row).toMatchObject({ status: "pending", attempts: 1 });
    expect(row!.last_error).toMatch(/451/);
    // Exponential: the second wait is about twice the first.
    const secondRetry = row!.next_attempt_at!.getTime() - at(firstRetry).getTime();
    expect(secondRetry).toBeGreaterThan(firstRetry * 1.5);

    expect(await s.runDue(row!.next_attempt_at!)).toMatchObject({ sent: 1 });
    [row] = await digestRows(database, "bob");
    expect(row).toMatchObject({ status: "sent", attempts: 2 });
    expect(sink.messages).toHaveLength(1);
    expect(sink.refusals).toEqual(["421 connect", "451 data"]);
    const metrics = await deps.metrics.getMetricsAsJSON();
    const value = (name: string) => metrics.find((m) => m.name === name)?.values.reduce((n, v) => n + v.value, 0);
    expect(value("herald_digests_sent_total")).toBe(1);
    expect(value("herald_digests_retried_total")).toBe(2);
  });

  it("a 550 is permanent: not retried, recorded as failed, other users still get theirs", async () => {
    sink.refuse({ stage: "rcpt", code: 550, to: "bad@example.test" });
    await addUser(database, "bad");
    await addUser(database, "good");
    await addNotification(database, "bad", "2025-06-10T07:00:00Z");
    await addNotification(database, "good", "2025-06-10T07:00:00Z");
    const { s } = service();
    expect(await s.runDue(T)).toMatchObject({ claimed: 2, sent: 1, failed: 1, retrying: 0 });
    expect(await s.runDue(at(3 * 3_600_000))).toMatchObject({ sent: 0, failed: 0 });
    const rows = await digestRows(database);
    expect(rows.find((r) => r.user_id === "bad")).toMatchObject({ status: "failed", attempts: 1 });
    expect(rows.find((r) => r.user_id === "bad")!.last_error).toMatch(/^550/);
    expect(sink.messages.map(toRecipient)).toEqual(["good@example.test"]);
    expect(await s.getDigestStats("bad")).toMatchObject({ totalSent: 0, totalFailed: 1 });
  });

  it(`a transient failure that never clears gives up after ${MAX_ATTEMPTS} attempts`, async () => {
    sink.refuse({ stage: "data", code: 451 });
    await addUser(database, "carl");
    await addNotification(database, "carl", "2025-06-10T07:00:00Z");
    const { s } = service();
    let now = T;
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      await s.runDue(now);
      const [row] = await digestRows(database, "carl");
      if (row!.next_attempt_at) now = row!.next_attempt_at;
    }
    const [row] = await digestRows(database, "carl");
    expect(row).toMatchObject({ status: "failed", attempts: MAX_ATTEMPTS });
    expect(row!.last_error).toMatch(/451/);
    expect(await s.runDue(at(86_400_000 - 1))).toMatchObject({ sent: 0, failed: 0, retrying: 0 });
    expect(sink.refusals).toHaveLength(MAX_ATTEMPTS);
  });

  it("without SMTP settings, writes the digest as an .eml file in DATA_DIR/outbox", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "herald-outbox-"));
    try {
      await addUser(database, "dora");
      await addNotification(database, "dora", "2025-06-10T07:00:00Z", { title: "Outbox <check>" });
      const s = new EmailDigestService(undefined, digestDeps(database, new ManualClock(T), testConfig(dataDir)));
      services.push(s);
      expect(await s.runDue(T)).toMatchObject({ sent: 1 });
      const files = readdirSync(path.join(dataDir, "outbox"));
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/\.eml$/);
      const mail = await simpleParser(readFileSync(path.join(dataDir, "outbox", files[0]!)));
      expect(mail.subject).toBe("You have 1 new notification");
      expect(toRecipient(mail)).toBe("dora@example.test");
      expect(String(mail.html)).toContain("Outbox &lt;check&gt;");
      expect(rawHeader(mail, "list-unsubscribe")).toContain(`<${APP_URL}/api/unsubscribe?token=`);
      expect(sink.messages).toHaveLength(0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("sendTestDigest sends now outside the schedule, and stats and history report it", async () => {
    await addUser(database, "eve", { timezone: "Asia/Kolkata" });
    await addNotification(database, "eve", "2025-06-10T07:00:00Z");
    const { s } = service();
    const test = await s.sendTestDigest("eve", "daily");
    expect(test).toMatchObject({ status: "sent", isTest: true, notificationCount: 1, subject: "[Test] You have 1 new notification" });
    // The scheduled digest for the window still goes out: a test is not a claim.
    expect(await s.runDue(new Date("2025-06-11T02:30:00Z"))).toMatchObject({ claimed: 1, sent: 1 });
    expect(sink.messages.map((m) => m.subject)).toEqual(["[Test] You have 1 new notification", "You have 1 new notification"]);

    // Test digests are counted apart (issue #16): the totals and last times are the scheduled digests'.
    const before = await s.getDigestStats("eve");
    expect(before).toMatchObject({ totalSent: 1, totalTest: 1, totalFailed: 0 });
    sink.refuse({ stage: "rcpt", code: 550, times: 1 });
    expect(await s.sendTestDigest("eve", "daily")).toMatchObject({ status: "failed", isTest: true });
    const stats = await s.getDigestStats("eve");
    expect(stats).toMatchObject({ totalSent: 1, totalTest: 2, totalFailed: 0, lastFailedAt: null, lastError: null, lastSentAt: before.lastSentAt, frequency: "daily", timezone: "Asia/Kolkata", enabled: true });
    expect(stats.nextScheduledAt).toBe("2025-06-11T02:30:00.000Z");
    const page = await s.listDigests("eve", { limit: 1 });
    expect(page.total).toBe(3);
    expect(page.digests).toHaveLength(1);
    expect((await s.listDigests("eve", { limit: 1, offset: 1 })).digests[0]!.id).not.toBe(page.digests[0]!.id);

    await expect(s.sendTestDigest("nobody", "daily")).rejects.toMatchObject({ code: "HERALD_NOT_FOUND" });
    await addUser(database, "noaddress", { email: null });
    await expect(s.sendTestDigest("noaddress", "daily")).rejects.toMatchObject({ code: "HERALD_CONFLICT" });
  });
});
