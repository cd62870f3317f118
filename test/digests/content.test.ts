/**
 * What a digest holds (issue #16.8, #16.9): every type counted and shown even
 * when one type floods the window, and "since the last digest" of any
 * frequency, including after a frequency switch and after days of downtime.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EmailDigestService } from "../../src/digests/index.js";
import { ManualClock } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { type SmtpSink, addNotification, addUser, digestDeps, digestRows, resetDigestTables, smtpFor, startSmtpSink } from "./support.js";

describe("digest content", () => {
  let database: TestDatabase;
  let sink: SmtpSink;
  const services: EmailDigestService[] = [];
  const service = () => {
    const s = new EmailDigestService(smtpFor(sink), digestDeps(database, new ManualClock(new Date("2025-06-10T08:00:00Z"))));
    services.push(s);
    return s;
  };
  const setFrequency = (user: string, frequency: string) =>
    database.query("UPDATE notification_preferences SET email_digest_frequency = $2 WHERE user_id = $1", [user, frequency]);

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

  it("5 older booking requests and 50 newer messages: subject counts 55, both groups shown, each with 'and N more' past its first items", async () => {
    await addUser(database, "host");
    for (let i = 0; i < 5; i++) await addNotification(database, "host", new Date(Date.UTC(2025, 5, 9, 10, i)), { type: "booking_request", title: `Booking ${i}` });
    for (let i = 0; i < 50; i++) await addNotification(database, "host", new Date(Date.UTC(2025, 5, 9, 12, i)), { type: "new_message", title: `Message ${i}` });
    expect(await service().runDue(new Date("2025-06-10T08:00:01Z"))).toMatchObject({ claimed: 1, sent: 1 });
    const mail = sink.messages[0]!;
    expect(mail.subject).toBe("You have 55 new notifications");
    const text = mail.text ?? "";
    expect(text).toContain("Booking requests (5)");
    for (let i = 0; i < 5; i++) expect(text).toContain(`Booking ${i}`);
    expect(text).toContain("New messages (50)");
    expect(text).toContain("Message 49");
    expect(text).not.toContain("Message 0\n");
    expect(text).toMatch(/and 40 more/);
    expect(mail.html).toContain("Booking requests");
    const [row] = await digestRows(database, "host");
    expect(row!.notification_count).toBe(55);
  });

  it("daily, then hourly from 14:20, then daily again: each notification is in exactly one digest", async () => {
    await addUser(database, "switch", { frequency: "daily" });
    const s = service();
    await addNotification(database, "switch", "2025-06-09T20:00:00Z", { title: "evening" });
    expect(await s.runDue(new Date("2025-06-10T08:00:01Z"))).toMatchObject({ sent: 1 });
    await addNotification(database, "switch", "2025-06-10T10:00:00Z", { title: "morning" });
    await addNotification(database, "switch", "2025-06-10T14:30:00Z", { title: "afternoon" });
    await setFrequency("switch", "hourly");
    expect(await s.runDue(new Date("2025-06-10T15:00:01Z"))).toMatchObject({ sent: 1 });
    await setFrequency("switch", "daily");
    await addNotification(database, "switch", "2025-06-10T20:00:00Z", { title: "night" });
    expect(await s.runDue(new Date("2025-06-11T08:00:01Z"))).toMatchObject({ sent: 1 });

    const texts = sink.messages.map((m) => m.text ?? "");
    expect(texts).toHaveLength(3);
    for (const title of ["evening", "morning", "afternoon", "night"]) {
      expect(texts.filter((t) => t.includes(title)), title).toHaveLength(1);
    }
    expect(texts[1]).toContain("morning");
    expect(texts[2]).toContain("night");
  });

  it("a new user with the scheduler down three days gets one digest with everything since they arrived", async () => {
    await addUser(database, "fresh");
    const times = ["2025-06-07T09:00:00Z", "2025-06-08T09:00:00Z", "2025-06-09T09:00:00Z", "2025-06-10T07:00:00Z"];
    for (const [i, t] of times.entries()) await addNotification(database, "fresh", t, { title: `day ${i}` });
    const s = service();
    expect(await s.runDue(new Date("2025-06-10T08:00:01Z"))).toMatchObject({ claimed: 1, sent: 1 });
    expect(await s.runDue(new Date("2025-06-10T09:00:00Z"))).toMatchObject({ claimed: 0, sent: 0 });
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]!.subject).toBe("You have 4 new notifications");
    for (let i = 0; i < times.length; i++) expect(sink.messages[0]!.text).toContain(`day ${i}`);
  });
});
