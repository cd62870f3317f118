/**
 * A holder that stalled past its lease and resumes with its old batch in
 * hand: the claim check before each send finds the digest taken over, so it
 * sends nothing, stores nothing over the new holder's message and leaves the
 * outcome alone. Driven clock, real database, real SMTP on loopback.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { claimDueDigests, leaseDueDigests } from "../../src/digests/claim.js";
import { type DeliveryContext, deliverDigests, digestMetrics } from "../../src/digests/delivery.js";
import { EmailDigestService, LEASE_MS, digestTuning, dueWindow } from "../../src/digests/index.js";
import { type Mailer, createMailer } from "../../src/mail/index.js";
import { ManualClock, createMetricsRegistry, silentLogger } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { APP_URL, type SmtpSink, addNotification, addUser, digestDeps, resetDigestTables, smtpFor, startSmtpSink } from "./support.js";

const MIN = 60_000;
const T = new Date("2025-06-10T08:00:00Z");

describe("a stale digest holder", () => {
  let database: TestDatabase;
  let sink: SmtpSink;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(() => database.cleanup());
  beforeEach(async () => {
    await resetDigestTables(database);
    sink = await startSmtpSink();
  });
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    await sink.close();
  });

  /** What instance "stale-a" uses to deliver, at the clock's time. */
  function holder(clock: ManualClock): DeliveryContext {
    let mailer: Mailer | undefined;
    closers.push(async () => mailer?.close());
    return {
      db: database,
      mailer: () => (mailer ??= createMailer(smtpFor(sink))),
      clock,
      logger: silentLogger,
      metrics: digestMetrics(createMetricsRegistry(false)),
      appUrl: APP_URL,
      unsubscribeUrl: (userId) => `${APP_URL}/api/unsubscribe?user=${userId}`,
      from: "Herald <noreply@example.test>",
      owner: "stale-a",
      tuning: digestTuning({}),
      timeZones: async (ids) => new Map(ids.map((id) => [id, "UTC"])),
    };
  }

  async function claimAndLease(owner: string) {
    const w = dueWindow("daily", "UTC", T);
    await claimDueDigests(database, [{ timezone: "UTC", frequency: "daily", windowStart: w.start, scheduledFor: w.end }], T);
    return leaseDueDigests(database, { now: T, leaseUntil: new Date(T.getTime() + LEASE_MS), owner, limit: 10 });
  }

  it("resuming after a takeover, it sends nothing and overwrites neither the stored message nor the outcome", async () => {
    for (const u of ["ann", "ben"]) {
      await addUser(database, u);
      await addNotification(database, u, "2025-06-10T07:00:00Z", { title: `for ${u}` });
    }
    // A leases both and stalls before rendering anything.
    const batch = await claimAndLease("stale-a");
    expect(batch).toHaveLength(2);

    // B takes over after the lease and sends both.
    const b = new EmailDigestService(smtpFor(sink), digestDeps(database, new ManualClock(T)));
    closers.push(() => b.stop());
    expect(await b.runDue(new Date(T.getTime() + LEASE_MS + MIN))).toMatchObject({ sent: 2 });
    const before = await database.query("SELECT id, status, html_content, message_id, leased_by, sent_at FROM email_digests ORDER BY id");

    // A resumes with its old rows, its clock saying the lease still holds (skewed, or the stall
    // not yet noticed): the claim check in the database fails for both.
    const clock = new ManualClock(new Date(T.getTime() + MIN));
    expect(await deliverDigests(holder(clock), batch)).toMatchObject({ sent: 0, failed: 0, retrying: 0, abandoned: 2 });
    expect(sink.messages).toHaveLength(2);
    expect(await database.query("SELECT id, status, html_content, message_id, leased_by, sent_at FROM email_digests ORDER BY id")).toEqual(before);
  });

  it("resuming while the new holder has not sent yet, it does not send in its place", async () => {
    await addUser(database, "cat");
    await addNotification(database, "cat", "2025-06-10T07:00:00Z");
    const stale = await claimAndLease("stale-a");
    // Taken over by another instance (leased, not yet sent) after A's lease ran out.
    const later = new Date(T.getTime() + LEASE_MS + MIN);
    const taken = await leaseDueDigests(database, { now: later, leaseUntil: new Date(later.getTime() + LEASE_MS), owner: "instance-b", limit: 10 });
    expect(taken).toHaveLength(1);

    // A's own clock says its lease holds; the database says the digest is B's.
    expect(await deliverDigests(holder(new ManualClock(new Date(T.getTime() + MIN))), stale)).toMatchObject({ sent: 0, abandoned: 1 });
    expect(sink.messages).toHaveLength(0);
    const [row] = await database.query<{ status: string; leased_by: string; html_content: string | null }>(
      "SELECT status, leased_by, html_content FROM email_digests",
    );
    expect(row).toEqual({ status: "pending", leased_by: "instance-b", html_content: null });
  });

  it("a holder that was not taken over sends on resuming, once", async () => {
    await addUser(database, "dan");
    await addNotification(database, "dan", "2025-06-10T07:00:00Z");
    const batch = await claimAndLease("stale-a");
    // Stalled past its lease, but nobody took the digest: it is still A's to send.
    expect(await deliverDigests(holder(new ManualClock(new Date(T.getTime() + 2 * LEASE_MS))), batch)).toMatchObject({ sent: 1 });
    expect(sink.messages).toHaveLength(1);
    const [row] = await database.query<{ status: string }>("SELECT status FROM email_digests");
    expect(row!.status).toBe("sent");
  });
});
