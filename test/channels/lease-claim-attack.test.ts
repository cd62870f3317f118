/**
 * Attacks (helper-90) on the delivery worker's claims and fence: a queue
 * row's retry or give-up is written only by the claim that holds it
 * (locked_by and locked_until); a success is recorded whichever claim holds
 * the row, or over a later claim's give-up or cancellation, never over a
 * later send or a bundle put back to pending; a send not started before its
 * lease's last part is fenced and handed on, the attempt not counted. Real
 * database, real SMTP sink, real outbox directory. At 6e7a129 "[stale
 * success, same turn]", "[fence metric]" and "[late success after give-up]"
 * failed; a version between recording late successes on pending rows failed
 * "[bundle join]".
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnalyticsEventInput } from "../../src/analytics/events.js";
import { EmailChannel, permanent, retryable } from "../../src/channels/index.js";
import { claimDue, markFinal, markRetry } from "../../src/channels/queue-sql.js";
import { type Mailer, createMailer, unsubscribeKey } from "../../src/mail/index.js";
import { ManualClock } from "../../src/observability/index.js";
import { toRecipient } from "../digests/support.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { HeldChannel, claimTwice, enqueue, makeWorker, queueRows, waitingMailer, withSmtpMailer } from "./harness.js";
import { seedNotification, seedUser } from "./support.js";

const LEASE_MS = 60_000;
const mode = process.env.DATABASE_URL ? "postgres" : "pglite";
const smsNow = { inApp: true, outOfApp: { sms: { mode: "now" as const } } };
const emailNow = { inApp: true, outOfApp: { email: { mode: "now" as const } } };
const KEY = unsubscribeKey("k".repeat(32));

const emailChannel = (mailer: Mailer) => new EmailChannel({ mailer, appUrl: "https://app.example.test", unsubscribeKey: KEY });

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
  await seedUser(db, { id: "lca-user", phone: "+15550004444", email: "lca@example.test" });
  await seedUser(db, { id: "lca-bundle", phone: "+15550005555", email: "lca-bundle@example.test" });
});
afterAll(async () => db?.cleanup());

async function clearQueue() {
  await db.query("DELETE FROM notification_queue");
}

const statusOf = async (id: string) => (await db.query<{ delivery_status: string }>("SELECT delivery_status FROM notifications WHERE id = $1", [id]))[0]!.delivery_status;
const metricValue = async (registry: Registry, name: string, labels: string) => {
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, "m").exec(await registry.metrics());
  return m ? Number(m[1]) : 0;
};

/** One row claimed twice by the same worker (the first send outlasted its lease); both sends in flight. */
async function claimedTwice(at: string, opts: { inApp?: boolean; leaseMs?: number; firstAdvance?: number; analytics?: AnalyticsEventInput[]; registry?: Registry } = {}) {
  await clearQueue();
  const leaseMs = opts.leaseMs ?? LEASE_MS;
  const clock = new ManualClock(new Date(at));
  if (opts.firstAdvance) clock.advance(opts.firstAdvance);
  const channel = new HeldChannel("sms");
  const registry = opts.registry ?? new Registry();
  const { worker } = makeWorker(db, { sms: channel }, clock, {
    leaseMs,
    registry,
    ...(opts.analytics ? { analytics: { record: (e: AnalyticsEventInput) => void opts.analytics!.push(e) } } : {}),
  });
  const id = await seedNotification(db, { userId: "lca-user", title: `twice ${at}` });
  await enqueue(db, { id, userId: "lca-user" }, { inApp: opts.inApp ?? true, outOfApp: { sms: { mode: "now" as const } } }, clock.now());
  const { first, second } = await claimTwice(worker, channel, clock, leaseMs);
  expect((await queueRows(db, id))[0]).toMatchObject({ status: "processing", attempts: 2 });
  return { clock, channel, worker, id, first, second, registry };
}

