/**
 * The scheduler against a driven clock, a real database and a real SMTP
 * server on loopback: right local times, exactly once across instances,
 * crash recovery and catch-up after downtime.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/index.js";
import { claimDueDigests, leaseDueDigests } from "../../src/digests/claim.js";
import { EmailDigestService, LEASE_MS, dueWindow } from "../../src/digests/index.js";
import { ManualClock } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import {
  type SmtpSink,
  addNotification,
  addUser,
  digestDeps,
  digestRows,
  resetDigestTables,
  smtpFor,
  startSmtpSink,
  toRecipient,
} from "./support.js";

const MIN = 60_000;

describe("digest scheduler", () => {
  let database: TestDatabase;
  let sink: SmtpSink;
  const services: EmailDigestService[] = [];
  const service = (clock = new ManualClock(), db: Parameters<typeof digestDeps>[0] = database) => {
    const s = new EmailDigestService(smtpFor(sink), digestDeps(db, clock));
    services.push(s);
    return s;
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

  /** Ticks every `stepMin` minutes over [from, to]; returns the first tick at which each recipient got mail. */
  async function drive(s: EmailDigestService, clock: ManualClock, from: string, to: string, stepMin: number) {
    const firstMail = new Map<string, string>();
    for (let t = Date.parse(from); t <= Date.parse(to); t += stepMin * MIN) {
      clock.set(t);
      const before = sink.messages.length;
      await s.tick();
      for (const m of sink.messages.slice(before)) {
        const to = toRecipient(m);
        if (!firstMail.has(to)) firstMail.set(to, new Date(t).toISOString());
      }
    }
    return firstMail;
  }

  it("sends each daily digest at 08:00 in the user's zone on a DST day, once, including half-hour zones", async () => {
    // 2025-03-09: New York springs forward; Chatham (+13:45) and Lord Howe (+11) are on summer time.
    const expected: Record<string, string> = {
      "utc@example.test": "2025-03-09T08:00:00.000Z",
      "kolkata@example.test": "2025-03-09T02:30:00.000Z",
      "newyork@example.test": "2025-03-09T12:00:00.000Z",
      "chatham@example.test": "2025-03-09T18:15:00.000Z",
      "lordhowe@example.test": "2025-03-09T21:00:00.000Z",
    };
    const zones: Record<string, string> = {
      utc: "UTC",
      kolkata: "Asia/Kolkata",
      newyork: "America/New_York",
      chatham: "Pacific/Chatham",
      lordhowe: "Australia/Lord_Howe",
    };
    for (const [id, zone] of Object.entries(zones)) {
      await addUser(database, id, { timezone: zone });
      const due = Date.parse(expected[`${id}@example.test`]!);
      await addNotification(database, id, new Date(due - 30 * MIN), { title: `before ${id}` });
      await addNotification(database, id, new Date(due + 60 * MIN), { title: `after ${id}` });
    }
    const clock = new ManualClock();
    const firstMail = await drive(service(clock), clock, "2025-03-09T00:00:00Z", "2025-03-10T00:00:00Z", 15);

    expect(Object.fromEntries(firstMail)).toEqual(expected);
    expect(sink.messages).toHaveLength(5);
    const rows = await digestRows(database);
    expect(rows.map((r) => [r.user_id, r.status, r.scheduled_for.toISOString(), r.notification_count])).toEqual(
      expect.arrayContaining(Object.keys(zones).map((id) => [id, "sent", expected[`${id}@example.test`], 1])),
    );
    expect(rows).toHaveLength(5);
  });

  it("sends hourly digests at local :00 in Kolkata and across Lord Howe's 30-minute spring-forward, covering every notification once", async () => {
    await addUser(database, "lh", { timezone: "Australia/Lord_Howe", frequency: "hourly" });
    await addUser(database, "in", { timezone: "Asia/Kolkata", frequency: "hourly" });
    let created = 0;
    for (let t = Date.parse("2025-10-04T11:55:00Z"); t < Date.parse("2025-10-04T17:30:00Z"); t += 10 * MIN) {
      await addNotification(database, "lh", new Date(t));
      await addNotification(database, "in", new Date(t));
      created++;
    }
    const clock = new ManualClock();
    await drive(service(clock), clock, "2025-10-04T12:00:00Z", "2025-10-04T18:00:00Z", 15);

    const rows = await digestRows(database);
    const windows = (id: string) => rows.filter((r) => r.user_id === id).map((r) => r.scheduled_for.toISOString().slice(11, 16));
    // Lord Howe: 23:00 and 00:00 at +10:30, then 01:00, the 02:00 that does not exist (02:30 +11), 03:00... at +11.
    expect(windows("lh")).toEqual(["12:30", "13:30", "14:30", "15:30", "16:00", "17:00", "18:00"]);
    expect(windows("in")).toEqual(["12:30", "13:30", "14:30", "15:30", "16:30", "17:30"]);
    expect(rows.every((r) => r.status === "sent")).toBe(true);
    // Every notification up to the last window is reported exactly once.
    const reported = (id: string) => rows.filter((r) => r.user_id === id).reduce((n, r) => n + r.notification_count, 0);
    expect(reported("lh")).toBe(created);
    expect(reported("in")).toBe(created - 0); // 17:25 is the last one, inside the 17:30 window
    expect(sink.messages).toHaveLength(13);
  });

  it("sends the weekly digest on Monday 09:00 local, the day after London springs forward", async () => {
    await addUser(database, "lon", { timezone: "Europe/London", frequency: "weekly" });
    await addNotification(database, "lon", "2025-03-29T12:00:00Z");
    const clock = new ManualClock();
    const s = service(clock);
    for (const t of ["2025-03-31T07:59:00Z", "2025-03-31T08:00:00Z", "2025-03-31T09:00:00Z", "2025-04-01T09:00:00Z"]) {
      clock.set(t);
      await s.tick();
    }
    const rows = await digestRows(database, "lon");
    expect(rows.map((r) => [r.scheduled_for.toISOString(), r.status])).toEqual([["2025-03-31T08:00:00.000Z", "sent"]]);
    expect(sink.messages).toHaveLength(1);
  });

  it("two scheduler instances running the same window concurrently send one digest per user", async () => {
    const users = Array.from({ length: 40 }, (_, i) => `u${i}`);
    for (const id of users) {
      await addUser(database, id);
      await addNotification(database, id, "2025-06-10T07:00:00Z");
    }
    // On PostgreSQL the second instance gets its own connection pool to the same schema.
    const [{ schema }] = (await database.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const otherDb = database.kind === "postgres" ? await openDatabase({ url: process.env.DATABASE_URL, schema, poolSize: 5 }) : database;
    try {
      const now = new Date("2025-06-10T08:00:30Z");
      const a = service(new ManualClock(now));
      const b = service(new ManualClock(now), otherDb);
      const results = await Promise.all([a.runDue(), b.runDue(), a.runDue(), b.runDue()]);
      expect(results.reduce((n, r) => n + r.sent, 0)).toBe(40);
      expect(results.reduce((n, r) => n + r.claimed, 0)).toBe(40);
      await Promise.all([a.runDue(new Date("2025-06-10T08:05:00Z")), b.runDue(new Date("2025-06-10T08:05:00Z"))]);
      expect(sink.messages).toHaveLength(40);
      expect(new Set(sink.messages.map(toRecipient)).size).toBe(40);
      const rows = await digestRows(database);
      expect(rows.filter((r) => r.status === "sent")).toHaveLength(40);
    } finally {
      if (otherDb !== database) await otherDb.close();
    }
  });

  it("a crash between claim and send is recovered by another instance after the lease, without a duplicate", async () => {
    await addUser(database, "crash");
    await addNotification(database, "crash", "2025-06-10T07:00:00Z");
    const t = new Date("2025-06-10T08:00:00Z");
    // Instance A claims and leases, then dies before sending: exactly the state it leaves behind.
    const w = dueWindow("daily", "UTC", t);
    expect(await claimDueDigests(database, [{ timezone: "UTC", frequency: "daily", windowStart: w.start, scheduledFor: w.end }], t)).toBe(1);
    const leased = await leaseDueDigests(database, { now: t, leaseUntil: new Date(t.getTime() + LEASE_MS), owner: "instance-a", limit: 10 });
    expect(leased).toHaveLength(1);

    const b = service();
    // While A's lease holds, B neither claims again nor sends.
    expect(await b.runDue(new Date(t.getTime() + MIN))).toMatchObject({ claimed: 0, sent: 0 });
    expect(sink.messages).toHaveLength(0);
    // After the lease, B sends it, once, with the Message-ID derived from the digest id.
    expect(await b.runDue(new Date(t.getTime() + LEASE_MS + MIN))).toMatchObject({ claimed: 0, sent: 1 });
    expect(await b.runDue(new Date(t.getTime() + 2 * LEASE_MS))).toMatchObject({ claimed: 0, sent: 0 });
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]!.messageId).toBe(`<digest-${leased[0]!.id}@app.example.test>`);
    const [row] = await digestRows(database, "crash");
    expect(row).toMatchObject({ status: "sent", attempts: 2, notification_count: 1 });
  });

  it("after downtime, catches up the missed hourly windows with one digest holding everything since the last one", async () => {
    await addUser(database, "away", { frequency: "hourly" });
    await addNotification(database, "away", "2025-06-10T09:30:00Z");
    const s = service();
    expect(await s.runDue(new Date("2025-06-10T10:00:00Z"))).toMatchObject({ claimed: 1, sent: 1 });
    for (const hh of ["10", "11", "12", "13", "14"]) await addNotification(database, "away", `2025-06-10T${hh}:30:00Z`);
    // Down from 10:00 to 15:20: five windows closed unseen.
    expect(await s.runDue(new Date("2025-06-10T15:20:00Z"))).toMatchObject({ claimed: 1, sent: 1 });
    expect(await s.runDue(new Date("2025-06-10T15:40:00Z"))).toMatchObject({ claimed: 0, sent: 0 });
    const rows = await digestRows(database, "away");
    expect(rows.map((r) => [r.scheduled_for.toISOString(), r.notification_count])).toEqual([
      ["2025-06-10T10:00:00.000Z", 1],
      ["2025-06-10T15:00:00.000Z", 5],
    ]);
    expect(sink.messages.map((m) => m.subject)).toEqual(["You have 1 new notification", "You have 5 new notifications"]);
  });

  it("a notification created within a second of a window boundary appears in exactly one digest", async () => {
    await addUser(database, "edge", { frequency: "hourly" });
    const titles = ["t-0959-59.5", "t-1000-00.0", "t-1000-00.5", "t-1000-01.0"];
    const times = ["2025-06-10T09:59:59.500Z", "2025-06-10T10:00:00.000Z", "2025-06-10T10:00:00.500Z", "2025-06-10T10:00:01.000Z"];
    for (let i = 0; i < titles.length; i++) await addNotification(database, "edge", times[i]!, { title: titles[i]! });
    const s = service();
    await s.runDue(new Date("2025-06-10T10:00:01.000Z"));
    await s.runDue(new Date("2025-06-10T11:00:01.000Z"));
    expect(sink.messages).toHaveLength(2);
    for (const title of titles) {
      const holding = sink.messages.filter((m) => (m.text ?? "").includes(title));
      expect(holding, title).toHaveLength(1);
    }
    // The boundary instant itself belongs to the window that ends there.
    expect(sink.messages[0]!.text).toContain("t-1000-00.0");
  });

  it("initializeScheduledJobs runs the loop on its own and stop() awaits it", async () => {
    await addUser(database, "loop");
    await addNotification(database, "loop", "2025-06-10T07:00:00Z");
    const s = service(new ManualClock("2025-06-10T08:00:10Z"));
    await s.initializeScheduledJobs();
    await sink.waitFor(1);
    await s.stop();
    expect(toRecipient(sink.messages[0]!)).toBe("loop@example.test");
  });
});
