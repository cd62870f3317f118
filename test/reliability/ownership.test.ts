/**
 * Authorization by ownership: every route (and WebSocket message) that takes
 * an id, called by another provider, answers 404 (or an error message) and
 * leaves the row exactly as it was; fields a provider must not set (userId,
 * deliveryStatus, createdAt, role...) are refused with 400 and nothing is
 * written; a huge `limit` is capped.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { TestHerald } from "../support/herald.js";
import { startTestHerald } from "../support/herald.js";
import type { Created, Listed } from "../support/bodies.js";
import { badInput } from "./support/figures.js";
import { eventually } from "./support/processes.js";
import { call, isProblem } from "./support/rest.js";

let h: TestHerald;
let alice: string;
let mallory: string;
let admin: string;
let aliceId: string; // one of Alice's notifications
const ENDPOINT = "https://push.example.com/send/alice-browser-1";

const snapshot = async (table: string, where: string, params: unknown[]) =>
  JSON.stringify(await h.database.query(`SELECT * FROM ${table} WHERE ${where} ORDER BY 1`, params));
/** Row counts; events only for `eventsOf` (other tests' delivery events are still being flushed). */
const counts = async (eventsOf = "00000000-0000-4000-8000-000000000000") =>
  (
    await h.database.query<Record<string, number>>(
      `SELECT (SELECT count(*)::int FROM notifications) AS notifications,
              (SELECT count(*)::int FROM notification_queue) AS queue,
              (SELECT count(*)::int FROM notification_preferences) AS preferences,
              (SELECT count(*)::int FROM users) AS users,
              (SELECT count(*)::int FROM analytics_events WHERE notification_id = $1) AS events,
              (SELECT count(*)::int FROM email_digests) AS digests,
              (SELECT count(*)::int FROM push_subscriptions) AS push`,
      [eventsOf],
    )
  )[0]!;