describe(`claim identity under attack (${mode})`, () => {
  it("[precision] a clock with sub-ms parts and a fractional lease: each claim's locked_until round-trips, so the stale claim is refused and the current one is recorded", async () => {
    const { channel, id, first, second } = await claimedTwice("2030-03-01T09:00:00.123Z", { leaseMs: 60_000.7, firstAdvance: 0.6 });
    channel.sends[0]!.fail(retryable("http_503", "late"));
    await first;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "processing", attempts: 2 });
    channel.sends[1]!.succeed();
    await second;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 2, last_error: null });
  });

  it("[precision] claimDue's lockedUntil equals the stored locked_until to the millisecond (odd milliseconds), on this engine", async () => {
    await clearQueue();
    const at = new Date("2030-03-02T09:00:00.999Z");
    const id = await seedNotification(db, { userId: "lca-user", title: "precision" });
    await enqueue(db, { id, userId: "lca-user" }, smsNow, at);
    const [claim] = await claimDue(db, "worker-p", at, 1_234.5, 10);
    const [stored] = await db.query<{ same: boolean; us: string }>(
      "SELECT locked_until = $2::timestamptz AS same, extract(microseconds FROM locked_until)::text AS us FROM notification_queue WHERE id = $1",
      [claim!.id, claim!.lockedUntil],
    );
    expect(claim!.lockedUntil.getTime()).toBe(at.getTime() + 1_234);
    expect(stored!.same).toBe(true);
    expect(await markRetry(db, claim!, "worker-p", at, at, "x", [], true)).toBe(true);
  });

  it("[cancel/quiet] a stale claim's cancellation (markFinal 'cancelled') and quiet-hours deferral (uncounted markRetry) are refused and give back no attempt; the current claim's are written", async () => {
    await clearQueue();
    const t0 = new Date("2030-03-03T09:00:00Z");
    const id = await seedNotification(db, { userId: "lca-user", title: "cancel me" });
    await enqueue(db, { id, userId: "lca-user" }, smsNow, t0);
    const [c1] = await claimDue(db, "worker-1", t0, LEASE_MS, 10);
    const t1 = new Date(t0.getTime() + LEASE_MS + 1);
    const [c2] = await claimDue(db, "worker-1", t1, LEASE_MS, 10);
    expect(c2!.id).toBe(c1!.id);
    expect(await markFinal(db, c1!, "worker-1", t1, "cancelled", "cancelled: read", [])).toBe(false);
    expect(await markRetry(db, c1!, "worker-1", t1, new Date(t1.getTime() + 3_600_000), "held: quiet", [], true)).toBe(false);
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "processing", attempts: 2, last_error: null });
    expect(await markRetry(db, c2!, "worker-1", t1, new Date(t1.getTime() + 3_600_000), "held: quiet", [], true)).toBe(true);
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "pending", attempts: 1 });
  });

  it("[stale give-up] a late permanent failure after the next claim already sent the row: row stays sent, notification not failed, no 'failed' event, no give-up counted", async () => {
    const events: AnalyticsEventInput[] = [];
    const { channel, id, first, second, registry } = await claimedTwice("2030-03-04T09:00:00Z", { inApp: false, analytics: events });
    channel.sends[1]!.succeed();
    await second;
    channel.sends[0]!.fail(permanent("http_400", "bad number"));
    await first;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", last_error: null });
    expect(await statusOf(id)).toBe("sent");
    expect(events.map((e) => e.eventType)).toEqual(["sent"]);
    expect(await metricValue(registry, "herald_queue_failed_total", 'channel="sms"')).toBe(0);
  });

  it("[stale success, separate turns] the stale claim's late success, then the current claim's: the row is sent and counted once (one 'sent' event, one send metric)", async () => {
    const events: AnalyticsEventInput[] = [];
    const { channel, id, first, second, registry } = await claimedTwice("2030-03-05T09:00:00Z", { analytics: events });
    channel.sends[0]!.succeed();
    await first;
    channel.sends[1]!.succeed();
    await second;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent" });
    expect(events.filter((e) => e.eventType === "sent")).toHaveLength(1);
    expect(await metricValue(registry, "herald_channel_sends_total", 'channel="sms"')).toBe(1);
  });

  it("[stale success, same turn] both claims' successes batched in one sent-mark statement: the row is counted once (one 'sent' event, one send metric)", async () => {
    const events: AnalyticsEventInput[] = [];
    const { channel, id, first, second, registry } = await claimedTwice("2030-03-06T09:00:00Z", { analytics: events });
    // Both providers answer in the same turn: one markSent statement carries both marks of the row.
    channel.sends[0]!.succeed();
    channel.sends[1]!.succeed();
    await Promise.all([first, second]);
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent" });
    expect(events.filter((e) => e.eventType === "sent")).toHaveLength(1);
    expect(await metricValue(registry, "herald_channel_sends_total", 'channel="sms"')).toBe(1);
  });
});

