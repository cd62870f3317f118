/**
 * POST /api/analytics/events against hostile input (#15.1, #15.10 and the
 * nested-metadata 500): every refusal is a 400 problem body and records nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { uuid } from "./fixtures.js";

const MINE = uuid(11);

describe("analytics REST hardening", () => {
  let h: TestHerald;
  let alice: string;
  const eventsOn = async (id: string) =>
    (await h.database.query<{ event_type: string; user_id: string }>("SELECT event_type, user_id FROM analytics_events WHERE notification_id = $1 ORDER BY id", [id])).map(
      (r) => `${r.user_id}:${r.event_type}`,
    );
  const post = (body: string, token: string) =>
    fetch(`${h.baseUrl}/api/analytics/events`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body });

  beforeAll(async () => {
    h = await startTestHerald();
    alice = await h.tokenFor("alice");
    await h.database.query(`INSERT INTO notifications (id, user_id, type, priority, title, message) VALUES ($1, 'alice', 'new_message', 'high', 't', 'm')`, [MINE]);
  });
  afterAll(async () => h.stop());

  it("metadata with NUL, an unpaired surrogate or deep nesting is a 400 problem, and later events still arrive", async () => {
    const deep = `${'{"a":'.repeat(5000)}1${"}".repeat(5000)}`;
    for (const metadata of ['{"a":"\\u0000"}', '{"\\u0000":1}', '{"a":"\\ud800"}', deep, `{"a":"${"x".repeat(9000)}"}`]) {
      const res = await post(`{"notificationId":"${MINE}","eventType":"opened","metadata":${metadata}}`, alice);
      expect(res.status, metadata.slice(0, 30)).toBe(400);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      const problem = (await res.json()) as Record<string, unknown>;
      expect(problem).toMatchObject({ status: 400, code: "HERALD_VALIDATION" });
      expect(JSON.stringify(problem)).not.toMatch(/at .*\.ts:\d+/); // no stack
    }
    expect((await post(JSON.stringify({ notificationId: MINE, eventType: "clicked", metadata: { device: "mobile" } }), alice)).status).toBe(202);
    await h.herald.runtime.analytics.flush();
    expect(await eventsOn(MINE)).toEqual(["alice:clicked"]);
  });

  it("a provider may track only what its client observes: opened and clicked; sent, delivered, archived, deleted are 400", async () => {
    for (const eventType of ["sent", "delivered", "archived", "deleted"]) {
      const res = await post(JSON.stringify({ notificationId: MINE, eventType }), alice);
      expect(res.status, eventType).toBe(400);
      expect(await res.json()).toMatchObject({ code: "HERALD_VALIDATION" });
    }
    expect((await post(JSON.stringify({ notificationId: MINE, eventType: "opened" }), alice)).status).toBe(202);
    await h.herald.runtime.analytics.flush();
    expect(await eventsOn(MINE)).toEqual(["alice:clicked", "alice:opened"]);
  });

  it("an admin credential may track any type, on behalf of the notification's owner", async () => {
    const res = await post(JSON.stringify({ notificationId: MINE, eventType: "delivered" }), h.adminToken);
    expect(res.status).toBe(202);
    expect((await post(JSON.stringify({ notificationId: uuid(12345), eventType: "sent" }), h.adminToken)).status).toBe(404);
    expect((await post(JSON.stringify({ notificationId: MINE, eventType: "sent", userId: "bob" }), alice)).status).toBe(400);
    await h.herald.runtime.analytics.flush();
    expect((await eventsOn(MINE)).at(-1)).toBe("alice:delivered");
  });
});