beforeAll(async () => {
  h = await startTestHerald();
  alice = await h.tokenFor("alice");
  mallory = await h.tokenFor("mallory");
  admin = h.adminToken;
  for (const u of ["alice", "mallory"]) {
    expect((await call(h.baseUrl, "PUT", `/api/users/${u}`, { token: admin, body: { email: `${u}@example.com`, name: u } })).status).toBe(200);
  }
  const created = await call<Created>(h.baseUrl, "POST", "/api/notifications", {
    token: admin,
    body: { userId: "alice", type: "payment_received", title: "Paid", message: "You were paid" },
  });
  expect(created.status).toBe(201);
  aliceId = created.body.notification.id;
  expect((await call(h.baseUrl, "PATCH", "/api/preferences", { token: alice, body: { soundVolume: 33 } })).status).toBe(200);
  const sub = await call(h.baseUrl, "POST", "/api/push/subscriptions", {
    token: alice,
    body: { endpoint: ENDPOINT, keys: { p256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", auth: "tBHItJI5svbpez7KI4CCXg" } },
  });
  expect(sub.status).toBe(201);
});
afterAll(() => h?.stop());

describe("another provider's ids", () => {
  it("GET, PATCH and DELETE of another user's notification answer 404 and leave the row unchanged", async () => {
    const before = await snapshot("notifications", "id = $1", [aliceId]);
    const attempts: [string, string, unknown?][] = [
      ["GET", `/api/notifications/${aliceId}`],
      ["PATCH", `/api/notifications/${aliceId}`, { read: true }],
      ["PATCH", `/api/notifications/${aliceId}`, { archived: true }],
      ["PATCH", `/api/notifications/${aliceId}`, { read: false, archived: false }],
      ["DELETE", `/api/notifications/${aliceId}`],
    ];
    for (const [method, path, body] of attempts) {
      const a = await call(h.baseUrl, method, path, { token: mallory, ...(body ? { body } : {}) });
      expect(a.status, `${method} ${path}`).toBe(404);
      expect(isProblem(a, 404)).toBe(true);
      expect(a.text).not.toContain("Paid");
    }
    const list = await call<Listed>(h.baseUrl, "GET", "/api/notifications?limit=100", { token: mallory });
    expect(list.body.notifications.map((n) => n.id)).not.toContain(aliceId);
    expect(await snapshot("notifications", "id = $1", [aliceId])).toBe(before);
    badInput("cross_user", attempts.length);
  });

  it("an analytics event on another user's notification is a 404 and records nothing", async () => {
    for (const eventType of ["opened", "clicked", "deleted"]) {
      const a = await call(h.baseUrl, "POST", "/api/analytics/events", { token: mallory, body: { notificationId: aliceId, eventType } });
      expect(a.status).toBe(404);
    }
    // A legitimate event from Alice goes through the same batch: once it is stored, Mallory's would be too.
    expect((await call(h.baseUrl, "POST", "/api/analytics/events", { token: alice, body: { notificationId: aliceId, eventType: "clicked" } })).status).toBe(202);
    await h.herald.runtime.analytics.flush();
    expect(await h.database.query("SELECT 1 FROM analytics_events WHERE notification_id = $1 AND event_type = 'clicked'", [aliceId])).toHaveLength(1);
    expect(await h.database.query("SELECT 1 FROM analytics_events WHERE user_id = 'mallory'")).toEqual([]);
    badInput("cross_user", 3);
  });

  it("removing another user's push subscription is a 404 and the subscription stays", async () => {
    const before = await snapshot("push_subscriptions", "endpoint = $1", [ENDPOINT]);
    const a = await call(h.baseUrl, "DELETE", "/api/push/subscriptions", { token: mallory, body: { endpoint: ENDPOINT } });
    expect(a.status).toBe(404);
    expect(await snapshot("push_subscriptions", "endpoint = $1", [ENDPOINT])).toBe(before);
    badInput("cross_user");
  });

  it("read and ack of another user's id over the WebSocket change nothing", async () => {
    const before = await snapshot("notifications", "id = $1", [aliceId]);
    const own = await call<Created>(h.baseUrl, "POST", "/api/notifications", {
      token: admin,
      body: { userId: "mallory", type: "new_message", title: "own", message: "m" },
    });
    const ownId = own.body.notification.id as string;
    const ws = new WebSocket(`${h.wsUrl}/ws?token=${encodeURIComponent(mallory)}`);
    const messages: { type: string; code?: string }[] = [];
    ws.on("message", (raw) => messages.push(JSON.parse(raw.toString())));
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ type: "read", id: aliceId }));
    ws.send(JSON.stringify({ type: "ack", id: aliceId }));
    ws.send(JSON.stringify({ type: "ack", ids: [aliceId, ownId] }));
    await eventually(() => messages.some((m) => m.type === "error" && m.code === "not_found"), 10_000, "not_found error");
    // The acks were handled before the read's answer came back. Mallory's own ack lands in the same
    // delivery batch: once it is written, Alice's row would have been too.
    await h.herald.realtime.flushDeliveryLog();
    expect(await h.database.query("SELECT 1 FROM notifications WHERE id = $1 AND delivery_status = 'delivered'", [ownId])).toHaveLength(1);
    ws.close();
    expect(await snapshot("notifications", "id = $1", [aliceId])).toBe(before);
    badInput("cross_user", 3);
  });
});

