/**
 * A connect's unread_count and first sync page leave in ONE write to the TCP
 * socket (connection.ts `writeTogether`): in a connect storm each socket
 * write is a system call, as costly as much of the connect's JavaScript. The
 * client still receives two text messages, badge first; when ws's sender
 * holds a message back, they go through ws, in order.
 */
import { afterEach, describe, expect, it } from "vitest";
import { wsPair } from "./ws-pair.js";
import { Connection, type ConnectionShared } from "../../src/realtime/connection.js";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const pair = (perMessageDeflate: boolean) => wsPair(perMessageDeflate, cleanup);

const shared = (counts: { sent: number; slow: number }, maxBufferedBytes = 1 << 20): ConnectionShared => ({
  limits: { maxBufferedBytes, maxHeldFrames: 100, maxRememberedIds: 100, messagesPerSecond: 10, messageBurst: 10, rateLimitStrikes: 3, closeGraceMs: 1000 },
  hooks: {
    onPushed: () => undefined,
    onSent: () => {
      counts.sent += 1;
    },
    onSlowConsumer: () => {
      counts.slow += 1;
    },
  },
});

const BADGE = JSON.stringify({ type: "unread_count", count: 3 });
/** A page over 65,535 bytes (8-byte length header) with non-ASCII text (byte length != string length). */
const PAGE = JSON.stringify({ type: "sync", notifications: [{ id: "n1", title: "Réunion à 10 h ✓", message: "é".repeat(40_000) }], cursor: 7 });

describe("the connect-time badge and sync page", () => {
  it("go out in one socket write, received as two text messages, badge first", async () => {
    const p = await pair(false);
    const counts = { sent: 0, slow: 0 };
    const conn = new Connection(p.server, "u1", 0, shared(counts));
    conn.beginSync();
    const before = p.counter.writes;
    conn.endSync({ text: PAGE }, ["n1"], { text: BADGE });
    expect(p.counter.writes - before).toBe(1);
    await p.until(2);
    expect(p.got).toEqual([
      [BADGE, false],
      [PAGE, false],
    ]);
    expect(counts).toEqual({ sent: 2, slow: 0 });
    expect(conn.state).toBe("live");
    expect(conn.hasInFlight("n1")).toBe(true);
  });

  it("a small page with a small badge (7-bit length headers) arrives whole too", async () => {
    const p = await pair(false);
    const conn = new Connection(p.server, "u1", 0, shared({ sent: 0, slow: 0 }));
    conn.beginSync();
    const page = JSON.stringify({ type: "sync", notifications: [], cursor: 0 });
    conn.endSync({ text: page }, [], { text: BADGE });
    await p.until(2);
    expect(p.got.map(([text]) => text)).toEqual([BADGE, page]);
  });

  it("go through ws, in order, while ws holds a message back (compression in progress)", async () => {
    const p = await pair(true);
    const big = "x".repeat(200_000);
    p.server.send(big); // deflated asynchronously: ws's sender queues until it is done
    const conn = new Connection(p.server, "u1", 0, shared({ sent: 0, slow: 0 }));
    conn.beginSync();
    conn.endSync({ text: PAGE }, ["n1"], { text: BADGE });
    await p.until(3);
    expect(p.got.map(([text]) => text)).toEqual([big, BADGE, PAGE]);
    expect(p.got.every(([, binary]) => !binary)).toBe(true);
  });

  it("a socket cut off as a slow consumer by its page stays closed, and neither message goes out", async () => {
    const p = await pair(true);
    p.server.send("x".repeat(200_000)); // deflated asynchronously: ws holds it, so the buffer is not empty
    const counts = { sent: 0, slow: 0 };
    const conn = new Connection(p.server, "u1", 0, shared(counts, 10_000));
    conn.beginSync();
    conn.push({ text: '{"type":"notification"}', id: "held" });
    conn.endSync({ text: PAGE }, ["n1"], { text: BADGE });
    expect(counts).toEqual({ sent: 0, slow: 1 });
    expect(conn.state).toBe("closed");
    conn.push({ text: '{"type":"notification"}', id: "later" });
    expect(counts.sent).toBe(0);
  });
});
