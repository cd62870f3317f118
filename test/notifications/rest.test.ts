/**
 * Every notification, preference, user and template route of the REST API
 * through real HTTP, with each kind of bad input answering a 400
 * problem and writing nothing, and cross-user access answering 404.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { mintToken } from "../../src/auth/index.js";
import type { BroadcastResult, Created, Listed, NotificationDto, NotificationPreferences, Problem } from "../support/bodies.js";
import { TEST_SECRET, type TestHerald, startTestHerald } from "../support/herald.js";
import { api, expectProblem, rowCounts } from "./api.js";

let h: TestHerald;
let call: ReturnType<typeof api>;
let admin: string;

const guideNotification = {
  type: "new_message",
  priority: "high",
  title: "New message from Sarah Johnson",
  message: "Sarah has sent you a message about the booking",
  description: "Click to view the conversation",
  icon: "💬",
  actionUrl: "/messages/msg-456",
  actionLabel: "View Message",
  relatedId: "msg-456",
  data: { senderId: "client-789", conversationId: "conv-456" },
};

async function create(userId: string, over: Record<string, unknown> = {}) {
  const res = await call<Created>("POST", "/api/notifications", { token: admin, body: { ...guideNotification, userId, ...over } });
  expect(res.status).toBe(201);
  return res.body.notification;
}

beforeAll(async () => {
  // Admin credentials have their own limit (HERALD_ADMIN_RATE_LIMIT_PER_MINUTE): 600 here for the 429 test below.
  h = await startTestHerald({ env: { HERALD_RATE_LIMIT_PER_MINUTE: "600", HERALD_ADMIN_RATE_LIMIT_PER_MINUTE: "600" } });
  call = api(h);
  admin = h.adminToken;
});
afterAll(() => h?.stop());

describe("POST /api/notifications (admin)", () => {
  it("creates the guide's example notification and the provider lists it with total and unreadCount", async () => {
    const n = await create("rest-alice");
    expect(n).toMatchObject({ userId: "rest-alice", type: "new_message", priority: "high", read: false, deliveryStatus: "pending" });
    const token = await h.tokenFor("rest-alice");
    const list = await call<Listed>("GET", "/api/notifications", { token });
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ total: 1, unreadCount: 1 });
    expect(list.body.notifications[0]).toMatchObject({ id: n.id, data: guideNotification.data, actionUrl: "/messages/msg-456" });
  });

  it("gives a type without a priority its default from the guide's table, and accepts custom types", async () => {
    const a = await create("rest-defaults", { type: "platform_update", priority: undefined });
    expect(a).toMatchObject({ priority: "low" });
    const b = await create("rest-defaults", { type: "invoice_overdue", priority: undefined });
    expect(b).toMatchObject({ type: "invoice_overdue", priority: "normal" });
  });

  it("with the same idempotencyKey twice answers the same notification and stores one row", async () => {
    const body = { ...guideNotification, userId: "rest-idem", idempotencyKey: "order-42-paid" };
    const first = await call<Created>("POST", "/api/notifications", { token: admin, body });
    const second = await call<Created>("POST", "/api/notifications", { token: admin, body });
    expect([first.status, second.status]).toEqual([201, 201]);
    expect(second.body.notification.id).toBe(first.body.notification.id);
    const rows = await h.database.query(`SELECT id FROM notifications WHERE user_id = 'rest-idem'`);
    expect(rows).toHaveLength(1);
  });

  it("creates from a template with {{variables}}, and a missing variable is a 400 naming it with nothing written", async () => {
    const t = await call("POST", "/api/templates", {
      token: admin,
      body: {
        key: "booking.reminder",
        type: "booking_confirmed",
        titleTemplate: "Booking with {{ client }} confirmed",
        messageTemplate: "See you on {{date}} at {{time}}",
        actionUrlTemplate: "/bookings/{{bookingId}}",
      },
    });
    expect(t.status).toBe(201);
    const ok = await call<Created>("POST", "/api/notifications", {
      token: admin,
      body: { userId: "rest-tpl", templateKey: "booking.reminder", variables: { client: "Sam", date: "Friday", time: "10:00", bookingId: "b/1?x" } },
    });
    expect(ok.status).toBe(201);
    expect(ok.body.notification).toMatchObject({
      title: "Booking with Sam confirmed",
      message: "See you on Friday at 10:00",
      actionUrl: "/bookings/b%2F1%3Fx",
      priority: "normal",
    });
    const before = await rowCounts(h);
    const missing = await call<Problem>("POST", "/api/notifications", {
      token: admin,
      body: { userId: "rest-tpl", templateKey: "booking.reminder", variables: { client: "Sam" } },
    });
    expectProblem(missing, 400, "HERALD_TEMPLATE_VARIABLES");
    expect(missing.body.errors!.map((e) => e.field).sort()).toEqual(["variables.bookingId", "variables.date", "variables.time"]);
    const unknown = await call("POST", "/api/notifications", { token: admin, body: { userId: "rest-tpl", templateKey: "no.such" } });
    expectProblem(unknown, 404, "HERALD_NOT_FOUND");
    expect(await rowCounts(h)).toEqual(before);
  });

  it("stores nothing and says so when the user switched the type off, but security alerts still arrive", async () => {
    const token = await h.tokenFor("rest-quiet");
    expect((await call("PATCH", "/api/preferences", { token, body: { newMessageEnabled: false, securityAlertEnabled: false } })).status).toBe(200);
    const off = await call("POST", "/api/notifications", { token: admin, body: { ...guideNotification, userId: "rest-quiet" } });
    expect(off.status).toBe(200);
    expect(off.body).toEqual({ notification: null, reason: "type_disabled" });
    const alert = await call<Created>("POST", "/api/notifications", {
      token: admin,
      body: { userId: "rest-quiet", type: "security_alert", title: "New sign-in", message: "From a new device" },
    });
    expect(alert.status).toBe(201);
    expect(alert.body.notification.priority).toBe("critical");
    const list = await call<Listed>("GET", "/api/notifications", { token });
    expect(list.body.notifications.map((n) => n.type)).toEqual(["security_alert"]);
  });

  const long = (n: number) => "x".repeat(n);
  it.each([
    ["an unknown field (mass assignment)", { ...guideNotification, userId: "rest-bad", read: true }],
    ["an unknown field: deliveryStatus", { ...guideNotification, userId: "rest-bad", deliveryStatus: "delivered" }],
    ["a wrong type", { ...guideNotification, userId: "rest-bad", title: 42 }],
    ["an oversize title (201 characters)", { ...guideNotification, userId: "rest-bad", title: long(201) }],
    ["an oversize message (2001 characters)", { ...guideNotification, userId: "rest-bad", message: long(2001) }],
    ["a bad priority enum", { ...guideNotification, userId: "rest-bad", priority: "urgent" }],
    ["a bad type name", { ...guideNotification, userId: "rest-bad", type: "New Message!" }],
    ["a javascript: action URL", { ...guideNotification, userId: "rest-bad", actionUrl: "javascript:alert(1)" }],
    ["a missing userId", { ...guideNotification }],
    ["an empty title", { ...guideNotification, userId: "rest-bad", title: "" }],
    ["data that is not an object", { ...guideNotification, userId: "rest-bad", data: [1, 2] }],
    ["an array body", [guideNotification]],
  ])("refuses %s with a 400 problem and writes nothing", async (_name, body) => {
    const before = await rowCounts(h);
    const res = await call("POST", "/api/notifications", { token: admin, body });
    expectProblem(res, 400, "HERALD_VALIDATION");
    expect(await rowCounts(h)).toEqual(before);
  });

  it.each([
    ["malformed JSON", "{\"userId\": \"rest-bad\", "],
    ["an empty body", ""],
  ])("refuses %s with a 400 problem and writes nothing", async (_name, raw) => {
    const before = await rowCounts(h);
    const res = await call("POST", "/api/notifications", { token: admin, raw });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(await rowCounts(h)).toEqual(before);
  });
});

describe("POST /api/notifications/broadcast (admin)", () => {
  it("stores one row per user in the directory and answers the count", async () => {
    for (const id of ["bc-1", "bc-2", "bc-3"]) expect((await call("PUT", `/api/users/${id}`, { token: admin, body: {} })).status).toBe(200);
    const users = (await h.database.query<{ n: number }>(`SELECT count(*)::int AS n FROM users`))[0]!.n;
    const res = await call<BroadcastResult>("POST", "/api/notifications/broadcast", {
      token: admin,
      body: { type: "platform_update", priority: "normal", title: "New feature: Advanced Analytics", message: "Check out our new analytics dashboard" },
    });
    expect(res.status).toBe(201);
    expect(res.body.count).toBe(users);
    const rows = await h.database.query<{ n: number }>(`SELECT count(DISTINCT user_id)::int AS n FROM notifications WHERE broadcast_id = $1`, [res.body.broadcastId]);
    expect(rows[0]!.n).toBe(users);
  });

  it("refuses a userId in a broadcast body (unknown field) and writes nothing", async () => {
    const before = await rowCounts(h);
    const res = await call("POST", "/api/notifications/broadcast", { token: admin, body: { type: "platform_update", title: "t", message: "m", userId: "x" } });
    expectProblem(res, 400, "HERALD_VALIDATION");
    expect(await rowCounts(h)).toEqual(before);
  });
});

describe("provider inbox routes", () => {
  it("filters by read, archived and type, pages with limit and offset", async () => {
    const token = await h.tokenFor("rest-filter");
    const a = await create("rest-filter", { type: "new_message" });
    const b = await create("rest-filter", { type: "booking_request" });
    const c = await create("rest-filter", { type: "booking_request" });
    expect((await call("PATCH", `/api/notifications/${a.id}`, { token, body: { read: true } })).status).toBe(200);
    expect((await call("PATCH", `/api/notifications/${b.id}`, { token, body: { archived: true } })).status).toBe(200);
    const ids = async (q: string) => (await call<Listed>("GET", `/api/notifications?${q}`, { token })).body.notifications.map((n) => n.id);
    expect(await ids("read=false")).toEqual([c.id, b.id]);
    expect(await ids("read=true")).toEqual([a.id]);
    expect(await ids("archived=true")).toEqual([b.id]);
    expect(await ids("type=booking_request&archived=false")).toEqual([c.id]);
    expect(await ids("limit=1&offset=1")).toEqual([b.id]);
    const page = await call("GET", "/api/notifications?limit=1", { token });
    expect(page.body).toMatchObject({ total: 3, unreadCount: 1 });
    expect((await call("GET", "/api/notifications/unread-count", { token })).body).toEqual({ count: 1 });
  });

  it.each([
    ["limit=abc"],
    ["limit=0"],
    ["offset=-1"],
    ["read=maybe"],
    ["archived=1"],
    ["type=Bad%20Type"],
    ["unknown=1"],
  ])("refuses the query %s with a 400 problem", async (q) => {
    const token = await h.tokenFor("rest-filter");
    expectProblem(await call("GET", `/api/notifications?${q}`, { token }), 400, "HERALD_VALIDATION");
  });

  it("caps a page at 100 notifications", async () => {
    await h.database.query(
      `INSERT INTO notifications (user_id, type, priority, title, message) SELECT 'rest-many', 'new_message', 'high', 't' || g, 'm' FROM generate_series(1, 120) g`,
    );
    const res = await call<Listed>("GET", "/api/notifications?limit=500", { token: await h.tokenFor("rest-many") });
    expect(res.body.notifications).toHaveLength(100);
    expect(res.body.total).toBe(120);
  });

  it("PATCH marks read and unread, archives; read-all and DELETE work on the caller's own notifications", async () => {
    const token = await h.tokenFor("rest-bob");
    const a = await create("rest-bob");
    const b = await create("rest-bob");
    const read = await call<NotificationDto>("PATCH", `/api/notifications/${a.id}`, { token, body: { read: true } });
    expect(read.body).toMatchObject({ id: a.id, read: true });
    expect(read.body.readAt).not.toBeNull();
    const unread = await call("PATCH", `/api/notifications/${a.id}`, { token, body: { read: false, archived: true } });
    expect(unread.body).toMatchObject({ read: false, readAt: null, archived: true });
    const all = await call("POST", "/api/notifications/read-all", { token });
    expect(all.body).toEqual({ updated: 2 });
    expect((await call("GET", "/api/notifications/unread-count", { token })).body).toEqual({ count: 0 });
    const del = await call("DELETE", `/api/notifications/${b.id}`, { token });
    expect(del.status).toBe(204);
    expectProblem(await call("GET", `/api/notifications/${b.id}`, { token }), 404, "HERALD_NOT_FOUND");
    expectProblem(await call("DELETE", `/api/notifications/${b.id}`, { token }), 404, "HERALD_NOT_FOUND");
  });

  it.each([
    ["an unknown field", { read: true, userId: "rest-mallory" }],
    ["a wrong type", { read: "yes" }],
    ["an empty change", {}],
  ])("PATCH refuses %s with a 400 and changes nothing", async (_name, body) => {
    const token = await h.tokenFor("rest-carol");
    const n = await create("rest-carol");
    expectProblem(await call("PATCH", `/api/notifications/${n.id}`, { token, body }), 400, "HERALD_VALIDATION");
    const after = await call("GET", `/api/notifications/${n.id}`, { token });
    expect(after.body).toMatchObject({ read: false, archived: false, userId: "rest-carol" });
  });

  it("PATCH with malformed JSON is a 400 and changes nothing", async () => {
    const token = await h.tokenFor("rest-carol");
    const n = await create("rest-carol");
    const res = await call("PATCH", `/api/notifications/${n.id}`, { token, raw: "{read:true}" });
    expect(res.status).toBe(400);
    expect((await call<NotificationDto>("GET", `/api/notifications/${n.id}`, { token })).body.read).toBe(false);
  });

  it.each([["GET"], ["PATCH"], ["DELETE"]])("%s with a bad UUID in :id is a 400", async (method) => {
    const token = await h.tokenFor("rest-carol");
    const res = await call(method, "/api/notifications/not-a-uuid", { token, ...(method === "PATCH" ? { body: { read: true } } : {}) });
    expectProblem(res, 400, "HERALD_VALIDATION");
  });
});

describe("object-level authorization: another user's notification is a 404 and nothing changes", () => {
  it.each([
    ["GET", undefined],
    ["PATCH", { read: true, archived: true }],
    ["DELETE", undefined],
  ])("%s of Alice's notification with Mallory's token", async (method, body) => {
    const n = await create("xu-alice");
    const mallory = await h.tokenFor("xu-mallory");
    const res = await call(method, `/api/notifications/${n.id}`, { token: mallory, ...(body ? { body } : {}) });
    expectProblem(res, 404, "HERALD_NOT_FOUND");
    const row = (await h.database.query<{ read: boolean; archived: boolean }>(`SELECT read, archived FROM notifications WHERE id = $1`, [n.id]))[0];
    expect(row).toEqual({ read: false, archived: false });
  });

  it("read-all and the list only ever touch the caller's notifications", async () => {
    const n = await create("xu-dave");
    const eve = await h.tokenFor("xu-eve");
    await create("xu-eve");
    expect((await call("POST", "/api/notifications/read-all", { token: eve })).body).toEqual({ updated: 1 });
    const list = await call<Listed>("GET", "/api/notifications", { token: eve });
    expect(list.body.notifications.every((x) => x.userId === "xu-eve")).toBe(true);
    expect((await h.database.query<{ read: boolean }>(`SELECT read FROM notifications WHERE id = $1`, [n.id]))[0]!.read).toBe(false);
  });
});

describe("GET|PATCH /api/preferences", () => {
  it("answers the defaults for a user who never set any, and a partial update keeps the rest", async () => {
    const token = await h.tokenFor("pref-ann");
    const d = await call("GET", "/api/preferences", { token });
    expect(d.body).toMatchObject({ userId: "pref-ann", inAppEnabled: true, quietHoursStart: "22:00", soundVolume: 70, frequency: "immediate", updatedAt: null });
    const u = await call("PATCH", "/api/preferences", { token, body: { quietHoursEnabled: true, quietHoursStart: "23:30", soundVolume: 0 } });
    expect(u.status).toBe(200);
    expect(u.body).toMatchObject({ quietHoursEnabled: true, quietHoursStart: "23:30", quietHoursEnd: "08:00", soundVolume: 0, emailEnabled: true });
    // The cached copy was invalidated: a read sees the update.
    expect((await call("GET", "/api/preferences", { token })).body).toMatchObject({ quietHoursStart: "23:30", soundVolume: 0 });
  });

  it.each([
    ["quietHoursStart 24:00", { quietHoursStart: "24:00" }],
    ["quietHoursEnd 7:00", { quietHoursEnd: "7:00" }],
    ["soundVolume 101", { soundVolume: 101 }],
    ["soundVolume -1", { soundVolume: -1 }],
    ["soundVolume 50.5", { soundVolume: 50.5 }],
    ["frequency weekly", { frequency: "weekly" }],
    ["emailDigestFrequency monthly", { emailDigestFrequency: "monthly" }],
    ["inAppEnabled as a string", { inAppEnabled: "false" }],
    ["an unknown field", { userId: "pref-other" }],
    ["a valid field with an invalid one", { soundVolume: 10, quietHoursStart: "25:00" }],
  ])("refuses %s with a 400 problem and saves nothing", async (_name, body) => {
    const token = await h.tokenFor("pref-bea");
    const res = await call("PATCH", "/api/preferences", { token, body });
    expectProblem(res, 400, "HERALD_VALIDATION");
    expect((await h.database.query(`SELECT 1 FROM notification_preferences WHERE user_id = 'pref-bea'`)).length).toBe(0);
    expect((await call<NotificationPreferences>("GET", "/api/preferences", { token })).body.soundVolume).toBe(70);
  });

  it("refuses malformed JSON with a 400", async () => {
    const res = await call("PATCH", "/api/preferences", { token: await h.tokenFor("pref-bea"), raw: "{" });
    expect(res.status).toBe(400);
  });
});

describe("PUT|GET /api/users/:id (admin)", () => {
  it("creates then partially updates a user; null clears a field", async () => {
    const put = await call("PUT", "/api/users/provider-123", {
      token: admin,
      body: { email: "p123@example.com", name: "Pat", timezone: "Europe/Paris", locale: "fr-FR", phone: "+33612345678" },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ id: "provider-123", email: "p123@example.com", timezone: "Europe/Paris", locale: "fr-FR" });
    const upd = await call("PUT", "/api/users/provider-123", { token: admin, body: { name: "Patricia", phone: null } });
    expect(upd.body).toMatchObject({ name: "Patricia", phone: null, email: "p123@example.com", timezone: "Europe/Paris" });
    expect((await call("GET", "/api/users/provider-123", { token: admin })).body).toMatchObject({ name: "Patricia" });
    expectProblem(await call("GET", "/api/users/nobody-here", { token: admin }), 404, "HERALD_NOT_FOUND");
  });

  it.each([
    ["a bad time zone", { timezone: "Mars/Olympus" }],
    ["a bad e-mail", { email: "not-an-email" }],
    ["a bad phone", { phone: "0612" }],
    ["a bad locale", { locale: "!!" }],
    ["an unknown field", { role: "admin" }],
    ["a wrong type", { name: 5 }],
  ])("refuses %s with a 400 problem and writes nothing", async (_name, body) => {
    const before = await rowCounts(h);
    expectProblem(await call("PUT", "/api/users/user-bad", { token: admin, body }), 400, "HERALD_VALIDATION");
    expect(await rowCounts(h)).toEqual(before);
  });
});

describe("templates CRUD (admin)", () => {
  const body = { key: "pay.received", type: "payment_received", titleTemplate: "You received {{amount}}", messageTemplate: "From {{client}}" };
  it("creates, refuses a duplicate key, reads, lists, updates and deletes", async () => {
    expect((await call("POST", "/api/templates", { token: admin, body })).status).toBe(201);
    expectProblem(await call("POST", "/api/templates", { token: admin, body }), 409, "HERALD_CONFLICT");
    expect((await call("GET", "/api/templates/pay.received", { token: admin })).body).toMatchObject({ key: "pay.received", priority: null });
    const list = await call<{ templates: { key: string }[] }>("GET", "/api/templates", { token: admin });
    expect(list.body.templates.map((t) => t.key)).toContain("pay.received");
    const upd = await call("PUT", "/api/templates/pay.received", { token: admin, body: { priority: "critical", messageTemplate: "Paid by {{client}}" } });
    expect(upd.body).toMatchObject({ priority: "critical", messageTemplate: "Paid by {{client}}", titleTemplate: "You received {{amount}}" });
    expect((await call("DELETE", "/api/templates/pay.received", { token: admin })).status).toBe(204);
    expectProblem(await call("GET", "/api/templates/pay.received", { token: admin }), 404, "HERALD_NOT_FOUND");
    expectProblem(await call("PUT", "/api/templates/pay.received", { token: admin, body: { icon: "x" } }), 404, "HERALD_NOT_FOUND");
  });

  it.each([
    ["a bad key", { ...body, key: "Bad Key" }],
    ["an unknown field", { ...body, key: "t.unknown", owner: "me" }],
    ["a missing title template", { key: "t.missing", type: "new_message", messageTemplate: "m" }],
    ["a bad priority", { ...body, key: "t.prio", priority: "urgent" }],
  ])("refuses %s with a 400 problem and writes nothing", async (_name, b) => {
    const before = await rowCounts(h);
    expectProblem(await call("POST", "/api/templates", { token: admin, body: b }), 400, "HERALD_VALIDATION");
    expect(await rowCounts(h)).toEqual(before);
  });
});

describe("OpenAPI document", () => {
  it("describes every route of this domain", async () => {
    const doc = (await call("GET", "/api/openapi.json")).body as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(routes).toEqual(
      expect.arrayContaining([
        "GET /api/notifications",
        "POST /api/notifications",
        "GET /api/notifications/unread-count",
        "GET /api/notifications/{id}",
        "PATCH /api/notifications/{id}",
        "DELETE /api/notifications/{id}",
        "POST /api/notifications/read-all",
        "POST /api/notifications/broadcast",
        "GET /api/preferences",
        "PATCH /api/preferences",
        "PUT /api/users/{id}",
        "GET /api/users/{id}",
        "POST /api/templates",
        "GET /api/templates",
        "GET /api/templates/{key}",
        "PUT /api/templates/{key}",
        "DELETE /api/templates/{key}",
      ]),
    );
  });
});

describe("rate limit on creation routes", () => {
  it("answers 429 with Retry-After and a problem body past 600 requests a minute per credential", async () => {
    // A dedicated admin credential, so the other tests' bucket is untouched.
    const token = await mintToken(TEST_SECRET, {
      sub: `rate-admin-${randomUUID()}`,
      role: "admin",
      expiresIn: "1h",
    });
    const inject = (n: number) =>
      h.herald.app.inject({ method: "POST", url: "/api/notifications", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, payload: `{"n":${n}}` });
    for (let i = 0; i < 600; i++) expect((await inject(i)).statusCode).toBe(400);
    const limited = await inject(600);
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(limited.headers["content-type"]).toContain("application/problem+json");
    expect(limited.json()).toMatchObject({ status: 429, code: "HERALD_RATE_LIMITED" });
  });
});
