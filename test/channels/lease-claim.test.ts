/**
 * A send that outlasts its lease lets its row be claimed again, also by the
 * same worker (queue-sql.ts: locked_by and locked_until together name a
 * claim). The first claim's late retry or give-up writes nothing over the
 * claim after it (before, a late failure put the row back to pending under
 * the second send, whose success then could not be recorded, and the row went
 * a third time); its late success is recorded, the provider took it, and the
 * later claim's outcome then writes nothing. A send that has not started
 * before its lease's last part (an e-mail waiting for an SMTP connection, a
 * read that stalled) is handed on, not started.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EmailChannel, retryable } from "../../src/channels/index.js";
import { unsubscribeKey } from "../../src/mail/index.js";
import { ManualClock } from "../../src/observability/index.js";
import { toRecipient } from "../digests/support.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { HeldChannel, claimTwice, enqueue, makeWorker, queueRows, waitingMailer, withSmtpMailer } from "./harness.js";
import { seedNotification, seedUser } from "./support.js";

const LEASE_MS = 60_000;
const smsNow = { inApp: true, outOfApp: { sms: { mode: "now" as const } } };

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
  await seedUser(db, { id: "lc-user", phone: "+15550002222", email: "lc@example.test" });
});
afterAll(async () => db?.cleanup());

/**
 * One SMS row, sent by a worker whose provider holds the send past the lease:
 * the row is due again and the same worker claims it again (a second send in flight).
 */
async function claimedTwice(at: string, title: string) {
  const clock = new ManualClock(new Date(at));
  const channel = new HeldChannel();
  const { worker, registry } = makeWorker(db, { sms: channel }, clock, { leaseMs: LEASE_MS });
  const id = await seedNotification(db, { userId: "lc-user", title });
  await enqueue(db, { id, userId: "lc-user" }, smsNow, clock.now());
  const { first, second } = await claimTwice(worker, channel, clock, LEASE_MS);
  expect((await queueRows(db, id))[0]).toMatchObject({ status: "processing", attempts: 2 });
  return { clock, channel, worker, registry, id, first, second };
}

describe(`a queue row's outcome belongs to its claim (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("a late failure of a send whose lease ran out leaves the row to the claim after it (the same worker's), whose success is recorded", async () => {
    const { clock, channel, worker, id, first, second } = await claimedTwice("2030-02-01T09:00:00Z", "slow provider");

    channel.sends[0]!.fail(retryable("http_503", "provider timed out"));
    await first;
    // The first claim's failure wrote nothing: the row is still the second claim's.
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "processing", attempts: 2 });

    channel.sends[1]!.succeed();
    await second;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 2, last_error: null });
    // Nothing is due any more, now or after any backoff: no third send.
    clock.advance(10 * LEASE_MS);
    expect(await worker.runOnce()).toBe(0);
    expect(channel.sends).toHaveLength(2);
  });

  it("a late success of a send whose lease ran out is recorded (the provider took it); the later claim's failure then writes nothing, and nothing goes again", async () => {
    const { clock, channel, worker, id, first, second } = await claimedTwice("2030-02-02T09:00:00Z", "late success");

    channel.sends[0]!.succeed();
    await first;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 2, last_error: null });

    channel.sends[1]!.fail(retryable("http_503", "provider down"));
    await second;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 2, last_error: null });
    clock.advance(10 * LEASE_MS);
    expect(await worker.runOnce()).toBe(0);
    expect(channel.sends).toHaveLength(2);
  });

  it("two claims of one row succeeding in one batch of sent marks count one send", async () => {
    const { channel, id, first, second, registry } = await claimedTwice("2030-02-04T09:00:00Z", "both succeed");
    // Both sends finish in one turn: their marks share one statement.
    channel.sends[0]!.succeed();
    channel.sends[1]!.succeed();
    await Promise.all([first, second]);
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent" });
    const sends = (await registry.getSingleMetric("herald_channel_sends_total")!.get()).values.reduce((n, v) => n + v.value, 0);
    expect(sends).toBe(1);
  });
});

describe(`an e-mail not started before its lease nears its end is handed on (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("the mailer's fence refuses it when a connection takes it; the row is due again at once, the attempt not counted, and the next claim sends it", async () => {
    await withSmtpMailer(async (mailer, sink) => {
      // The rows the tests above left (one pending, due later) are not this test's.
      await db.query("DELETE FROM notification_queue");
      const clock = new ManualClock(new Date("2030-02-03T09:00:00Z"));
      let waitedMs = 0;
      const email = new EmailChannel({ mailer: waitingMailer(mailer, clock, () => waitedMs), appUrl: "https://app.example.test", unsubscribeKey: unsubscribeKey("x".repeat(32)) });
      const { worker, registry } = makeWorker(db, { email }, clock, { leaseMs: LEASE_MS });
      const id = await seedNotification(db, { userId: "lc-user", title: "waited too long" });
      await enqueue(db, { id, userId: "lc-user" }, { inApp: true, outOfApp: { email: { mode: "now" as const } } }, clock.now());

      // Past four-fifths of the 60 s lease (its last 12 s): not started.
      waitedMs = 48_001;
      expect(await worker.runOnce()).toBe(1);
      const [handedOn] = await queueRows(db, id);
      expect(handedOn).toMatchObject({ status: "pending", attempts: 0 });
      expect(handedOn!.last_error).toMatch(/^fenced/);
      expect(new Date(handedOn!.next_retry_at).getTime()).toBe(clock.now().getTime());
      expect(sink.messages).toHaveLength(0);
      // Nothing was tried: no failure counted.
      expect((await registry.getSingleMetric("herald_channel_failures_total")!.get()).values).toEqual([]);

      // Just inside it, the next claim's send starts.
      waitedMs = 48_000;
      expect(await worker.runOnce()).toBe(1);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 1, last_error: null });
      expect(sink.messages.map(toRecipient)).toEqual(["lc@example.test"]);
    });
  });

  it("any channel's send not started in time is handed on: a read before it stalled past the lease's safe part", async () => {
    await db.query("DELETE FROM notification_queue");
    const clock = new ManualClock(new Date("2030-02-05T09:00:00Z"));
    // The recipients' read takes 48.001 s (played by the clock) after the claim.
    const stalling = Object.create(db) as typeof db;
    stalling.query = ((text: string, params?: unknown[]) => {
      if (text.includes("FROM users WHERE id = ANY")) clock.advance(48_001);
      return db.query(text, params);
    }) as typeof db.query;
    const channel = new HeldChannel();
    const { worker } = makeWorker(stalling, { sms: channel }, clock, { leaseMs: LEASE_MS });
    const id = await seedNotification(db, { userId: "lc-user", title: "slow read" });
    await enqueue(db, { id, userId: "lc-user" }, smsNow, clock.now());
    expect(await worker.runOnce()).toBe(1);
    expect(channel.sends).toHaveLength(0);
    const [row] = await queueRows(db, id);
    expect(row).toMatchObject({ status: "pending", attempts: 0 });
    expect(row!.last_error).toMatch(/^fenced/);
  });
});
