/**
 * DELETE /api/users/{id} (right to erasure, #19.2) on a whole Herald: after
 * it, no table holds the user's id or the text of their notifications, their
 * live connection was closed with 4410, their cached preferences are gone,
 * another user's rows are exactly as before, and a second DELETE is a 404.
 * Runs on PGlite, or PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set.
 */
import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CloseCodes } from "../../src/protocol/index.js";
import { api, expectProblem } from "../notifications/api.js";
import type { Created } from "../support/bodies.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

/** Ids no other text in the database can contain by chance. */
const GONE = `erase-me-${randomUUID()}`;
const KEPT = `keep-me-${randomUUID()}`;
/** In the titles of GONE's own notifications: must not survive anywhere (analytics copies included). */
const SECRET = `secret-title-${randomUUID()}`;

/** Every base table of the test schema. */
async function tables(h: TestHerald): Promise<string[]> {
  const rows = await h.database.query<{ t: string }>(
    `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`,
  );
  return rows.map((r) => r.t);
}

/** Rows of each table whose text (every column, JSON included) contains `needle`. */
async function rowsMentioning(h: TestHerald, needle: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of await tables(h)) {
    const [row] = await h.database.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${t}" x WHERE strpos(x::text, $1) > 0`, [needle]);
    out[t] = row!.n;
  }
  return out;
}

/** The rows themselves, as text, of each table mentioning `needle` (for comparing before and after). */
async function snapshot(h: TestHerald, needle: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of await tables(h)) {
    const rows = await h.database.query<{ r: string }>(`SELECT x::text AS r FROM "${t}" x WHERE strpos(x::text, $1) > 0 ORDER BY 1`, [needle]);
    out[t] = rows.map((r) => r.r);
  }
  return out;
}

