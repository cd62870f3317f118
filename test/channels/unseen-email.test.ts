/**
 * E-mail in "unseen" mode (the default, issue 19.1; docs/delivery.md rule 3
 * and "Digests") end to end: notifications created through Herald, a real
 * WebSocket client that acknowledges, the queue worker sending to a real SMTP
 * server on loopback, and the digest afterwards. One manual clock for Herald
 * and the worker, so "after the delay" is an instant, not a sleep.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EmailChannel } from "../../src/channels/index.js";
import { type Mailer, createMailer, unsubscribeKey } from "../../src/mail/index.js";
import { ManualClock } from "../../src/observability/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { Probe } from "../realtime/helpers.js";
import { drain, makeWorker, queueRows } from "./harness.js";
import { type SmtpReceiver, startSmtpReceiver } from "./support.js";

const DELAY_MS = 120_000;
let t: TestHerald;
let smtp: SmtpReceiver;
let clock: ManualClock;
let worker: ReturnType<typeof makeWorker>["worker"];
let workerMailer: Mailer;

beforeAll(async () => {
  smtp = await startSmtpReceiver();
  clock = new ManualClock(new Date());
  t = await startTestHerald({ clock, env: { EMAIL_HOST: "127.0.0.1", EMAIL_PORT: String(smtp.port), APP_URL: "https://app.example.test" } });
  workerMailer = createMailer({ host: "127.0.0.1", port: smtp.port, secure: false, ignoreTLS: true, from: "Herald <noreply@herald.test>" });
  worker = makeWorker(t.database, { email: new EmailChannel({ mailer: workerMailer, appUrl: "https://app.example.test", unsubscribeKey: unsubscribeKey("x".repeat(32)) }) }, clock).worker;
});
afterAll(async () => {
  await t?.stop();
  await workerMailer?.close();
  await smtp?.close();
});

const mailsTo = (userId: string) => smtp.mails.filter((m) => m.to && JSON.stringify(m.to).includes(`${userId}@example.test`));

async function user(id: string, prefs: Record<string, unknown> = {}) {
  await t.herald.users.upsert({ id, email: `${id}@example.test` });
  if (Object.keys(prefs).length > 0) await t.herald.notifications.preferences.update(id, prefs);
}

async function create(userId: string, title: string, priority: "low" | "normal" | "high" | "critical" = "normal") {
  const n = await t.herald.notifications.createAndSendNotification({ userId, type: "booking_confirmed", priority, title, message: `${title} body` });
  return n!.id;
}

/**
 * Connects a device, and resolves once its catch-up sync has arrived: a
 * notification committed before that would come inside the sync, not as a
 * live `notification` frame (the pong of a round trip can overtake the sync).
 */
async function online(userId: string): Promise<Probe> {
  const probe = await Probe.open(`${t.wsUrl}/ws`, await t.tokenFor(userId));
  await probe.next("sync");
  return probe;
}

