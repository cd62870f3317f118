/** The HTTP side: push subscription routes, the VAPID key, the admin queue and connections, /metrics, and the worker inside Herald. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryWorker, SmsChannel, WebhookSmsProvider, enqueueOutOfApp } from "../../src/channels/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { WEBHOOK_SECRET, type SmsReceiver, seedNotification, seedUser, startSmsReceiver, waitFor } from "./support.js";

let t: TestHerald;
let broken: SmsReceiver;

beforeAll(async () => {
  // Fails for everyone but the live-worker test's recipient.
  broken = await startSmsReceiver((_n, body) => (body.to === "+15550003333" ? 200 : 503));
  // Jobs on: Herald's own worker runs on the system clock; the rows of the
  // manual-clock test are due in 2030, so only that test's worker touches them.
  t = await startTestHerald({ jobs: true, env: { SMS_WEBHOOK_URL: broken.url } });
});
let stopped = false;
afterAll(async () => {
  if (!stopped) await t?.stop();
  await broken?.close();
});

const api = async (method: string, url: string, token: string | undefined, body?: unknown) => {
  const res = await fetch(`${t.baseUrl}${url}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
};

describe("push subscription routes", () => {
  const sub = { endpoint: "http://127.0.0.1:9/push/abc", keys: { p256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", auth: "tBHItJI5svbpez7KI4CCXg" } };

  it("serves the VAPID public key generated once in DATA_DIR", async () => {
    const res = await api("GET", "/api/push/vapid-public-key", undefined);
    expect(res.status).toBe(200);
    const stored = JSON.parse(readFileSync(path.join(t.dataDir, "vapid.json"), "utf8")) as { publicKey: string };
    expect(res.body).toEqual({ publicKey: stored.publicKey });
    expect(Buffer.from(stored.publicKey, "base64url")).toHaveLength(65);
  });

  it("stores a provider's subscription, refuses bad input and admins, and deletes only the owner's", async () => {
    const alice = await t.tokenFor("alice");
    const bob = await t.tokenFor("bob");
    const created = await api("POST", "/api/push/subscriptions", alice, sub);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ endpoint: sub.endpoint });
    const rows = await t.database.query<{ user_id: string }>("SELECT user_id FROM push_subscriptions WHERE endpoint = $1", [sub.endpoint]);
    expect(rows).toEqual([{ user_id: "alice" }]);

    expect((await api("POST", "/api/push/subscriptions", alice, { endpoint: "javascript:alert(1)", keys: sub.keys })).status).toBe(400);
    expect((await api("POST", "/api/push/subscriptions", alice, { ...sub, extra: 1 })).status).toBe(400);
    expect((await api("POST", "/api/push/subscriptions", t.adminToken, sub)).status).toBe(403);
    expect((await api("POST", "/api/push/subscriptions", undefined, sub)).status).toBe(401);

    expect((await api("DELETE", "/api/push/subscriptions", bob, { endpoint: sub.endpoint })).status).toBe(404);
    expect((await api("DELETE", "/api/push/subscriptions", alice, { endpoint: sub.endpoint })).status).toBe(204);
    expect((await api("DELETE", "/api/push/subscriptions", alice, { endpoint: sub.endpoint })).status).toBe(404);
  });
});

describe("admin routes", () => {
  it("GET /api/admin/connections reports the realtime counts to admins only", async () => {
    const res = await api("GET", "/api/admin/connections", t.adminToken);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ connectedClients: 0, connectedProviders: [] });
    expect((await api("GET", "/api/admin/connections", await t.tokenFor("alice"))).status).toBe(403);
  });

  it("a receiver that never recovers ends in failed, visible in GET /api/admin/queue?status=failed and on /metrics", async () => {
    const db = t.database;
    await seedUser(db, { id: "carol", phone: "+15550002222" });
    const clock = new ManualClock("2030-06-01T09:00:00Z");
    const id = await seedNotification(db, { userId: "carol", title: "Never arrives" });
    await db.transaction((tx) => enqueueOutOfApp(tx, { id, userId: "carol" }, { inApp: true, outOfApp: { sms: { mode: "now" } } }, { now: clock.now() }));
    const worker = new DeliveryWorker({
      database: db,
      channels: { sms: new SmsChannel(new WebhookSmsProvider({ url: broken.url, secret: WEBHOOK_SECRET }), "https://app.example.test") },
      clock,
      logger: silentLogger,
      metrics: t.herald.runtime.metrics,
      workerId: "test-worker",
      backoff: { baseMs: 1000, maxMs: 10_000 },
    });

    const pending = await api("GET", "/api/admin/queue?status=pending", t.adminToken);
    expect(pending.body).toMatchObject({ total: 1, rows: [{ notificationId: id, channel: "sms", status: "pending", attempts: 0 }] });
    for (let i = 0; i < 8; i++) {
      while ((await worker.runOnce()) > 0);
      clock.advance(20_000);
    }
    const failed = await api("GET", "/api/admin/queue?status=failed", t.adminToken);
    expect(failed.status).toBe(200);
    expect(failed.body).toMatchObject({
      total: 1,
      rows: [{ notificationId: id, userId: "carol", channel: "sms", kind: "single", status: "failed", attempts: 5, maxAttempts: 5 }],
    });
    expect(String((failed.body!.rows as { lastError: string }[])[0]!.lastError)).toMatch(/^http_503/);
    expect(broken.requests).toHaveLength(5);
    expect((await api("GET", "/api/admin/queue?status=pending", t.adminToken)).body).toMatchObject({ total: 0 });
    expect((await api("GET", "/api/admin/queue?status=bogus", t.adminToken)).status).toBe(400);
    expect((await api("GET", "/api/admin/queue", await t.tokenFor("carol"))).status).toBe(403);

    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/herald_queue_failed_total\{channel="sms"\} 1/);
    expect(metrics).toMatch(/herald_channel_failures_total\{channel="sms",kind="retryable"\} 5/);
    expect(metrics).toMatch(/herald_queue_depth\{status="pending"\} 0/);
  });
});

it("a notification created through the service reaches SMS via Herald's own worker, which stops with Herald", async () => {
  await t.herald.users.upsert({ id: "dave", phone: "+15550003333" });
  await t.herald.notifications.preferences.update("dave", { smsEnabled: true, emailEnabled: false });
  const created = await t.herald.notifications.createAndSendNotification({ userId: "dave", type: "new_message", title: "Live", message: "Hello Dave" });
  const id = created!.id;
  t.herald.delivery.notify();
  await waitFor(() => broken.delivered.length === 1, "the SMS");
  expect(broken.delivered[0]).toMatchObject({ to: "+15550003333", title: "Live", notificationId: id });
  expect(t.herald.delivery.worker.status).toBe("active");
  stopped = true;
  await t.stop();
  expect(t.herald.delivery.worker.status).toBe("stopped");
});
