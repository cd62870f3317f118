import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import { mintToken } from "../../src/auth/index.js";
import { CloseCodes } from "../../src/protocol/index.js";
import { TEST_SECRET, type TestHerald, startTestHerald } from "../support/herald.js";
import { rawUpgrade } from "../reliability/support/raw-ws.js";
import { LOUD, Probe, closedOnServer, eventually, insertNotification, upgradeStatus } from "./helpers.js";

let h: TestHerald;

beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(async () => {
  await h?.stop();
});

describe("WebSocket server", () => {
  it("sends unread_count then a sync of unacknowledged notifications on connect, oldest first", async () => {
    const a = await insertNotification(h.database, "u-connect", "first");
    const b = await insertNotification(h.database, "u-connect", "second");
    const probe = await Probe.open(h.wsUrl, await h.tokenFor("u-connect"));
    const count = await probe.next("unread_count");
    const sync = await probe.next("sync");
    expect(count.count).toBe(2);
    expect(sync.notifications.map((n) => n.id)).toEqual([a.id, b.id]);
    expect(sync.cursor).toBe(b.seq);
    expect(sync.truncated).toBeUndefined();
    expect(probe.messages.map((m) => m.type).slice(0, 2)).toEqual(["unread_count", "sync"]);
    await probe.close();
  });

  it("delivers a live notification to every connection of the user, marks it sent and records a sent event", async () => {
    const token = await h.tokenFor("u-live");
    const [one, two] = [await Probe.open(h.wsUrl, token), await Probe.open(`${h.wsUrl}/ws`, token)];
    await Promise.all([one.next("sync"), two.next("sync")]);
    const n = await insertNotification(h.database, "u-live");
    await h.herald.realtime.publishNotification(n, LOUD);
    const [m1, m2] = await Promise.all([one.next("notification"), two.next("notification")]);
    expect(m1.notification.id).toBe(n.id);
    expect(m2.notification.title).toBe(n.title);
    expect(m1.presentation).toEqual(LOUD);
    // Marked sent as the frames went out: written by the next delivery-log flush.
    await h.herald.realtime.flushDeliveryLog();
    const [row] = await h.database.query<{ delivery_status: string; sent_at: Date | null }>("SELECT delivery_status, sent_at FROM notifications WHERE id = $1", [n.id]);
    expect(row!.delivery_status).toBe("sent");
    expect(row!.sent_at).not.toBeNull();
    await h.herald.runtime.analytics.flush();
    const events = await h.database.query<{ n: number }>("SELECT count(*)::int AS n FROM analytics_events WHERE notification_id = $1 AND event_type = 'sent'", [n.id]);
    expect(events[0]!.n).toBe(1);
    await Promise.all([one.close(), two.close()]);
  });

  it("an ack marks the notification delivered with deliveredAt, only for the acking user's rows", async () => {
    const mine = await insertNotification(h.database, "u-ack");
    const theirs = await insertNotification(h.database, "u-other");
    const probe = await Probe.open(h.wsUrl, await h.tokenFor("u-ack"));
    await probe.next("sync");
    probe.send({ type: "ack", id: mine.id });
    probe.send({ type: "ack", id: theirs.id });
    await probe.roundTrip();
    await h.herald.realtime.flushDeliveryLog();
    const rows = await h.database.query<{ id: string; delivery_status: string; delivered_at: Date | null }>(
      "SELECT id, delivery_status, delivered_at FROM notifications WHERE id = ANY($1::uuid[])",
      [[mine.id, theirs.id]],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(mine.id)!.delivery_status).toBe("delivered");
    expect(byId.get(mine.id)!.delivered_at).not.toBeNull();
    expect(byId.get(theirs.id)!.delivery_status).toBe("pending");
    await h.herald.runtime.analytics.flush();
    const events = await h.database.query<{ n: number }>("SELECT count(*)::int AS n FROM analytics_events WHERE notification_id = $1 AND event_type = 'delivered'", [mine.id]);
    expect(events[0]!.n).toBe(1);
    // Acknowledged rows are no longer part of a fresh connection's sync.
    const again = await Probe.open(h.wsUrl, await h.tokenFor("u-ack"));
    expect((await again.next("sync")).notifications).toEqual([]);
    await Promise.all([probe.close(), again.close()]);
  });

  it("refuses missing, expired, wrongly signed and admin tokens with 401 before the socket opens", async () => {
    const expired = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("u").setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(new TextEncoder().encode(TEST_SECRET));
    const wrongKey = await mintToken("another-secret-that-is-long-enough-for-hs256-xx", { sub: "u" });
    expect(await upgradeStatus(h.wsUrl)).toBe(401);
    expect(await upgradeStatus(`${h.wsUrl}/?token=${expired}`)).toBe(401);
    expect(await upgradeStatus(`${h.wsUrl}/?token=${wrongKey}`)).toBe(401);
    expect(await upgradeStatus(`${h.wsUrl}/ws`, ["herald.v1", wrongKey])).toBe(401);
    // An admin credential is no provider token, and is answered like a wrong one (test/realtime/auth-failures.test.ts).
    expect(await upgradeStatus(`${h.wsUrl}/?token=${h.adminToken}`)).toBe(401);
  });

  it("accepts the token in Sec-WebSocket-Protocol and answers with the herald sub-protocol", async () => {
    const probe = await Probe.open(`${h.wsUrl}/ws`, undefined, { protocols: ["herald.v1", await h.tokenFor("u-proto")] });
    expect(probe.ws.protocol).toBe("herald.v1");
    await probe.next("sync");
    await probe.close();
  });

  it("never echoes a token offered as the only sub-protocol; answers only herald.v1 (#15.13)", async () => {
    const port = Number(new URL(h.wsUrl).port);
    const token = await h.tokenFor("u-proto-only");
    for (const offered of [token, `bearer.${token}`]) {
      const raw = await rawUpgrade(port, "/ws", [`Sec-WebSocket-Protocol: ${offered}`]);
      expect(raw.status).toBe(101);
      expect(raw.head).not.toContain(token);
      expect(raw.head.toLowerCase()).not.toContain("sec-websocket-protocol");
      raw.socket.destroy();
    }
    const ours = await rawUpgrade(port, "/ws", [`Sec-WebSocket-Protocol: ${token}, herald.v1`]);
    expect(ours.head).toMatch(/^Sec-WebSocket-Protocol: herald\.v1$/im);
    expect(ours.head).not.toContain(token);
    ours.socket.destroy();
  });

  it("destroys upgrades on other paths", async () => {
    await expect(Probe.open(`${h.wsUrl}/elsewhere`, await h.tokenFor("u"))).rejects.toThrow();
  });

  it("answers malformed JSON, unknown types and bad ids with an error and counts them, keeping the socket open", async () => {
    const probe = await Probe.open(h.wsUrl, await h.tokenFor("u-bad"));
    await probe.next("sync");
    probe.send("{not json");
    expect((await probe.next("error", (e) => e.code === "malformed_json")).message).toMatch(/JSON/);
    probe.send({ type: "explode" });
    await probe.next("error", (e) => e.code === "unknown_type");
    probe.send({ type: "ack", id: "not-a-uuid" });
    await probe.next("error", (e) => e.code === "invalid_message");
    probe.send([1, 2]);
    probe.send({ type: "ping" });
    await probe.next("pong");
    expect(probe.of("error")).toHaveLength(4);
    const metrics = await h.herald.runtime.metrics.getSingleMetricAsString("herald_ws_errors_total");
    expect(metrics).toMatch(/reason="malformed_json"} [1-9]/);
    expect(metrics).toMatch(/reason="unknown_type"} [1-9]/);
    await probe.close();
  });

  it("answers read of another user's notification with not_found", async () => {
    const probe = await Probe.open(h.wsUrl, await h.tokenFor("u-read-other"));
    await probe.next("sync");
    const n = await insertNotification(h.database, "someone-else");
    probe.send({ type: "read", id: n.id });
    expect((await probe.next("error")).code).toBe("not_found");
    const [row] = await h.database.query<{ read: boolean }>("SELECT read FROM notifications WHERE id = $1", [n.id]);
    expect(row!.read).toBe(false);
    await probe.close();
  });

  it("closes with 1009 a message larger than maxPayload", async () => {
    const probe = await Probe.open(h.wsUrl, await h.tokenFor("u-big"));
    await probe.next("sync");
    probe.send({ type: "ping", pad: "x".repeat(70 * 1024) });
    expect((await probe.closed).code).toBe(CloseCodes.messageTooBig);
  });

  it("closes with 4029 a client that keeps flooding past the rate limit, after an error", async () => {
    const probe = await Probe.open(h.wsUrl, await h.tokenFor("u-flood"));
    await probe.next("sync");
    for (let i = 0; i < 400 && probe.ws.readyState === probe.ws.OPEN; i++) probe.send({ type: "ping" });
    const closed = await probe.closed;
    expect(closed.code).toBe(CloseCodes.rateLimited);
    expect(probe.of("error").some((e) => e.code === "rate_limited")).toBe(true);
  });

  it("closes with 4001 when the token expires during the connection", async () => {
    const probe = await Probe.open(h.wsUrl, await mintToken(TEST_SECRET, { sub: "u-expiring", expiresIn: 2 }));
    await probe.next("sync");
    expect((await probe.closed).code).toBe(CloseCodes.tokenExpired);
  });

  it("writes a websocket_sessions row on connect and completes it with code and reason on disconnect", async () => {
    const probe = await Probe.open(h.wsUrl, await h.tokenFor("u-session"));
    await probe.next("sync");
    await h.herald.realtime.flushDeliveryLog();
    expect(await h.database.query("SELECT 1 FROM websocket_sessions WHERE user_id = 'u-session'")).toHaveLength(1);
    probe.ws.close(4100, "bye");
    await probe.closed;
    await closedOnServer(h.herald.realtime, "u-session");
    const [row] = await h.database.query<{ disconnected_at: Date | null; disconnect_code: number; disconnect_reason: string; instance_id: string }>(
      "SELECT disconnected_at, disconnect_code, disconnect_reason, instance_id FROM websocket_sessions WHERE user_id = 'u-session'",
    );
    expect(row!.disconnected_at).not.toBeNull();
    expect(row!.disconnect_code).toBe(4100);
    expect(row!.disconnect_reason).toBe("bye");
    expect(row!.instance_id).toBe(h.herald.runtime.instanceId);
  });

  it("counts connections and providers, and forgets them on disconnect", async () => {
    const before = h.herald.realtime.getConnectedClientsCount();
    const token = await h.tokenFor("u-count");
    const probes = [await Probe.open(h.wsUrl, token), await Probe.open(h.wsUrl, token)];
    await Promise.all(probes.map((p) => p.next("sync")));
    expect(h.herald.realtime.getConnectedClientsCount()).toBe(before + 2);
    expect(h.herald.realtime.getConnectedProviders()).toContain("u-count");
    expect(await h.herald.realtime.isOnline("u-count")).toBe(true);
    await Promise.all(probes.map((p) => p.close()));
    await eventually(() => h.herald.realtime.getConnectedProviders(), (users) => !users.includes("u-count"));
    expect(await h.herald.realtime.isOnline("u-count")).toBe(false);
  });
});