describe("mass assignment", () => {
  it("fields a caller must not set are refused with 400 and nothing is written", async () => {
    const aliceRow = await snapshot("notifications", "id = $1", [aliceId]);
    const alicePrefs = await snapshot("notification_preferences", "user_id = $1", ["alice"]);
    const aliceUser = await snapshot("users", "id = $1", ["alice"]);
    const before = await counts(aliceId);
    const base = { userId: "alice", type: "new_message", title: "t", message: "m" };
    const attempts: [string, string, string, unknown][] = [
      ["admin", "POST", "/api/notifications", { ...base, deliveryStatus: "delivered" }],
      ["admin", "POST", "/api/notifications", { ...base, createdAt: "2000-01-01T00:00:00Z" }],
      ["admin", "POST", "/api/notifications", { ...base, read: true }],
      ["admin", "POST", "/api/notifications", { ...base, id: "00000000-0000-4000-8000-000000000001" }],
      ["admin", "POST", "/api/notifications", { ...base, seq: 1 }],
      ["admin", "POST", "/api/notifications", { ...base, broadcastId: "00000000-0000-4000-8000-000000000001" }],
      ["admin", "POST", "/api/notifications/broadcast", { type: "platform_update", title: "t", message: "m", userId: "alice" }],
      ["mallory", "PATCH", `/api/notifications/${aliceId}`, { read: true, userId: "mallory" }],
      ["alice", "PATCH", `/api/notifications/${aliceId}`, { read: true, deliveryStatus: "delivered" }],
      ["alice", "PATCH", `/api/notifications/${aliceId}`, { read: true, createdAt: "2000-01-01T00:00:00Z" }],
      ["alice", "PATCH", `/api/notifications/${aliceId}`, { userId: "mallory" }],
      ["mallory", "PATCH", "/api/preferences", { userId: "alice", soundVolume: 0 }],
      ["alice", "PATCH", "/api/preferences", { soundVolume: 1, role: "admin" }],
      ["alice", "PATCH", "/api/preferences", { soundVolume: 1, createdAt: "2000-01-01T00:00:00Z" }],
      ["admin", "PUT", "/api/users/alice", { name: "A", role: "admin" }],
      ["admin", "PUT", "/api/users/alice", { name: "A", id: "mallory" }],
      ["admin", "PUT", "/api/users/alice", { name: "A", createdAt: "2000-01-01T00:00:00Z" }],
      ["mallory", "POST", "/api/analytics/events", { notificationId: aliceId, eventType: "opened", userId: "alice" }],
      ["mallory", "POST", "/api/analytics/events", { notificationId: aliceId, eventType: "opened", createdAt: "2000-01-01T00:00:00Z" }],
      ["mallory", "POST", "/api/digests/test", { frequency: "daily", userId: "alice" }],
      ["mallory", "POST", "/api/digests/test", { frequency: "daily", emailAddress: "attacker@evil.test" }],
      ["mallory", "POST", "/api/push/subscriptions", { endpoint: "https://push.example.com/x", keys: { p256dh: "a", auth: "b" }, userId: "alice" }],
    ];
    const tokens: Record<string, string> = { admin, alice, mallory };
    for (const [who, method, path, body] of attempts) {
      const a = await call(h.baseUrl, method, path, { token: tokens[who], body });
      expect(a.status, `${who} ${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(isProblem(a, 400)).toBe(true);
    }
    expect(await counts(aliceId)).toEqual(before);
    expect(await snapshot("notifications", "id = $1", [aliceId])).toBe(aliceRow);
    expect(await snapshot("notification_preferences", "user_id = $1", ["alice"])).toBe(alicePrefs);
    expect(await snapshot("users", "id = $1", ["alice"])).toBe(aliceUser);
    badInput("mass_assignment", attempts.length);
  });
});

describe("paging limits", () => {
  it("limit=1000000 is capped, and absurd paging values are 400s, never 5xx", async () => {
    const rows = Array.from({ length: 120 }, (_, i) => `('pager', 'new_message', 'normal', 'n${i}', 'm')`).join(",");
    await h.database.query(`INSERT INTO notifications (user_id, type, priority, title, message) VALUES ${rows}`);
    const pager = await h.tokenFor("pager");
    const big = await call<Listed>(h.baseUrl, "GET", "/api/notifications?limit=1000000", { token: pager });
    expect(big.status).toBe(200);
    expect(big.body.total).toBe(120);
    expect(big.body.notifications.length).toBeLessThanOrEqual(100);
    const capped: [string, string][] = [
      [pager, "/api/digests?limit=1000000"],
      [admin, "/api/admin/queue?limit=1000000"],
      [admin, "/api/analytics/top?limit=1000000"],
    ];
    for (const [token, path] of capped) {
      const a = await call(h.baseUrl, "GET", path, { token });
      expect([200, 400], path).toContain(a.status);
      if (a.status === 400) expect(isProblem(a, 400)).toBe(true);
    }
    const odd = ["limit=-1", "limit=0", "limit=abc", "limit=1e400", "limit=9007199254740993", "offset=-5", "offset=1e400", "offset=99999999999999999999", "limit=1&limit=2", "read=maybe", "type=%00"];
    for (const q of odd) {
      const a = await call(h.baseUrl, "GET", `/api/notifications?${q}`, { token: pager });
      expect(a.status, q).toBeLessThan(500);
      expect([200, 400], q).toContain(a.status);
    }
    badInput("paging", capped.length + odd.length + 1);
  });
});
