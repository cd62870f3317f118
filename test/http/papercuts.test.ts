/**
 * The small HTTP things of issue 19.8, through REST on a whole Herald: a test
 * digest needs no body, the top notifications need no minDelivered, the
 * queue's status filter says what is stored (a send held by quiet hours is
 * pending, with nextRetryAt at their end), and an idempotencyKey names one
 * request (other content is a 409; a key stored before request hashes keeps
 * answering the original).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/observability/index.js";
import { type ApiResponse, api, expectProblem, rowCounts } from "../notifications/api.js";
import type { Created, Problem } from "../support/bodies.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

let h: TestHerald;
let call: ReturnType<typeof api>;
// Noon UTC: inside the quiet hours the queue test sets (11:00-13:00, users without a zone are in UTC).
const clock = new ManualClock("2024-01-15T12:00:00Z");

beforeAll(async () => {
  h = await startTestHerald({ clock });
  call = api(h);
});
afterAll(() => h?.stop());

const admin = () => ({ token: h.adminToken });
const create = <T = Created>(body: unknown) => call<T>("POST", "/api/notifications", { ...admin(), body });

describe("POST /api/digests/test", () => {
  /** A user in the directory with an address, and a fetch of the route with exactly these headers and body. */
  async function testDigest(userId: string, init: { headers?: Record<string, string>; body?: string }) {
    expect((await call("PUT", `/api/users/${userId}`, { ...admin(), body: { email: `${userId}@example.test` } })).status).toBe(200);
    const token = await h.tokenFor(userId);
    const res = await fetch(`${h.baseUrl}/api/digests/test`, { method: "POST", headers: { authorization: `Bearer ${token}`, ...init.headers }, body: init.body });
    return { status: res.status, type: res.headers.get("content-type"), body: (await res.json()) as { frequency?: string; userId?: string; code?: string } };
  }

  it.each([
    ["no body and no content type", {}],
    ["a JSON content type and an empty body", { headers: { "content-type": "application/json" }, body: "" }],
    ["an empty object", { headers: { "content-type": "application/json" }, body: "{}" }],
  ])("with %s sends the daily digest (the documented default)", async (_name, init) => {
    const userId = `digest-nobody-${Math.random().toString(36).slice(2, 8)}`;
    const res = await testDigest(userId, init);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ userId, frequency: "daily" });
  });

  it("still refuses an unknown frequency with a 400 problem", async () => {
    const res = await testDigest("digest-bad-frequency", { headers: { "content-type": "application/json" }, body: '{"frequency":"monthly"}' });
    expect([res.status, res.body.code]).toEqual([400, "HERALD_VALIDATION"]);
    expect(res.type).toContain("application/problem+json");
  });
});

describe("POST with an empty JSON body elsewhere", () => {
  it("is a validation problem naming the body where the route needs one, and writes nothing", async () => {
    const before = await rowCounts(h);
    const res = await call<Problem>("POST", "/api/notifications", { ...admin(), raw: "" });
    expectProblem(res, 400, "HERALD_VALIDATION");
    expect(await rowCounts(h)).toEqual(before);
  });

  it("is accepted where the route takes no body", async () => {
    const token = await h.tokenFor("empty-body-read-all");
    const res = await call<{ updated: number }>("POST", "/api/notifications/read-all", { token, raw: "" });
    expect([res.status, res.body]).toEqual([200, { updated: 0 }]);
  });
});

describe("GET /api/analytics/top", () => {
  it("answers a notification delivered once without minDelivered (default 1), and minDelivered still filters", async () => {
    const created = await create({ userId: "top-once", type: "system", title: "Seen once", message: "m" });
    const id = created.body.notification.id;
    for (const eventType of ["delivered", "opened"]) {
      expect((await call("POST", "/api/analytics/events", { ...admin(), body: { notificationId: id, eventType } })).status).toBe(202);
    }
    const top = await call<{ id: string; delivered: number; opened: number }[]>("GET", "/api/analytics/top", admin());
    expect(top.status).toBe(200);
    expect(top.body.find((t) => t.id === id)).toMatchObject({ delivered: 1, opened: 1 });
    const stricter = await call<{ id: string }[]>("GET", "/api/analytics/top?minDelivered=2", admin());
    expect(stricter.body.map((t) => t.id)).not.toContain(id);
  });
});