describe(`a late success that the next claim's verdict hides (${mode})`, () => {
  it("[late success after give-up] the provider took the stale claim's send after the next claim gave up: the notification (in-app off) is not left 'failed' (SPEC delivery rule 5: a success moves failed to sent)", async () => {
    const { channel, id, first, second } = await claimedTwice("2030-03-13T09:00:00Z", { inApp: false });
    channel.sends[1]!.fail(permanent("http_400", "the second send refused"));
    await second;
    expect((await queueRows(db, id))[0]).toMatchObject({ status: "failed" });
    expect(await statusOf(id)).toBe("failed");
    channel.sends[0]!.succeed();
    await first;
    // The first send reached the user: the notification was sent.
    expect(await statusOf(id)).toBe("sent");
  });
});

describe(`bundles and a stale claim (${mode})`, () => {
  const hourAt = new Date("2030-03-07T11:00:00Z");

  async function bundleOfTwo(channelName: "sms" | "email", start: Date) {
    await clearQueue();
    const ids = [await seedNotification(db, { userId: "lca-bundle", title: "b1" }), await seedNotification(db, { userId: "lca-bundle", title: "b2" })];
    for (const id of ids) await enqueue(db, { id, userId: "lca-bundle" }, { inApp: true, outOfApp: { [channelName]: { mode: "hourly", at: hourAt } } }, start);
    const rows = await db.query<{ id: string; status: string; attempts: number; last_error: string | null; next_retry_at: Date; mode: string }>(
      "SELECT id, status, attempts, last_error, next_retry_at, payload->>'mode' AS mode FROM notification_queue WHERE user_id = 'lca-bundle' ORDER BY created_at, id",
    );
    expect(rows.filter((r) => r.mode === "bundle")).toHaveLength(1);
    return ids;
  }
  const bundleRows = () =>
    db.query<{ status: string; attempts: number; last_error: string | null; next_retry_at: Date; mode: string }>(
      "SELECT status, attempts, last_error, next_retry_at, payload->>'mode' AS mode FROM notification_queue WHERE user_id = 'lca-bundle' ORDER BY payload->>'mode', id",
    );

  it("[bundle] a stale bundle claim's late retryable and permanent failures leave the members held; the current claim sends them all", async () => {
    const start = new Date("2030-03-07T10:10:00Z");
    const ids = await bundleOfTwo("sms", start);
    const clock = new ManualClock(hourAt);
    const channel = new HeldChannel("sms");
    const { worker } = makeWorker(db, { sms: channel }, clock, { leaseMs: LEASE_MS });
    const { first, second } = await claimTwice(worker, channel, clock, LEASE_MS);
    channel.sends[0]!.fail(permanent("http_400", "late verdict of a stale claim"));
    await first;
    let rows = await bundleRows();
    expect(rows.filter((r) => r.mode === "member").map((r) => r.status)).toEqual(["held", "held"]);
    expect(rows.find((r) => r.mode === "bundle")).toMatchObject({ status: "processing", attempts: 2 });
    channel.sends[1]!.succeed();
    await second;
    rows = await bundleRows();
    expect(rows.map((r) => r.status)).toEqual(["sent", "sent", "sent"]);
    for (const id of ids) expect(await statusOf(id)).toBe("sent");
    expect(channel.sends[1]!.job.notifications.map((n) => n.id).sort()).toEqual([...ids].sort());
  });

  it("[bundle join] a member that joins a bundle the later claim put back to pending is not left 'held' when the stale claim's late success lands", async () => {
    const ids = await bundleOfTwo("sms", new Date("2030-03-07T10:10:00Z"));
    const clock = new ManualClock(hourAt);
    const channel = new HeldChannel("sms");
    const { worker } = makeWorker(db, { sms: channel }, clock, { leaseMs: LEASE_MS });
    const { first, second } = await claimTwice(worker, channel, clock, LEASE_MS);
    channel.sends[1]!.fail(retryable("http_503", "provider down"));
    await second;
    expect((await bundleRows()).find((r) => r.mode === "bundle")).toMatchObject({ status: "pending" });
    // A member for the same hour joins the pending bundle (a slow enqueue whose decision was made before the hour).
    const late = await seedNotification(db, { userId: "lca-bundle", title: "b3 joined late" });
    await enqueue(db, { id: late, userId: "lca-bundle" }, { inApp: true, outOfApp: { sms: { mode: "hourly", at: hourAt } } }, clock.now());
    const [joined] = await db.query<{ status: string; bundle: string | null }>("SELECT status, payload->>'bundleId' AS bundle FROM notification_queue WHERE notification_id = $1", [late]);
    expect(joined).toMatchObject({ status: "held" });
    expect(joined!.bundle).not.toBeNull();
    channel.sends[0]!.succeed();
    await first;
    channel.auto = true;
    clock.advance(10 * LEASE_MS);
    while ((await worker.runOnce()) > 0) clock.advance(10 * LEASE_MS);
    // The late member went out in some bundle send, or is still due: never stranded under a bundle already sent.
    const [after] = await db.query<{ status: string }>("SELECT status FROM notification_queue WHERE notification_id = $1", [late]);
    const carried = channel.sends.some((s) => s.job.notifications.some((n) => n.id === late));
    expect({ status: after!.status, carried }).toEqual({ status: "sent", carried: true });
    for (const id of ids) expect(await statusOf(id)).toBe("sent");
  });

  it("[fenced bundle] an e-mail bundle fenced is handed on with its members (attempt not counted, due now); the next claim sends one mail with both", async () => {
    await withSmtpMailer(async (mailer, sink) => {
      const ids = await bundleOfTwo("email", new Date("2030-03-07T10:10:00Z"));
      const clock = new ManualClock(hourAt);
      let waited = 48_001;
      const { worker } = makeWorker(db, { email: emailChannel(waitingMailer(mailer, clock, () => waited)) }, clock, { leaseMs: LEASE_MS });
      expect(await worker.runOnce()).toBe(1);
      const rows = await bundleRows();
      expect(rows.find((r) => r.mode === "bundle")).toMatchObject({ status: "pending", attempts: 0 });
      expect(rows.find((r) => r.mode === "bundle")!.last_error).toMatch(/^fenced/);
      for (const m of rows.filter((r) => r.mode === "member")) {
        expect(m).toMatchObject({ status: "held", attempts: 0 });
        expect(new Date(m.next_retry_at).getTime()).toBe(clock.now().getTime());
      }
      expect(sink.messages).toHaveLength(0);
      waited = 0;
      expect(await worker.runOnce()).toBe(1);
      expect((await bundleRows()).map((r) => r.status)).toEqual(["sent", "sent", "sent"]);
      expect((await bundleRows()).find((r) => r.mode === "bundle")).toMatchObject({ attempts: 1 });
      expect(sink.messages.map(toRecipient)).toEqual(["lca-bundle@example.test"]);
      for (const id of ids) expect(await statusOf(id)).toBe("sent");
    });
  });
});