describe("DELETE /api/users/{id}: right to erasure", () => {
  let h: TestHerald;
  let call: ReturnType<typeof api>;
  let goneSocket: WebSocket;
  let goneClosed: Promise<number>;

  /** Gives `userId` something in every table a user can reach through the API (and a push subscription and digest row). */
  async function populate(userId: string, titleMarker: string): Promise<string[]> {
    const admin = h.adminToken;
    expect((await call("PUT", `/api/users/${userId}`, { token: admin, body: { email: `${userId}@example.test`, phone: "+14155550100" } })).status).toBe(200);
    expect((await call("PATCH", `/api/users/${userId}/preferences`, { token: admin, body: { soundVolume: 12 } })).status).toBe(200);
    // Read once, so the preferences sit in the cache.
    expect((await call("GET", `/api/users/${userId}/preferences`, { token: admin })).status).toBe(200);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call<Created>("POST", "/api/notifications", {
        token: admin,
        body: { userId, type: "new_message", title: `${titleMarker} ${i}`, message: "m", idempotencyKey: `k-${i}` },
      });
      expect(res.status).toBe(201);
      ids.push(res.body.notification.id);
    }
    const token = await h.tokenFor(userId);
    // Read (an `opened` event), clicked (an event from the client), deleted (an analytics copy of the deleted row).
    expect((await call("PATCH", `/api/notifications/${ids[0]}`, { token, body: { read: true } })).status).toBe(200);
    expect((await call("POST", "/api/analytics/events", { token, body: { notificationId: ids[1], eventType: "clicked" } })).status).toBe(202);
    expect((await call("DELETE", `/api/notifications/${ids[2]}`, { token })).status).toBe(204);
    await h.database.query(`INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth) VALUES ($1, $2, 'p', 'a')`, [userId, `https://push.example.test/${userId}`]);
    await h.database.query(
      `INSERT INTO email_digests (user_id, frequency, status, scheduled_for, email_address, notification_count) VALUES ($1, 'daily', 'sent', now(), $2, 2)`,
      [userId, `${userId}@example.test`],
    );
    return ids;
  }

  beforeAll(async () => {
    h = await startTestHerald();
    call = api(h);
    await populate(KEPT, "kept title");
    const goneIds = await populate(GONE, SECRET);
    // A broadcast reaches both (its counts are platform-wide and stay; GONE's row of it goes).
    expect((await call("POST", "/api/notifications/broadcast", { token: h.adminToken, body: { type: "platform_update", title: "Maintenance", message: "tonight" } })).status).toBe(201);
    // A live device of GONE that acknowledged a notification: a websocket session, a device cursor, a `delivered` event.
    goneSocket = new WebSocket(`${h.wsUrl}/ws?device=phone&token=${encodeURIComponent(await h.tokenFor(GONE))}`);
    goneClosed = new Promise((resolve) => goneSocket.once("close", (code) => resolve(code)));
    await new Promise((resolve, reject) => goneSocket.once("open", resolve).once("error", reject));
    goneSocket.send(JSON.stringify({ type: "ack", id: goneIds[1] }));
    // The ack and the session row are buffered by the delivery log: wait until both are written.
    const written = async () =>
      (await h.database.query("SELECT 1 FROM device_cursors WHERE user_id = $1 UNION ALL SELECT 1 FROM websocket_sessions WHERE user_id = $1", [GONE])).length >= 2;
    for (let flushes = 0; !(await written()); flushes++) {
      if (flushes === 100) throw new Error("the ack or the session never reached device_cursors / websocket_sessions");
      await h.herald.realtime.flushDeliveryLog();
    }
    await h.herald.runtime.analytics.flush();
  }, 180_000); // two users' worth of fixtures through the REST API: slow on embedded PGlite when the machine is busy
  afterAll(async () => {
    goneSocket?.terminate();
    await h?.stop();
  });

  it("erases every row of the user, keeps every row of another user, and closes the user's connection with 4410", async () => {
    const before = await rowsMentioning(h, GONE);
    // The fixture reached every table a user has rows in (so the check below proves something).
    for (const t of ["users", "notifications", "notification_queue", "notification_preferences", "idempotency_keys", "analytics_events", "analytics_firsts", "push_subscriptions", "email_digests", "websocket_sessions", "device_cursors"]) {
      expect(before[t], `${t} holds the user before the erasure`).toBeGreaterThan(0);
    }
    expect(Object.values(await rowsMentioning(h, SECRET)).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    const kept = await snapshot(h, KEPT);
    // Every event written so far folded into the rollups (they are maintained by a roll-up pass, #17).
    await h.herald.realtime.flushDeliveryLog();
    await h.herald.runtime.analytics.flush();
    const rollupBefore = await h.database.query<{ n: number }>("SELECT COALESCE(sum(sent + delivered + opened + clicked + deleted), 0)::int AS n FROM analytics_rollup");

    const res = await call("DELETE", `/api/users/${GONE}`, { token: h.adminToken });
    expect(res.status).toBe(204);

    expect(await goneClosed).toBe(CloseCodes.userErased);
    await h.herald.realtime.flushDeliveryLog();
    await h.herald.runtime.analytics.flush();
    const after = await rowsMentioning(h, GONE);
    expect(Object.entries(after).filter(([, n]) => n > 0)).toEqual([]);
    expect(Object.entries(await rowsMentioning(h, SECRET)).filter(([, n]) => n > 0)).toEqual([]);
    expect(await snapshot(h, KEPT)).toEqual(kept);
    // Platform-wide counts are not the user's: they stay (docs/auth.md).
    expect(await h.database.query("SELECT COALESCE(sum(sent + delivered + opened + clicked + deleted), 0)::int AS n FROM analytics_rollup")).toEqual(rollupBefore);
  });

  it("drops the user's cached preferences and directory entry, and a second DELETE answers 404", async () => {
    const prefs = await call<{ soundVolume: number; updatedAt: string | null }>("GET", `/api/users/${GONE}/preferences`, { token: h.adminToken });
    expect(prefs.status).toBe(200);
    expect(prefs.body).toMatchObject({ soundVolume: 70, updatedAt: null });
    expectProblem(await call("GET", `/api/users/${GONE}`, { token: h.adminToken }), 404, "HERALD_NOT_FOUND");
    expectProblem(await call("DELETE", `/api/users/${GONE}`, { token: h.adminToken }), 404, "HERALD_NOT_FOUND");
    // The other user is still served from the directory and the cache.
    expect((await call<{ soundVolume: number }>("GET", `/api/users/${KEPT}/preferences`, { token: h.adminToken })).body.soundVolume).toBe(12);
  });

  it("is for admins only, and refuses a malformed id without touching anything", async () => {
    expect((await call("DELETE", `/api/users/${KEPT}`, { token: await h.tokenFor(KEPT) })).status).toBe(403);
    expect((await call("DELETE", `/api/users/${KEPT}`)).status).toBe(401);
    // Malformed: no id a token could carry (a NUL cannot be stored; 255 characters at most). A space is an id (routes.test.ts).
    expectProblem(await call("DELETE", "/api/users/bad%00id", { token: h.adminToken }), 400, "HERALD_VALIDATION");
    expectProblem(await call("DELETE", `/api/users/${"x".repeat(256)}`, { token: h.adminToken }), 400, "HERALD_VALIDATION");
    expect((await rowsMentioning(h, KEPT)).users).toBe(1);
  });
});