describe(`e-mail "unseen" mode (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("an online user whose device acknowledges within the delay gets no e-mail", async () => {
    await user("ue-online");
    const device = await online("ue-online");
    try {
      const id = await create("ue-online", "Seen in the app");
      await device.next("notification", (m) => m.notification.id === id);
      device.send({ type: "ack", id });
      await device.roundTrip();
      await t.herald.realtime.flushDeliveryLog();

      expect(await drain(worker)).toBe(0); // waiting out the delay
      clock.advance(DELAY_MS);
      expect(await drain(worker)).toBe(1);
      const [row] = await queueRows(t.database, id);
      expect(row).toMatchObject({ channel: "email", status: "cancelled" });
      expect(row!.last_error).toMatch(/seen in-app/);
      expect(mailsTo("ue-online")).toHaveLength(0);
    } finally {
      await device.close();
    }
  });

  it("an offline user gets the e-mail once the delay has passed, not before", async () => {
    await user("ue-offline");
    const id = await create("ue-offline", "While you were away");
    expect(await drain(worker)).toBe(0);
    clock.advance(DELAY_MS - 1000);
    expect(await drain(worker)).toBe(0);
    expect(mailsTo("ue-offline")).toHaveLength(0);
    clock.advance(1000);
    expect(await drain(worker)).toBe(1);
    expect(mailsTo("ue-offline").map((m) => m.subject)).toEqual(["While you were away"]);
    expect((await queueRows(t.database, id))[0]).toMatchObject({ status: "sent" });
  });

  it("a notification read (on no device) within the delay is not e-mailed", async () => {
    await user("ue-reader");
    const id = await create("ue-reader", "Read over REST");
    expect(await t.herald.notifications.markRead("ue-reader", id)).toBe(true);
    clock.advance(DELAY_MS);
    await drain(worker);
    expect((await queueRows(t.database, id))[0]).toMatchObject({ status: "cancelled" });
    expect(mailsTo("ue-reader")).toHaveLength(0);
  });

  it("high priority is e-mailed at once, even to an online user who acknowledges it", async () => {
    await user("ue-high");
    const device = await online("ue-high");
    try {
      const id = await create("ue-high", "Urgent", "high");
      await device.next("notification", (m) => m.notification.id === id);
      device.send({ type: "ack", id });
      await device.roundTrip();
      expect(await drain(worker)).toBe(1);
      expect(mailsTo("ue-high").map((m) => m.subject)).toEqual(["Urgent"]);
    } finally {
      await device.close();
    }
  });

  it('emailImmediate "always" keeps the e-mail of every notification at once (frequency "immediate" before issue 19)', async () => {
    await user("ue-always", { emailImmediate: "always" });
    const device = await online("ue-always");
    try {
      const id = await create("ue-always", "Every one", "low");
      await device.next("notification", (m) => m.notification.id === id);
      device.send({ type: "ack", id });
      await device.roundTrip();
      expect(await drain(worker)).toBe(1);
      expect(mailsTo("ue-always").map((m) => m.subject)).toEqual(["Every one"]);
    } finally {
      await device.close();
    }
  });

  it("a digest after the e-mails leaves out what was e-mailed (or waits to be) and what was read, and keeps what was only seen", async () => {
    await user("ue-digest");
    const device = await online("ue-digest");
    let seen: string;
    try {
      seen = await create("ue-digest", "Seen, not read");
      await device.next("notification", (m) => m.notification.id === seen);
      device.send({ type: "ack", id: seen });
      await device.roundTrip();
      await t.herald.realtime.flushDeliveryLog();
    } finally {
      await device.close();
    }
    await create("ue-digest", "E-mailed at once", "high");
    const read = await create("ue-digest", "Read already");
    await t.herald.notifications.markRead("ue-digest", read);
    await create("ue-digest", "Offline, about to be e-mailed");
    await drain(worker);
    // The e-mail waiting for the delay is left out as well: it goes on its own.
    const early = await t.herald.digests.sendTestDigest("ue-digest");
    expect(early.notificationCount).toBe(1);
    expect(mailsTo("ue-digest").at(-1)!.text).not.toContain("Offline, about to be e-mailed");
    clock.advance(DELAY_MS);
    await drain(worker);
    const single = mailsTo("ue-digest").filter((m) => m.subject !== early.subject);
    expect(single.map((m) => m.subject).sort()).toEqual(["E-mailed at once", "Offline, about to be e-mailed"]);

    const digest = await t.herald.digests.sendTestDigest("ue-digest");
    expect(digest.notificationCount).toBe(1);
    const text = mailsTo("ue-digest").at(-1)!.text ?? "";
    expect(text).toContain("Seen, not read");
    expect(text).not.toContain("E-mailed at once");
    expect(text).not.toContain("Offline, about to be e-mailed");
    expect(text).not.toContain("Read already");
  });
});

it("EMAIL_UNSEEN_DELAY sets the wait (30 s here), for single creations and broadcasts", async () => {
  const other = await startTestHerald({ clock, sharedDatabase: t.database, env: { EMAIL_UNSEEN_DELAY: "30s" } });
  try {
    await other.herald.users.upsert({ id: "ue-delay", email: "ue-delay@example.test" });
    const n = await other.herald.notifications.createAndSendNotification({ userId: "ue-delay", type: "booking_confirmed", title: "Soon", message: "m" });
    const { broadcastId } = await other.herald.notifications.broadcast({ type: "platform_update", title: "To all", message: "m" });
    const [broadcastCopy] = await t.database.query<{ id: string }>("SELECT id FROM notifications WHERE broadcast_id = $1 AND user_id = 'ue-delay'", [broadcastId]);
    for (const id of [n!.id, broadcastCopy!.id]) {
      const [row] = await queueRows(t.database, id);
      expect(new Date(row!.next_retry_at).getTime() - clock.now().getTime()).toBe(30_000);
    }
  } finally {
    await other.stop();
  }
});