describe(`the fence under attack (${mode})`, () => {
  it("[fence bookkeeping] a fenced send records no analytics event, no send and no give-up; the row is not failed", async () => {
    await clearQueue();
    await withSmtpMailer(async (mailer) => {
      const clock = new ManualClock(new Date("2030-03-08T09:00:00Z"));
      const events: AnalyticsEventInput[] = [];
      const registry = new Registry();
      const { worker } = makeWorker(db, { email: emailChannel(waitingMailer(mailer, clock, () => 48_001)) }, clock, {
        leaseMs: LEASE_MS,
        registry,
        analytics: { record: (e) => void events.push(e) },
      });
      const id = await seedNotification(db, { userId: "lca-user", title: "fenced bookkeeping" });
      await enqueue(db, { id, userId: "lca-user" }, emailNow, clock.now());
      expect(await worker.runOnce()).toBe(1);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "pending", attempts: 0 });
      expect(events).toHaveLength(0);
      expect(await metricValue(registry, "herald_channel_sends_total", 'channel="email"')).toBe(0);
      expect(await metricValue(registry, "herald_queue_failed_total", 'channel="email"')).toBe(0);
      expect(await statusOf(id)).toBe("pending");
    });
  });

  it("[fence metric] a fenced send (nothing attempted, 'the attempt not counted') is not counted in herald_channel_failures_total ('send attempts that failed')", async () => {
    await clearQueue();
    await withSmtpMailer(async (mailer) => {
      const clock = new ManualClock(new Date("2030-03-09T09:00:00Z"));
      const registry = new Registry();
      const { worker } = makeWorker(db, { email: emailChannel(waitingMailer(mailer, clock, () => 48_001)) }, clock, { leaseMs: LEASE_MS, registry });
      const id = await seedNotification(db, { userId: "lca-user", title: "fenced metric" });
      await enqueue(db, { id, userId: "lca-user" }, emailNow, clock.now());
      expect(await worker.runOnce()).toBe(1);
      expect((await queueRows(db, id))[0]!.last_error).toMatch(/^fenced/);
      expect(await metricValue(registry, "herald_channel_failures_total", 'channel="email",kind="retryable"')).toBe(0);
    });
  });

  it("[spin] a row fenced again and again loses nothing and counts no attempt; once the pool frees it goes exactly once", async () => {
    await clearQueue();
    await withSmtpMailer(async (mailer, sink) => {
      const clock = new ManualClock(new Date("2030-03-10T09:00:00Z"));
      let waited = 48_001;
      const { worker } = makeWorker(db, { email: emailChannel(waitingMailer(mailer, clock, () => waited)) }, clock, { leaseMs: LEASE_MS });
      const id = await seedNotification(db, { userId: "lca-user", title: "spin" });
      await enqueue(db, { id, userId: "lca-user" }, emailNow, clock.now());
      for (let i = 0; i < 7; i++) {
        expect(await worker.runOnce()).toBe(1);
        expect((await queueRows(db, id))[0]).toMatchObject({ status: "pending", attempts: 0 });
      }
      expect(sink.messages).toHaveLength(0);
      waited = 0;
      expect(await worker.runOnce()).toBe(1);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 1 });
      expect(await worker.runOnce()).toBe(0);
      expect(sink.messages).toHaveLength(1);
    });
  });

  it("[outbox] the outbox mailer honours the fence: no .eml written for a fenced send, the row handed on; the next claim writes exactly one", async () => {
    await clearQueue();
    const dir = mkdtempSync(path.join(tmpdir(), "herald-lca-outbox-"));
    const outboxDir = path.join(dir, "outbox");
    const mailer = createMailer({ outboxDir, from: "Herald <noreply@example.test>" });
    const files = () => {
      try {
        return readdirSync(outboxDir);
      } catch {
        return [];
      }
    };
    try {
      const clock = new ManualClock(new Date("2030-03-11T09:00:00Z"));
      let waited = 48_001;
      const { worker } = makeWorker(db, { email: emailChannel(waitingMailer(mailer, clock, () => waited)) }, clock, { leaseMs: LEASE_MS });
      const id = await seedNotification(db, { userId: "lca-user", title: "outbox" });
      await enqueue(db, { id, userId: "lca-user" }, emailNow, clock.now());
      expect(await worker.runOnce()).toBe(1);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "pending", attempts: 0 });
      expect(files()).toHaveLength(0);
      waited = 0;
      expect(await worker.runOnce()).toBe(1);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 1 });
      expect(files()).toHaveLength(1);
    } finally {
      await mailer.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("[two workers] worker-1's e-mail waits past its lease; worker-2 takes the row over and sends it; worker-1's send, reaching a connection, is fenced and writes nothing: one mail", async () => {
    await clearQueue();
    await withSmtpMailer(async (mailer, sink) => {
      const clock = new ManualClock(new Date("2030-03-12T09:00:00Z"));
      let entered!: () => void;
      const w1Waiting = new Promise<void>((r) => (entered = r));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      // worker-1's message stuck in the pool's queue (played by a gate), then handed to the real pool, which asks the fence.
      const stuck = {
        kind: "smtp",
        close: async () => undefined,
        send: async (message: Parameters<Mailer["send"]>[0]) => {
          entered();
          await gate;
          return mailer.send(message);
        },
      } as Mailer;
      const registry1 = new Registry();
      const { worker: w1 } = makeWorker(db, { email: emailChannel(stuck) }, clock, { workerId: "worker-1", leaseMs: LEASE_MS, registry: registry1 });
      const { worker: w2 } = makeWorker(db, { email: emailChannel(mailer) }, clock, { workerId: "worker-2", leaseMs: LEASE_MS });
      const id = await seedNotification(db, { userId: "lca-user", title: "taken over" });
      await enqueue(db, { id, userId: "lca-user" }, emailNow, clock.now());
      const round1 = w1.runOnce();
      await w1Waiting;
      clock.advance(LEASE_MS + 1);
      expect(await w2.runOnce()).toBe(1);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 2 });
      release();
      await round1;
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 2, last_error: null });
      expect(sink.messages.map(toRecipient)).toEqual(["lca@example.test"]);
      expect(await metricValue(registry1, "herald_channel_sends_total", 'channel="email"')).toBe(0);
    });
  });
});
