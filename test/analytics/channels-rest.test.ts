/**
 * Per-channel analytics through a whole Herald (issue 19.7): a critical
 * notification pushed over a real WebSocket and acknowledged, and e-mailed
 * by the queue worker through real SMTP, counts one send in the headline and
 * one per channel in the REST answers (user, provider, notification,
 * overview, trends with ?channel); the dashboard's channel table drawn from
 * the overview's answer shows the same figures.
 */
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChannelTable, toChannelRows } from "../../src/react/ChannelBreakdown.js";
import { type SmtpReceiver, startSmtpReceiver } from "../channels/support.js";
import { Probe } from "../realtime/helpers.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

describe(`per-channel analytics over REST (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  let h: TestHerald;
  let smtp: SmtpReceiver;
  let admin: Record<string, string>;
  let id: string;
  const get = async (path: string, headers = admin) => {
    const res = await fetch(`${h.baseUrl}${path}`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    smtp = await startSmtpReceiver();
    h = await startTestHerald({ env: { EMAIL_HOST: "127.0.0.1", EMAIL_PORT: String(smtp.port), EMAIL_SECURE: "false" } });
    admin = { authorization: `Bearer ${h.adminToken}`, "content-type": "application/json" };
    const put = await fetch(`${h.baseUrl}/api/users/dana`, { method: "PUT", headers: admin, body: JSON.stringify({ email: "dana@example.test" }) });
    expect(put.status).toBe(200);

    const probe = await Probe.open(h.wsUrl, await h.tokenFor("dana"));
    await probe.next("sync");
    const created = await fetch(`${h.baseUrl}/api/notifications`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ userId: "dana", type: "security_alert", priority: "critical", title: "New sign-in", message: "From a new device" }),
    });
    expect(created.status).toBe(201);
    id = ((await created.json()) as { notification: { id: string } }).notification.id;
    await probe.next("notification", (m) => m.notification.id === id);
    probe.send({ type: "ack", id });
    await probe.roundTrip();
    await probe.close();
    await h.herald.realtime.flushDeliveryLog();
    // Critical: its e-mail is due at once; the worker is not started in tests, so run one round.
    expect(await h.herald.delivery.worker.runOnce()).toBe(1);
    expect(smtp.mails).toHaveLength(1);
  });
  afterAll(async () => {
    await h?.stop();
    await smtp?.close();
  });

  it("the user's metrics: sent once in the headline, once on in_app and once on email", async () => {
    const { status, body } = await get("/api/analytics/users/dana?days=1");
    expect(status).toBe(200);
    expect(body).toMatchObject({ sent: 1, delivered: 1, deliveryRate: 100 });
    expect(body.byChannel).toEqual({
      in_app: { sent: 1, delivered: 1, failed: 0 },
      email: { sent: 1, delivered: 0, failed: 0 },
      push: { sent: 0, delivered: 0, failed: 0 },
      sms: { sent: 0, delivered: 0, failed: 0 },
      digest: { sent: 0, delivered: 0, failed: 0 },
    });
    const me = await get("/api/analytics/me?days=1", { authorization: `Bearer ${await h.tokenFor("dana")}` });
    expect(me.body.byChannel).toEqual(body.byChannel);
    const n = await get(`/api/analytics/notifications/${id}`);
    expect(n.body).toMatchObject({ sent: 1, events: { sent: 2 }, byChannel: { in_app: { sent: 1, delivered: 1 }, email: { sent: 1 } } });
  });

  it("the overview carries byChannel, and the dashboard's channel table drawn from it shows the same", async () => {
    const { body } = await get("/api/analytics/overview?days=30");
    expect(body).toMatchObject({ sent: 1, byChannel: { in_app: { sent: 1, delivered: 1, failed: 0 }, email: { sent: 1, delivered: 0, failed: 0 } } });
    const html = renderToStaticMarkup(createElement(ChannelTable, { rows: toChannelRows(body.byChannel) }));
    const row = (channel: string) => {
      const m = new RegExp(`<tr data-channel="${channel}"><th scope="row">[^<]*</th><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>`).exec(html);
      return m ? m.slice(1) : null;
    };
    expect(html).toContain('data-testid="channel-breakdown"');
    expect(row("in_app")).toEqual(["1", "1", "0"]);
    // E-mail providers do not report deliveries: shown as such, not as a zero.
    expect(row("email")).toEqual(["1", "not reported", "0"]);
    expect(row("digest")).toEqual(["0", "not reported", "0"]);
  });

  it("trends: every bucket has byChannel; ?channel=email narrows it; an unknown channel is a 400 problem", async () => {
    const all = await get("/api/analytics/trends?interval=day&days=2");
    expect(all.status).toBe(200);
    expect(all.body.channel).toBeNull();
    const buckets = all.body.buckets as { sent: number; byChannel: Record<string, { sent: number }> }[];
    expect(buckets.reduce((s, b) => s + b.byChannel.in_app!.sent, 0)).toBe(1);

    const email = await get("/api/analytics/trends?interval=day&days=2&channel=email");
    expect(email.body.channel).toBe("email");
    const emailBuckets = email.body.buckets as { byChannel: Record<string, { sent: number }> }[];
    for (const b of emailBuckets) expect(Object.keys(b.byChannel)).toEqual(["email"]);
    expect(emailBuckets.reduce((s, b) => s + b.byChannel.email!.sent, 0)).toBe(1);

    const bad = await get("/api/analytics/trends?channel=fax");
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: "HERALD_VALIDATION" });
  });
});
