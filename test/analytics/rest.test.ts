/** REST under /api/analytics: who may do what, 400 problem bodies, streamed exports that parse back. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { parseCsv, uuid } from "./fixtures.js";

const MINE = uuid(1);
const THEIRS = uuid(2);

describe("analytics REST", () => {
  let h: TestHerald;
  let alice: string;
  let admin: Record<string, string>;
  const asAlice = () => ({ authorization: `Bearer ${alice}`, "content-type": "application/json" });
  const eventsOn = async (id: string) =>
    Number((await h.database.query<{ n: number }>("SELECT count(*)::int AS n FROM analytics_events WHERE notification_id = $1", [id]))[0]!.n);

  beforeAll(async () => {
    h = await startTestHerald();
    alice = await h.tokenFor("alice");
    admin = { authorization: `Bearer ${h.adminToken}` };
    for (const [id, user] of [
      [MINE, "alice"],
      [THEIRS, "bob"],
    ] as const) {
      await h.database.query(`INSERT INTO notifications (id, user_id, type, priority, title, message) VALUES ($1, $2, 'new_message', 'high', 't', 'm')`, [id, user]);
    }
  });
  afterAll(async () => h.stop());

  const post = (body: unknown, headers: Record<string, string> = asAlice()) =>
    fetch(`${h.baseUrl}/api/analytics/events`, { method: "POST", headers, body: JSON.stringify(body) });

  it("a provider tracks an event on its own notification: 202, then visible to the admin", async () => {
    // Sent and delivered are Herald's own events (here through the admin credential); opens are the client's.
    for (const [eventType, as] of [["sent", admin], ["delivered", admin], ["opened", asAlice()], ["opened", asAlice()]] as const) {
      const res = await post({ notificationId: MINE, eventType, metadata: { device: "mobile", browser: "Chrome" } }, { ...as, "content-type": "application/json" });
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ accepted: true });
    }
    const res = await fetch(`${h.baseUrl}/api/analytics/notifications/${MINE}`, { headers: admin });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ notificationId: MINE, sent: 1, delivered: 1, opened: 1, openRate: 100, events: { opened: 2 } });
  });

  it("tracking on someone else's notification is a 404 and writes nothing", async () => {
    const res = await post({ notificationId: THEIRS, eventType: "clicked" });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "HERALD_NOT_FOUND" });
    const missing = await post({ notificationId: uuid(404), eventType: "clicked" });
    expect(missing.status).toBe(404);
    await h.herald.runtime.analytics.flush();
    expect(await eventsOn(THEIRS)).toBe(0);
    expect(await eventsOn(uuid(404))).toBe(0);
  });

  it("a bad event type, a non-UUID id or an unknown field is a 400 problem body", async () => {
    for (const body of [
      { notificationId: MINE, eventType: "bounced" },
      { notificationId: "notif-123", eventType: "opened" },
      { notificationId: MINE, eventType: "opened", extra: 1 },
      { notificationId: MINE, eventType: "opened", metadata: [1, 2] },
    ]) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(await res.json()).toMatchObject({ status: 400, code: "HERALD_VALIDATION" });
    }
  });

  it("tracking needs a provider token; platform routes need an admin", async () => {
    expect((await post({ notificationId: MINE, eventType: "opened" }, { "content-type": "application/json" })).status).toBe(401);
    expect((await fetch(`${h.baseUrl}/api/analytics/overview`, { headers: asAlice() })).status).toBe(403);
    expect((await fetch(`${h.baseUrl}/api/analytics/users/bob`, { headers: asAlice() })).status).toBe(403);
    expect((await fetch(`${h.baseUrl}/api/analytics/me`, { headers: admin })).status).toBe(403);
  });

  it("a provider reads its own metrics and by-type breakdown", async () => {
    const me = await (await fetch(`${h.baseUrl}/api/analytics/me?days=7`, { headers: asAlice() })).json();
    expect(me).toMatchObject({ userId: "alice", days: 7, sent: 1, delivered: 1, opened: 1, deliveryRate: 100, openRate: 100 });
    const byType = (await (await fetch(`${h.baseUrl}/api/analytics/me/by-type`, { headers: asAlice() })).json()) as { type: string; opened: number }[];
    expect(byType.find((t) => t.type === "new_message")?.opened).toBe(1);
    expect((await fetch(`${h.baseUrl}/api/analytics/me?days=0`, { headers: asAlice() })).status).toBe(400);
  });

  it("admin routes answer: user, by type, trends, top, overview; unknown notification is 404", async () => {
    const get = async (path: string) => {
      const res = await fetch(`${h.baseUrl}/api/analytics${path}`, { headers: admin });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect((await get("/users/alice?days=30")).body).toMatchObject({ userId: "alice", sent: 1 });
    expect((await get("/users/alice/by-type?days=30")).status).toBe(200);
    const trends = await get("/trends?interval=week&days=14&tz=America/New_York");
    expect(trends.status).toBe(200);
    expect(trends.body).toMatchObject({ interval: "week", timeZone: "America/New_York" });
    expect((trends.body.buckets as { sent: number }[]).reduce((s, b) => s + b.sent, 0)).toBe(1);
    expect((await get("/top?by=click&limit=5&minDelivered=1")).status).toBe(200);
    const overview = await get("/overview?days=1");
    expect(overview.body).toMatchObject({ days: 1, sent: 1, delivered: 1, opened: 1 });
    // How fresh the figures are: the roll-up that counted every event before the read, not later than the answer.
    for (const body of [overview.body, trends.body]) {
      expect(Date.parse(body.asOf as string)).toBeLessThanOrEqual(Date.now());
    }
    expect((await get(`/notifications/${uuid(777)}`)).status).toBe(404);
  });

  it("bad interval, zone, format or kind are 400 problem bodies", async () => {
    for (const path of ["/trends?interval=hour", "/trends?tz=Mars/Olympus", "/export?format=xml", "/export?kind=users", "/top?by=views", "/notifications/notif-123"]) {
      const res = await fetch(`${h.baseUrl}/api/analytics${path}`, { headers: admin });
      expect(res.status, path).toBe(400);
      expect(await res.json()).toMatchObject({ code: "HERALD_VALIDATION" });
    }
  });

  it("exports stream as attachments with the right content type and parse back", async () => {
    const csv = await fetch(`${h.baseUrl}/api/analytics/export?format=csv&kind=events`, { headers: admin });
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-type")).toContain("text/csv");
    expect(csv.headers.get("content-disposition")).toMatch(/^attachment; filename="herald-events-\d{4}-\d{2}-\d{2}\.csv"$/);
    const rows = parseCsv(await csv.text());
    expect(rows.map((r) => r.eventType).sort()).toEqual(["delivered", "opened", "opened", "sent"]);
    expect(JSON.parse(rows[0]!.metadata!)).toEqual({ device: "mobile", browser: "Chrome" });

    const json = await fetch(`${h.baseUrl}/api/analytics/export?format=json&kind=aggregates&days=7`, { headers: admin });
    expect(json.headers.get("content-type")).toContain("application/json");
    expect(json.headers.get("content-disposition")).toContain('filename="herald-aggregates-');
    expect(await json.json()).toEqual([
      { notificationId: MINE, userId: "alice", type: "new_message", sent: 1, delivered: 1, opened: 1, clicked: 0, archived: 0, deleted: 0 },
    ]);
  });
});
