/**
 * A queue row's outcome is written only by the claim that sent it
 * (queue-sql.ts: locked_by and locked_until together name the claim). A
 * send that outlasts its lease lets the row be claimed again, also by the
 * same worker; the first claim's late outcome must not overwrite the second
 * claim's row (before, a late failure put the row back to pending under the
 * second send, whose success then could not be recorded, and the row went a
 * third time). And an e-mail that waited for an SMTP connection until its
 * lease was nearly over is not started: the row is handed on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Channel, type ChannelJob, EmailChannel, retryable } from "../../src/channels/index.js";
import { createMailer, unsubscribeKey } from "../../src/mail/index.js";
import { ManualClock } from "../../src/observability/index.js";
import { smtpFor, startSmtpSink, toRecipient } from "../digests/support.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { enqueue, makeWorker, queueRows } from "./harness.js";
import { seedNotification, seedUser } from "./support.js";

const LEASE_MS = 60_000;
const smsNow = { inApp: true, outOfApp: { sms: { mode: "now" as const } } };

/** An SMS channel whose sends finish when the test says, in any order. */
class HeldChannel implements Channel {
  readonly name = "sms" as const;
  readonly sends: { job: ChannelJob; succeed(): void; fail(err: Error): void }[] = [];
  private waiters: (() => void)[] = [];

  send(job: ChannelJob): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.sends.push({ job, succeed: resolve, fail: reject });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves once `n` sends have started. */
  async started(n: number): Promise<void> {
    while (this.sends.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
}

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
  const { worker } = makeWorker(db, { sms: channel }, clock, { leaseMs: LEASE_MS });
  const id = await seedNotification(db, { userId: "lc-user", title });
  await enqueue(db, { id, userId: "lc-user" }, smsNow, clock.now());
  const first = worker.runOnce();
  await channel.started(1);
  clock.advance(LEASE_MS + 1);
  const second = worker.runOnce();
  await channel.started(2);
  expect((await queueRows(db, id))[0]).toMatchObject({ status: "processing", attempts: 2 });
  return { clock, channel, worker, id, first, second };
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

  it("a late success of a send whose lease ran out is not recorded over the claim after it, which decides the row", async () => {
    const { channel, id, first, second } = await claimedTwice("2030-02-02T09:00:00Z", "late success");

    channel.sends[0]!.succeed();
    await first;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "processing", attempts: 2 });

    // The second claim's retry is written (it holds the row), with its backoff.
    channel.sends[1]!.fail(retryable("http_503", "provider down"));
    await second;
    const [row] = await queueRows(db, id);
    expect(row).toMatchObject({ status: "pending", attempts: 2 });
    expect(row!.last_error).toMatch(/^http_503/);
  });
});

describe(`an e-mail not started before its lease nears its end is handed on (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("the mailer's fence refuses it when a connection takes it; the row is due again at once, the attempt not counted, and the next claim sends it", async () => {
    const sink = await startSmtpSink();
    const mailer = createMailer({ ...smtpFor(sink), maxConnections: 1 });
    try {
      // The rows the tests above left (one pending, due later) are not this test's.
      await db.query("DELETE FROM notification_queue");
      const clock = new ManualClock(new Date("2030-02-03T09:00:00Z"));
      let waitedMs = 0;
      // The wait for a pooled connection, played by the clock: the real mailer asks the fence after it.
      const waiting = {
        send: (message: Parameters<typeof mailer.send>[0]) => {
          clock.advance(waitedMs);
          return mailer.send(message);
        },
      };
      const email = new EmailChannel({ mailer: waiting, appUrl: "https://app.example.test", unsubscribeKey: unsubscribeKey("x".repeat(32)) });
      const { worker } = makeWorker(db, { email }, clock, { leaseMs: LEASE_MS });
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

      // Just inside it, the next claim's send starts.
      waitedMs = 48_000;
      expect(await worker.runOnce()).toBe(1);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 1, last_error: null });
      expect(sink.messages.map(toRecipient)).toEqual(["lc@example.test"]);
    } finally {
      await mailer.close();
      await sink.close();
    }
  });
});
