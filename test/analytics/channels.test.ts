/**
 * Analytics count every channel (issue 19.7, docs/delivery.md "Analytics"):
 * sent, delivered and failed per channel beside the headline, which still
 * counts each notification once per event type. Events are recorded as
 * Herald records them (the WebSocket path names "websocket" in metadata,
 * the queue worker the out-of-app channel, the digests their own id).
 *
 * NOW = 2024-03-15T12:07:00Z, not on a 15-minute boundary, so a window reads
 * whole rollup buckets and the firsts of its edges. Alice:
 *   N1 new_message      WebSocket sent (-2 h), acked (-2 h +1 s), e-mailed (-2 h +5 s), opened (-1 h)
 *   N2 booking_request  pushed (-3 h), SMS failed for good (-3 h)
 *   D1 a digest e-mail sent (-1 h), D2 a digest given up (-50 min)
 * Bob: N3 platform_update e-mailed (-2 min: inside the last, partial bucket)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rebuildRollups } from "../../src/analytics/index.js";
import { EmailChannel, LogSmsProvider, SmsChannel } from "../../src/channels/index.js";
import { createMailer, unsubscribeKey } from "../../src/mail/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";
import { EmailDigestService } from "../../src/digests/index.js";
import { drain, enqueue, makeWorker } from "../channels/harness.js";
import { type SmtpReceiver, seedNotification, seedUser, startSmtpReceiver } from "../channels/support.js";
import { addNotification, addUser, digestDeps, smtpFor, startSmtpSink } from "../digests/support.js";
import { type AnalyticsHarness, analyticsHarness, parseCsv, uuid } from "./fixtures.js";

const NOW = "2024-03-15T12:07:00.000Z";
const at = (ms: number) => new Date(Date.parse(NOW) - ms);
const M = 60_000;
const H = 60 * M;
const [N1, N2, N3] = [1, 2, 3].map(uuid) as [string, string, string];
const [D1, D2] = [101, 102].map(uuid) as [string, string];
const none = { sent: 0, delivered: 0, failed: 0 };

describe(`analytics per channel (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  let h: AnalyticsHarness;

  beforeAll(async () => {
    h = await analyticsHarness(NOW);
    await h.notification({ id: N1, userId: "alice", type: "new_message" });
    await h.notification({ id: N2, userId: "alice", type: "booking_request" });
    await h.notification({ id: N3, userId: "bob", type: "platform_update" });
    h.event(N1, "alice", "sent", at(2 * H), { channel: "websocket" });
    h.event(N1, "alice", "delivered", at(2 * H - 1000), { channel: "websocket" });
    h.event(N1, "alice", "sent", at(2 * H - 5000), { channel: "email" });
    h.event(N1, "alice", "opened", at(H));
    h.event(N2, "alice", "sent", at(3 * H), { channel: "push" });
    h.ingest.record({ notificationId: N2, userId: "alice", eventType: "failed", channel: "sms", metadata: { reason: "no_recipient" }, timestamp: at(3 * H) });
    h.ingest.record({ notificationId: D1, userId: "alice", eventType: "sent", channel: "digest", metadata: { frequency: "daily" }, timestamp: at(H) });
    h.ingest.record({ notificationId: D2, userId: "alice", eventType: "failed", channel: "digest", timestamp: at(50 * M) });
    h.event(N3, "bob", "sent", at(2 * M), { channel: "email" });
  });
  afterAll(async () => h.close());

  it("a notification e-mailed and pushed over WebSocket counts one send in the headline and one per channel", async () => {
    const m = await h.service.getNotificationMetrics(N1);
    expect(m).toMatchObject({ sent: 1, delivered: 1, opened: 1, deliveryRate: 100, openRate: 100, events: { sent: 2, delivered: 1 } });
    expect(m.byChannel).toEqual({ in_app: { sent: 1, delivered: 1, failed: 0 }, email: { sent: 1, delivered: 0, failed: 0 }, push: none, sms: none, digest: none });
  });

  it("a user's metrics: headline per notification, byChannel per channel (a failed SMS, digests per e-mail)", async () => {
    const m = await h.service.getUserMetrics("alice", 1);
    // N1 and N2 were sent (N2 by push; its SMS failed); digests are not notifications.
    expect(m).toMatchObject({ sent: 2, delivered: 1, opened: 1, deliveryRate: 50, openRate: 100 });
    expect(m.byChannel).toEqual({
      in_app: { sent: 1, delivered: 1, failed: 0 },
      email: { sent: 1, delivered: 0, failed: 0 },
      push: { sent: 1, delivered: 0, failed: 0 },
      sms: { sent: 0, delivered: 0, failed: 1 },
      digest: { sent: 1, delivered: 0, failed: 1 },
    });
  });

  it("platform overview: byChannel from the rollup and the edges; digest events stay out of the headline and the raw count", async () => {
    const o = await h.service.getOverview({ days: 1 });
    expect(o).toMatchObject({ sent: 3, delivered: 1, deliveryRate: 33.33 });
    // Raw events of notifications: N1 4, N2 2, N3 1 (the two digest events are not a notification's).
    expect(o.events).toBe(7);
    expect(o.byType.map((t) => t.type)).not.toContain("unknown");
    expect(o.byChannel.email).toEqual({ sent: 2, delivered: 0, failed: 0 });
    expect(o.byChannel.sms).toEqual({ sent: 0, delivered: 0, failed: 1 });
    expect(o.byChannel.digest).toEqual({ sent: 1, delivered: 0, failed: 1 });
    const all = await h.service.getOverview();
    expect(all.byChannel).toEqual(o.byChannel);
  });

  it("trends carry byChannel per bucket; ?channel narrows it to one channel; an unknown channel is a 400", async () => {
    const sum = (buckets: { byChannel: Record<string, { sent: number; failed: number } | undefined> }[], channel: string, outcome: "sent" | "failed") =>
      buckets.reduce((s, b) => s + (b.byChannel[channel]?.[outcome] ?? 0), 0);
    const platform = await h.service.getTrends({ interval: "day", days: 2, timeZone: "Europe/Paris" });
    expect(platform.channel).toBeNull();
    expect(sum(platform.buckets, "email", "sent")).toBe(2);
    expect(sum(platform.buckets, "in_app", "sent")).toBe(1);
    expect(sum(platform.buckets, "sms", "failed")).toBe(1);
    expect(platform.buckets.reduce((s, b) => s + b.sent, 0)).toBe(3);

    const email = await h.service.getTrends({ interval: "day", days: 2, channel: "email" });
    expect(email.channel).toBe("email");
    for (const b of email.buckets) expect(Object.keys(b.byChannel)).toEqual(["email"]);
    expect(sum(email.buckets, "email", "sent")).toBe(2);

    const alice = await h.service.getTrends({ interval: "week", days: 7, userId: "alice", channel: "digest" });
    expect(sum(alice.buckets, "digest", "sent")).toBe(1);
    expect(sum(alice.buckets, "digest", "failed")).toBe(1);

    await expect(h.service.getTrends({ channel: "fax" })).rejects.toMatchObject({ code: "HERALD_VALIDATION", fields: [{ field: "channel" }] });
  });

  it("the incremental rollups equal a rebuild from the raw events, row for row", async () => {
    const snapshot = async () => ({
      firsts: await h.db.query("SELECT notification_id, channel, outcome, user_id, first_at FROM analytics_channel_firsts ORDER BY 1, 2, 3"),
      rollup: await h.db.query("SELECT bucket, channel, sent, delivered, failed FROM analytics_channel_rollup ORDER BY 1, 2"),
      headline: await h.db.query("SELECT bucket, notification_type, sent, delivered, opened, events FROM analytics_rollup ORDER BY 1, 2"),
      headlineFirsts: await h.db.query("SELECT notification_id, event_type FROM analytics_firsts ORDER BY 1, 2"),
    });
    await h.ingest.flush();
    const live = await snapshot();
    expect(live.firsts.length).toBe(8);
    // No digest id and no `failed` among the headline's firsts.
    expect(live.headlineFirsts).not.toContainEqual(expect.objectContaining({ notification_id: D1 }));
    expect(live.headlineFirsts).not.toContainEqual(expect.objectContaining({ event_type: "failed" }));
    await rebuildRollups(h.db);
    expect(await snapshot()).toEqual(live);
  });

  it("the events export names each event's channel", async () => {
    let csv = "";
    for await (const chunk of h.service.exportData({ format: "csv", kind: "events", userId: "alice" })) csv += chunk;
    const rows = parseCsv(csv);
    expect(rows.filter((r) => r.notificationId === N1).map((r) => `${r.eventType}:${r.channel}`)).toEqual(["sent:in_app", "delivered:in_app", "sent:email", "opened:"]);
    expect(rows.find((r) => r.notificationId === N2 && r.eventType === "failed")?.channel).toBe("sms");
  });

  it("a failed event that names no channel is dropped at record(), never written", async () => {
    h.ingest.record({ notificationId: uuid(50), userId: "alice", eventType: "failed", timestamp: at(M) });
    await h.ingest.flush();
    expect(await h.db.query("SELECT 1 FROM analytics_events WHERE notification_id = $1", [uuid(50)])).toEqual([]);
  });
});

describe(`the queue worker's sends and final failures reach the channel counts (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  let h: AnalyticsHarness;
  let smtp: SmtpReceiver;
  let mailer: ReturnType<typeof createMailer>;

  beforeAll(async () => {
    h = await analyticsHarness("2030-01-07T10:00:00Z");
    smtp = await startSmtpReceiver();
    mailer = createMailer({ host: "127.0.0.1", port: smtp.port, secure: false, from: "Herald <herald@example.test>" });
  });
  afterAll(async () => {
    await mailer?.close();
    await smtp?.close();
    await h?.close();
  });

  it("an e-mail accepted by SMTP counts email.sent; an SMS to a user without a phone counts sms.failed", async () => {
    const now = h.clock.now();
    const clock = new ManualClock(now);
    const email = new EmailChannel({ mailer, appUrl: "https://app.example.test", unsubscribeKey: unsubscribeKey("x".repeat(32)) });
    const sms = new SmsChannel(new LogSmsProvider(silentLogger), "https://app.example.test");
    const { worker } = makeWorker(h.db, { email, sms }, clock, { analytics: h.ingest });
    await seedUser(h.db, { id: "carol", email: "carol@example.test", phone: null });
    const id = await seedNotification(h.db, { userId: "carol", createdAt: now });
    await enqueue(h.db, { id, userId: "carol" }, { inApp: true, outOfApp: { email: { mode: "now" }, sms: { mode: "now" } } }, now);
    expect(await drain(worker)).toBe(2);
    expect(smtp.mails).toHaveLength(1);
    const m = await h.service.getUserMetrics("carol", 1);
    expect(m).toMatchObject({ sent: 1, delivered: 0, deliveryRate: 0 });
    expect(m.byChannel.email).toEqual({ sent: 1, delivered: 0, failed: 0 });
    expect(m.byChannel.sms).toEqual({ sent: 0, delivered: 0, failed: 1 });
    const [failed] = await h.db.query<{ channel: string; metadata: Record<string, unknown> }>(
      "SELECT channel, metadata FROM analytics_events WHERE notification_id = $1 AND event_type = 'failed'",
      [id],
    );
    expect(failed).toEqual({ channel: "sms", metadata: { channel: "sms", reason: "no_recipient" } });
  });
});

describe(`digests count per e-mail on the digest channel (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("a digest accepted by SMTP counts digest.sent 1 whatever it carries; one refused for good counts digest.failed; the headline is untouched", async () => {
    const T = new Date("2025-06-10T08:00:00Z");
    const h = await analyticsHarness(T.toISOString());
    const sink = await startSmtpSink();
    const service = new EmailDigestService(smtpFor(sink), { ...digestDeps(h.db, h.clock), analytics: h.ingest });
    try {
      await addUser(h.db, "ann");
      await addUser(h.db, "bea", { email: "bad@example.test" });
      for (const user of ["ann", "ann", "ann", "bea"]) await addNotification(h.db, user, "2025-06-10T06:00:00Z");
      sink.refuse({ stage: "rcpt", code: 550, to: "bad@example.test" });
      expect(await service.runDue(T)).toMatchObject({ claimed: 2, sent: 1, failed: 1 });
      const ann = await h.service.getUserMetrics("ann", 1);
      expect(ann.byChannel.digest).toEqual({ sent: 1, delivered: 0, failed: 0 });
      expect(ann.sent).toBe(0);
      expect((await h.service.getUserMetrics("bea", 1)).byChannel.digest).toEqual({ sent: 0, delivered: 0, failed: 1 });
      expect((await h.service.getOverview()).byChannel.digest).toEqual({ sent: 1, delivered: 0, failed: 1 });
      // A test digest is counted apart (digest stats), not here.
      await service.sendTestDigest("ann", "daily");
      expect((await h.service.getUserMetrics("ann", 1)).byChannel.digest.sent).toBe(1);
    } finally {
      await service.stop();
      await sink.close();
      await h.close();
    }
  });
});
