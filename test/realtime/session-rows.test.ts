/**
 * websocket_sessions rows carry peer-supplied text (close reason, user
 * agent): it is cleaned before it is stored, and a row the database refuses
 * anyway is set aside with a log line instead of blocking every later write
 * (#15.2).
 */
import { randomUUID } from "node:crypto";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { DeliveryLog } from "../../src/realtime/delivery-log.js";
import { storableText } from "../../src/realtime/peer-text.js";
import { systemClock } from "../../src/observability/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { closedOnServer, insertNotification } from "./helpers.js";

let h: TestHerald;
beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(async () => {
  await h?.stop();
});

type SessionRow = { user_id: string; user_agent: string | null; disconnected_at: Date | null; disconnect_reason: string | null };
const sessionsOf = (userId: string) =>
  h.database.query<SessionRow>("SELECT user_id, user_agent, disconnected_at, disconnect_reason FROM websocket_sessions WHERE user_id = $1", [userId]);

describe("websocket_sessions rows", () => {
  it("a close reason with NUL is stored cleaned, and later sessions are still written", async () => {
    const evil = new WebSocket(`${h.wsUrl}/ws?token=${await h.tokenFor("u-nul-close")}`, { headers: { "user-agent": `agent${"x".repeat(2000)}` } });
    await new Promise((resolve) => evil.once("open", resolve));
    const closed = new Promise((resolve) => evil.once("close", resolve));
    evil.close(4000, "bye\u0000now");
    await closed;
    await closedOnServer(h.herald.realtime, "u-nul-close");
    const [row] = await sessionsOf("u-nul-close");
    expect(row!.disconnected_at).not.toBeNull();
    expect(row!.disconnect_reason).toBe("byenow");
    expect(row!.user_agent!.startsWith("agentxxx")).toBe(true);
    expect(row!.user_agent!.length).toBeLessThanOrEqual(500);

    const later = new WebSocket(`${h.wsUrl}/ws?token=${await h.tokenFor("u-after-nul")}`);
    await new Promise((resolve) => later.once("open", resolve));
    later.close(1000, "done");
    await closedOnServer(h.herald.realtime, "u-after-nul");
    const [after] = await sessionsOf("u-after-nul");
    expect(after!.disconnected_at).not.toBeNull();
    expect(after!.disconnect_reason).toBe("done");
  });

  it("a row the database refuses is set aside with a log line; the rest of its batch and later batches are written", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (s: string) => void lines.push(s) });
    const log = new DeliveryLog({ database: h.database, analytics: h.herald.runtime.analytics, clock: systemClock, logger, intervalMs: 60_000 });
    const open = (id: string, userId: string) => log.sessionOpened({ id, userId, instanceId: "isolation-test", ip: null, userAgent: null, at: new Date() });
    const good = [randomUUID(), randomUUID(), randomUUID()];
    open(good[0]!, "u-iso");
    // Two rows the database refuses (not a uuid; NUL in text), each failing the whole statement before the fix.
    open("not-a-uuid", "u-iso");
    open(good[1]!, "u-iso");
    open(randomUUID(), "u-iso\u0000");
    open(good[2]!, "u-iso");
    const sent = await insertNotification(h.database, "u-iso");
    log.markSent(sent.id, "u-iso");
    log.sessionClosed({ id: good[0]!, at: new Date(), code: 1000, reason: "fine" });
    await log.flush();
    expect(log.pending).toBe(0);
    const rows = await h.database.query<{ id: string; user_id: string; disconnect_reason: string | null }>(
      "SELECT id, user_id, disconnect_reason FROM websocket_sessions WHERE instance_id = 'isolation-test' ORDER BY user_id",
    );
    expect(rows.map((r) => r.id).sort()).toEqual([...good].sort());
    expect(rows.find((r) => r.id === good[0])!.disconnect_reason).toBe("fine");
    const [n] = await h.database.query<{ delivery_status: string }>("SELECT delivery_status FROM notifications WHERE id = $1", [sent.id]);
    expect(n!.delivery_status).toBe("sent");
    expect(lines.filter((l) => l.includes("set aside")).length).toBe(2);
    await log.stop();
  });
});

describe("storableText", () => {
  it.each([
    ["plain", 10, "plain"],
    ["a\u0000b", 10, "ab"],
    ["lone \ud800 high", 20, "lone  high"],
    ["lone \udc00 low", 20, "lone  low"],
    ["pair \ud83d\ude00 kept", 20, "pair \ud83d\ude00 kept"],
    ["abcdef", 3, "abc"],
    // A cut never leaves half of a surrogate pair.
    ["ab\ud83d\ude00", 3, "ab"],
  ])("%j cut to %i -> %j", (input, max, expected) => {
    expect(storableText(input, max)).toBe(expected);
  });
  it("keeps null as null", () => {
    expect(storableText(null, 5)).toBeNull();
  });
});
