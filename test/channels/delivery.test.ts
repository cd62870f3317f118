import { afterAll, beforeAll, describe, expect, it } from "vitest";
import webpush from "web-push";
import { EmailChannel, PushChannel, SmsChannel, WebhookSmsProvider, savePushSubscription } from "../../src/channels/index.js";
import { createMailer, unsubscribeKey } from "../../src/mail/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { drain, enqueue, makeWorker, queueRows } from "./harness.js";
import { WEBHOOK_SECRET, seedNotification, seedUser, startPushService, startSmsReceiver, startSmtpReceiver } from "./support.js";

const APP_URL = "https://app.example.test";
const UNSUBSCRIBE_KEY = unsubscribeKey("x".repeat(32));
const now = () => new Date("2030-01-07T10:00:00Z");
const smsNow = { inApp: true, outOfApp: { sms: { mode: "now" as const } } };

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
  await seedUser(db, { id: "u-sms", phone: "+15550001111", email: "sms@example.test" });
});
afterAll(async () => db?.cleanup());

describe(`SMS webhook channel (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("POSTs {to, title, message, notificationId} to the webhook and marks the row sent", async () => {
    const receiver = await startSmsReceiver();
    try {
      const clock = new ManualClock(now());
      const { worker, registry } = makeWorker(db, { sms: new SmsChannel(new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), APP_URL) }, clock);
      const id = await seedNotification(db, { userId: "u-sms", title: "New booking", message: "Alice booked Friday" });
      await enqueue(db, { id, userId: "u-sms" }, smsNow, clock.now());
      expect(await drain(worker)).toBe(1);
      expect(receiver.delivered).toEqual([{ to: "+15550001111", title: "New booking", message: "Alice booked Friday", notificationId: id }]);
      const [row] = await queueRows(db, id);
      expect(row).toMatchObject({ status: "sent", attempts: 1, last_error: null });
      expect(await registry.metrics()).toMatch(/herald_channel_sends_total\{channel="sms"\} 1/);
    } finally {
      await receiver.close();
    }
  });

  it("a receiver failing three times then succeeding gives exactly one delivery, after backoff", async () => {
    const receiver = await startSmsReceiver((n) => (n < 3 ? 503 : 200));
    try {
      const clock = new ManualClock(now());
      const { worker, registry } = makeWorker(db, { sms: new SmsChannel(new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), APP_URL) }, clock);
      const id = await seedNotification(db, { userId: "u-sms", title: "Flaky" });
      await enqueue(db, { id, userId: "u-sms" }, smsNow, clock.now());
      for (let attempt = 1; attempt <= 3; attempt++) {
        expect(await worker.runOnce()).toBe(1);
        const [row] = await queueRows(db, id);
        expect(row).toMatchObject({ status: "pending", attempts: attempt });
        expect(row!.last_error).toMatch(/^http_503/);
        // Not due again until the backoff (1 s, 2 s, 4 s with jitter factor 1) has passed.
        expect(await worker.runOnce()).toBe(0);
        expect(new Date(row!.next_retry_at).getTime() - clock.now().getTime()).toBe(1000 * 2 ** (attempt - 1));
        clock.set(row!.next_retry_at);
      }
      expect(await drain(worker)).toBe(1);
      expect(receiver.requests).toHaveLength(4);
      expect(receiver.delivered).toHaveLength(1);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 4, last_error: null });
      // Nothing is ever sent again.
      clock.advance(3600_000);
      expect(await drain(worker)).toBe(0);
      expect(receiver.delivered).toHaveLength(1);
      const metrics = await registry.metrics();
      expect(metrics).toMatch(/herald_channel_failures_total\{channel="sms",kind="retryable"\} 3/);
      expect(metrics).toMatch(/herald_channel_sends_total\{channel="sms"\} 1/);
    } finally {
      await receiver.close();
    }
  });

  it("a receiver that never recovers ends in failed after max_attempts, and an out-of-app-only notification becomes failed", async () => {
    const receiver = await startSmsReceiver(() => 502);
    try {
      const clock = new ManualClock(now());
      const { worker, registry } = makeWorker(db, { sms: new SmsChannel(new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), APP_URL) }, clock);
      const id = await seedNotification(db, { userId: "u-sms", title: "Doomed" });
      await enqueue(db, { id, userId: "u-sms" }, { inApp: false, outOfApp: { sms: { mode: "now" } } }, clock.now());
      for (let i = 0; i < 10; i++) {
        await drain(worker);
        clock.advance(120_000);
      }
      expect(receiver.requests).toHaveLength(5);
      const [row] = await queueRows(db, id);
      expect(row).toMatchObject({ status: "failed", attempts: 5 });
      expect(row!.last_error).toMatch(/^http_502: SMS webhook answered HTTP 502/);
      const [n] = await db.query<{ delivery_status: string }>("SELECT delivery_status FROM notifications WHERE id = $1", [id]);
      expect(n!.delivery_status).toBe("failed");
      expect(await registry.metrics()).toMatch(/herald_queue_failed_total\{channel="sms"\} 1/);
    } finally {
      await receiver.close();
    }
  });

  it("a 4xx other than 429 is permanent: one attempt, failed, and an in-app notification keeps its status", async () => {
    const receiver = await startSmsReceiver(() => 422);
    try {
      const clock = new ManualClock(now());
      const { worker } = makeWorker(db, { sms: new SmsChannel(new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), APP_URL) }, clock);
      const id = await seedNotification(db, { userId: "u-sms" });
      await enqueue(db, { id, userId: "u-sms" }, smsNow, clock.now());
      await drain(worker);
      clock.advance(3600_000);
      await drain(worker);
      expect(receiver.requests).toHaveLength(1);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "failed", attempts: 1 });
      const [n] = await db.query<{ delivery_status: string }>("SELECT delivery_status FROM notifications WHERE id = $1", [id]);
      expect(n!.delivery_status).toBe("pending");
    } finally {
      await receiver.close();
    }
  });

  it("a user without a phone number fails permanently without calling the webhook", async () => {
    const receiver = await startSmsReceiver();
    try {
      await seedUser(db, { id: "u-nophone" });
      const clock = new ManualClock(now());
      const { worker } = makeWorker(db, { sms: new SmsChannel(new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), APP_URL) }, clock);
      const id = await seedNotification(db, { userId: "u-nophone" });
      await enqueue(db, { id, userId: "u-nophone" }, smsNow, clock.now());
      await drain(worker);
      expect(receiver.requests).toHaveLength(0);
      const [row] = await queueRows(db, id);
      expect(row).toMatchObject({ status: "failed", attempts: 1 });
      expect(row!.last_error).toMatch(/^no_recipient/);
    } finally {
      await receiver.close();
    }
  });

  it("a row whose worker died is claimed again once its lease expires, and sent once", async () => {
    const receiver = await startSmsReceiver();
    try {
      const clock = new ManualClock(now());
      const sms = new SmsChannel(new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), APP_URL);
      const id = await seedNotification(db, { userId: "u-sms", title: "Lease" });
      await enqueue(db, { id, userId: "u-sms" }, smsNow, clock.now());
      // A worker claims the row and then dies before sending.
      const { claimDue } = await import("../../src/channels/queue-sql.js");
      const claimed = await claimDue(db, "dead-worker", clock.now(), 60_000, 10);
      expect(claimed.map((r) => r.notificationId)).toContain(id);
      const { worker } = makeWorker(db, { sms }, clock, { workerId: "worker-2" });
      expect(await drain(worker)).toBe(0);
      clock.advance(60_001);
      expect(await drain(worker)).toBe(1);
      expect(receiver.delivered.map((d) => d.notificationId)).toEqual([id]);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 2 });
    } finally {
      await receiver.close();
    }
  });
});

describe("e-mail channel over SMTP", () => {
  it("sends a single-notification e-mail with escaped HTML, a text part and a link under APP_URL", async () => {
    const smtp = await startSmtpReceiver();
    const mailer = createMailer({ host: "127.0.0.1", port: smtp.port, secure: false, ignoreTLS: true, from: "Herald <noreply@herald.test>" });
    try {
      await seedUser(db, { id: "u-mail", email: "provider@example.test" });
      const clock = new ManualClock(now());
      const { worker } = makeWorker(db, { email: new EmailChannel({ mailer, appUrl: APP_URL, unsubscribeKey: UNSUBSCRIBE_KEY }) }, clock);
      const id = await seedNotification(db, {
        userId: "u-mail",
        title: `Payment <script>alert("x")</script>`,
        message: "You received 40 € & a tip",
        type: "payment_received",
        actionUrl: "/payments/42",
      });
      await enqueue(db, { id, userId: "u-mail" }, { inApp: true, outOfApp: { email: { mode: "now" } } }, clock.now());
      expect(await drain(worker)).toBe(1);
      expect(smtp.mails).toHaveLength(1);
      const mail = smtp.mails[0]!;
      expect(mail.subject).toBe(`Payment <script>alert("x")</script>`);
      expect((mail.to as { text: string }).text).toBe("provider@example.test");
      expect(mail.html).toContain("Payment &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
      expect(mail.html).not.toContain("<script>");
      expect(mail.html).toContain("You received 40 € &amp; a tip");
      expect(mail.html).toContain(`href="${APP_URL}/payments/42"`);
      expect(mail.text).toContain(`${APP_URL}/payments/42`);
      expect(mail.text).toContain("You received 40 € & a tip");
      const [row] = await queueRows(db, id);
      expect(mail.messageId).toBe(`<${row!.id}@app.example.test>`);
      expect(mail.headers.get("x-herald-notification")).toBe(id);
      expect(row!.status).toBe("sent");
    } finally {
      await mailer.close();
      await smtp.close();
    }
  });

  it("a 550 for the mailbox is permanent: one attempt, failed, never retried", async () => {
    const smtp = await startSmtpReceiver(() => ({ code: 550, message: "No such user" }));
    const mailer = createMailer({ host: "127.0.0.1", port: smtp.port, secure: false, ignoreTLS: true, from: "noreply@herald.test" });
    try {
      await seedUser(db, { id: "u-badmail", email: "nobody@example.test" });
      const clock = new ManualClock(now());
      const { worker } = makeWorker(db, { email: new EmailChannel({ mailer, appUrl: APP_URL, unsubscribeKey: UNSUBSCRIBE_KEY }) }, clock);
      const id = await seedNotification(db, { userId: "u-badmail" });
      await enqueue(db, { id, userId: "u-badmail" }, { inApp: true, outOfApp: { email: { mode: "now" } } }, clock.now());
      await drain(worker);
      clock.advance(3600_000);
      await drain(worker);
      const [row] = await queueRows(db, id);
      expect(row).toMatchObject({ status: "failed", attempts: 1 });
      expect(row!.last_error).toMatch(/^smtp_550/);
      expect(smtp.mails).toHaveLength(0);
    } finally {
      await mailer.close();
      await smtp.close();
    }
  });
});

describe("Web Push channel", () => {
  const vapid = { ...webpush.generateVAPIDKeys(), subject: "mailto:ops@herald.test" };

  it("delivers an encrypted (aes128gcm) payload signed with a valid VAPID ES256 JWT", async () => {
    const service = await startPushService(() => vapid.publicKey);
    try {
      const clock = new ManualClock(now());
      const push = new PushChannel({ database: db, vapid, appUrl: APP_URL, logger: silentLogger, allowPrivate: true });
      const { worker } = makeWorker(db, { push }, clock);
      await savePushSubscription(db, "u-push", service.subscribe("laptop"));
      const id = await seedNotification(db, { userId: "u-push", title: "Security alert", message: "New sign-in", priority: "critical", type: "security_alert" });
      await enqueue(db, { id, userId: "u-push" }, { inApp: true, outOfApp: { push: { mode: "now" } } }, clock.now());
      expect(await drain(worker)).toBe(1);
      expect(service.rejected).toEqual([]);
      expect(service.delivered).toHaveLength(1);
      const d = service.delivered[0]!;
      expect(d.claims.aud).toBe(service.origin);
      expect(d.claims.sub).toBe("mailto:ops@herald.test");
      expect(Number(d.claims.exp)).toBeGreaterThan(Date.now() / 1000);
      expect(d.headers["content-encoding"]).toBe("aes128gcm");
      expect(Number(d.headers.ttl)).toBeGreaterThan(0);
      expect(d.headers.urgency).toBe("high");
      expect(d.payload).toMatchObject({ title: "Security alert", body: "New sign-in", notificationId: id, priority: "critical", count: 1 });
      expect((await queueRows(db, id))[0]!.status).toBe("sent");
    } finally {
      await service.close();
    }
  });

  it("a 410 Gone removes that subscription; the other device still receives and the row is sent", async () => {
    const service = await startPushService(() => vapid.publicKey, (path) => (path === "/push/old-phone" ? 410 : 201));
    try {
      const clock = new ManualClock(now());
      const push = new PushChannel({ database: db, vapid, appUrl: APP_URL, logger: silentLogger, allowPrivate: true });
      const { worker } = makeWorker(db, { push }, clock);
      await savePushSubscription(db, "u-push2", service.subscribe("old-phone"));
      await savePushSubscription(db, "u-push2", service.subscribe("desktop"));
      const id = await seedNotification(db, { userId: "u-push2", title: "Two devices" });
      await enqueue(db, { id, userId: "u-push2" }, { inApp: true, outOfApp: { push: { mode: "now" } } }, clock.now());
      await drain(worker);
      expect(service.delivered.map((d) => d.path)).toEqual(["/push/desktop"]);
      const subs = await db.query<{ endpoint: string }>("SELECT endpoint FROM push_subscriptions WHERE user_id = $1", ["u-push2"]);
      expect(subs.map((s) => s.endpoint)).toEqual([`${service.origin}/push/desktop`]);
      expect((await queueRows(db, id))[0]!.status).toBe("sent");
    } finally {
      await service.close();
    }
  });

  it("when the only subscription answers 410 it is removed and the row fails at once, not retried", async () => {
    const service = await startPushService(() => vapid.publicKey, () => 410);
    try {
      const clock = new ManualClock(now());
      const push = new PushChannel({ database: db, vapid, appUrl: APP_URL, logger: silentLogger, allowPrivate: true });
      const { worker } = makeWorker(db, { push }, clock);
      await savePushSubscription(db, "u-push3", service.subscribe("gone"));
      const id = await seedNotification(db, { userId: "u-push3" });
      await enqueue(db, { id, userId: "u-push3" }, { inApp: true, outOfApp: { push: { mode: "now" } } }, clock.now());
      await drain(worker);
      clock.advance(3600_000);
      await drain(worker);
      const [row] = await queueRows(db, id);
      expect(row).toMatchObject({ status: "failed", attempts: 1 });
      expect(row!.last_error).toMatch(/^subscription_gone/);
      expect(await db.query("SELECT 1 FROM push_subscriptions WHERE user_id = $1", ["u-push3"])).toHaveLength(0);
    } finally {
      await service.close();
    }
  });

  it("a retry after a 503 on one device does not push again to the device that already received it", async () => {
    let flaky = 0;
    const service = await startPushService(() => vapid.publicKey, (path) => (path === "/push/tablet" && flaky++ === 0 ? 503 : 201));
    try {
      const clock = new ManualClock(now());
      const push = new PushChannel({ database: db, vapid, appUrl: APP_URL, logger: silentLogger, allowPrivate: true });
      const { worker } = makeWorker(db, { push }, clock);
      await savePushSubscription(db, "u-push4", service.subscribe("phone"));
      await savePushSubscription(db, "u-push4", service.subscribe("tablet"));
      const id = await seedNotification(db, { userId: "u-push4" });
      await enqueue(db, { id, userId: "u-push4" }, { inApp: true, outOfApp: { push: { mode: "now" } } }, clock.now());
      await drain(worker);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "pending", attempts: 1 });
      clock.advance(10_000);
      await drain(worker);
      expect(service.delivered.map((d) => d.path).sort()).toEqual(["/push/phone", "/push/tablet"]);
      expect((await queueRows(db, id))[0]).toMatchObject({ status: "sent", attempts: 2 });
    } finally {
      await service.close();
    }
  });
});
