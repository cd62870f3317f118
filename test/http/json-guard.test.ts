/**
 * One guard for every JSON body (src/http/json-body.ts): text PostgreSQL
 * cannot store (NUL, a lone UTF-16 surrogate: refused in jsonb, silently
 * replaced in text) and nesting past 32 levels are a 400 problem naming the
 * field, before any route runs, so nothing is stored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";

let h: TestHerald;
let alice: string;
let notificationId: string;
beforeAll(async () => {
  h = await startTestHerald();
  alice = await h.tokenFor("guard-alice");
  await h.herald.app.inject({ method: "PUT", url: "/api/users/guard-alice", headers: { authorization: `Bearer ${h.adminToken}` }, payload: { name: "Alice" } });
  const created = await h.herald.app.inject({
    method: "POST",
    url: "/api/notifications",
    headers: { authorization: `Bearer ${h.adminToken}` },
    payload: { userId: "guard-alice", type: "new_message", title: "t", message: "m" },
  });
  notificationId = (created.json() as { notification: { id: string } }).notification.id;
});
afterAll(() => h.stop());

const post = (url: string, token: string, raw: string) =>
  h.herald.app.inject({ method: "POST", url, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, payload: raw });
const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

describe("JSON body guard", () => {
  it("metadata nested 10,000 levels is a 400 problem, not a 500", async () => {
    const res = await post("/api/analytics/events", alice, `{"notificationId":"${notificationId}","eventType":"clicked","metadata":${nested(10_000)}}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ status: 400, code: "HERALD_VALIDATION" });
    expect(res.body).not.toMatch(/at .+\.js:\d+/); // no stack
  });

  it("32 levels pass the guard, 33 do not", async () => {
    const ok = await post("/api/notifications", h.adminToken, JSON.stringify({ userId: "guard-deep", type: "new_message", title: "t", message: "m", data: JSON.parse(nested(31)) }));
    expect(ok.statusCode).toBe(201);
    const deep = await post("/api/notifications", h.adminToken, JSON.stringify({ userId: "guard-deep", type: "new_message", title: "t", message: "m", data: JSON.parse(nested(32)) }));
    expect(deep.statusCode).toBe(400);
    expect(deep.json()).toMatchObject({ code: "HERALD_VALIDATION", errors: [{ field: "body" }] });
  });

  it("a NUL in a string or a key names the field, and nothing is stored", async () => {
    const cases: [string, string][] = [
      [JSON.stringify({ notificationId, eventType: "clicked", metadata: { device: "a\u0000b" } }), "body.metadata.device"],
      [JSON.stringify({ notificationId, eventType: "clicked", metadata: { "k\u0000": 1 } }), "body.metadata"],
      [JSON.stringify({ notificationId, eventType: "clicked", metadata: { list: ["ok", "x\u0000"] } }), "body.metadata.list.1"],
    ];
    for (const [raw, field] of cases) {
      const res = await post("/api/analytics/events", alice, raw);
      expect(res.statusCode, raw).toBe(400);
      expect(res.json()).toMatchObject({ code: "HERALD_VALIDATION", errors: [{ field }] });
    }
    await h.herald.analytics.getUserMetrics("guard-alice"); // reads flush this process's pending events first
    expect(await h.database.query("SELECT 1 FROM analytics_events WHERE user_id = 'guard-alice'")).toEqual([]);
  });

  it("a lone UTF-16 surrogate is refused, a well-formed pair is accepted", async () => {
    const lone = await post("/api/notifications", h.adminToken, '{"userId":"guard-sur","type":"new_message","title":"x\\ud800","message":"m"}');
    expect(lone.statusCode).toBe(400);
    expect(lone.json()).toMatchObject({ code: "HERALD_VALIDATION", errors: [{ field: "body.title" }] });
    const pair = await post("/api/notifications", h.adminToken, '{"userId":"guard-sur","type":"new_message","title":"x\\ud83d\\ude00","message":"m"}');
    expect(pair.statusCode).toBe(201);
    expect(await h.database.query("SELECT title FROM notifications WHERE user_id = 'guard-sur'")).toEqual([{ title: "x\u{1F600}" }]);
  });

  it("bytes that are not UTF-8 are refused, not stored as U+FFFD; a charset other than UTF-8 is 415", async () => {
    const raw = (body: Buffer, contentType: string) =>
      h.herald.app.inject({ method: "POST", url: "/api/notifications", headers: { authorization: `Bearer ${h.adminToken}`, "content-type": contentType }, payload: body });
    const invalid = Buffer.concat([Buffer.from('{"userId":"guard-utf8","type":"new_message","title":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('","message":"m"}')]);
    const bad = await raw(invalid, "application/json");
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ status: 400, code: "HERALD_VALIDATION" });
    // "café" in Latin-1, declared as such: Herald reads JSON as UTF-8 only (RFC 8259), so it says so.
    const latin1 = Buffer.from('{"userId":"guard-utf8","type":"new_message","title":"caf\xe9","message":"m"}', "latin1");
    const declared = await raw(latin1, "application/json; charset=iso-8859-1");
    expect(declared.statusCode).toBe(415);
    expect(declared.headers["content-type"]).toContain("application/problem+json");
    const utf16 = await raw(Buffer.from('{"userId":"guard-utf8","type":"new_message","title":"t","message":"m"}', "utf16le"), "application/json; charset=utf-16le");
    expect(utf16.statusCode).toBe(415);
    expect(await h.database.query("SELECT title FROM notifications WHERE user_id = 'guard-utf8'")).toEqual([]);
    // UTF-8 declared (any spelling) or no charset at all, and a byte order mark, are fine.
    for (const [contentType, body] of [
      ["application/json; charset=UTF-8", Buffer.from('{"userId":"guard-utf8","type":"new_message","title":"caf\u00e9","message":"m"}')],
      ['application/json;charset="utf8"', Buffer.from('{"userId":"guard-utf8","type":"new_message","title":"café","message":"m"}')],
      ["application/json", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"userId":"guard-utf8","type":"new_message","title":"café","message":"m"}')])],
    ] as const) expect((await raw(body, contentType)).statusCode, contentType).toBe(201);
    expect(await h.database.query("SELECT DISTINCT title FROM notifications WHERE user_id = 'guard-utf8'")).toEqual([{ title: "café" }]);
  });

  it("brackets inside strings do not count as nesting", async () => {
    const res = await post("/api/notifications", h.adminToken, JSON.stringify({ userId: "guard-str", type: "new_message", title: "[".repeat(100), message: "{".repeat(100) }));
    expect(res.statusCode).toBe(201);
  });
});