describe("GET /api/admin/queue?status=", () => {
  interface QueueRow {
    notificationId: string;
    channel: string;
    kind: string;
    status: string;
    nextRetryAt: string;
  }
  const queue = (query: string) => call<{ rows: QueueRow[]; total: number }>("GET", `/api/admin/queue?${query}`, admin());
  const quietHours = { quietHoursEnabled: true, quietHoursStart: "11:00", quietHoursEnd: "13:00", emailEnabled: true };

  it("a send held by quiet hours is pending until their end; held is a member of an hourly bundle", async () => {
    const quiet = await h.tokenFor("queue-quiet");
    const hourly = await h.tokenFor("queue-hourly");
    expect((await call("PATCH", "/api/preferences", { token: quiet, body: { ...quietHours, frequency: "immediate" } })).status).toBe(200);
    expect((await call("PATCH", "/api/preferences", { token: hourly, body: { frequency: "hourly", emailEnabled: true } })).status).toBe(200);
    // High priority: e-mailed at once outside quiet hours (normal priority would wait to be seen in-app first).
    const held = (await create({ userId: "queue-quiet", type: "system", priority: "high", title: "At night", message: "m" })).body.notification.id;
    const bundled = (await create({ userId: "queue-hourly", type: "system", priority: "high", title: "Hourly", message: "m" })).body.notification.id;

    const quietRows = (await queue("userId=queue-quiet")).body.rows;
    expect(quietRows).toEqual([expect.objectContaining({ notificationId: held, channel: "email", status: "pending", nextRetryAt: "2024-01-15T13:00:00.000Z" })]);
    expect((await queue("userId=queue-quiet&status=pending")).body.rows.map((r) => r.notificationId)).toEqual([held]);
    expect((await queue("userId=queue-quiet&status=held")).body.total).toBe(0);

    const member = (await queue("userId=queue-hourly&status=held")).body.rows;
    expect(member).toEqual([expect.objectContaining({ notificationId: bundled, kind: "member", status: "held" })]);
  });

  it("documents what each status means, and refuses one that is not stored", async () => {
    const doc = (await call<{ paths: Record<string, { get: { parameters: { name: string; schema: { enum: string[] }; description?: string }[] } }> }>("GET", "/api/openapi.json")).body;
    const status = doc.paths["/api/admin/queue"]!.get.parameters.find((p) => p.name === "status")!;
    expect(status.schema.enum).toContain("held");
    expect(status.description ?? "").toMatch(/held by quiet hours .*pending|pending.*held by quiet hours/);
    expectProblem(await queue("status=waiting"), 400, "HERALD_VALIDATION");
  });
});

describe("idempotencyKey", () => {
  const body = (over: Record<string, unknown> = {}) => ({ userId: "idem-http", type: "system", title: "Paid", message: "m", idempotencyKey: "order-1", ...over });

  it("the same body answers the original; another body is a 409 problem that writes nothing", async () => {
    const first = await create(body());
    const again = await create(body());
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.body.notification.id).toBe(first.body.notification.id);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const before = await rowCounts(h);
    const other: ApiResponse<Problem> = await create<Problem>(body({ title: "Paid twice" }));
    expectProblem(other, 409, "HERALD_CONFLICT");
    expect(await rowCounts(h)).toEqual(before);
  });

  it("a key stored without a request hash (before migration 0009) keeps answering the original, whatever the body", async () => {
    const first = await create(body({ userId: "idem-legacy" }));
    await h.database.query("UPDATE idempotency_keys SET request_hash = NULL WHERE user_id = $1 AND key = $2", ["idem-legacy", "order-1"]);
    const other = await create(body({ userId: "idem-legacy", title: "Other content" }));
    expect(other.status).toBe(201);
    expect(other.body.notification).toEqual(first.body.notification);
    expect(other.headers.get("idempotent-replayed")).toBe("true");
  });
});
