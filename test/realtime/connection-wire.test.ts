/**
 * Connections write a broadcast's prebuilt frame (`Frame.wire`) straight to
 * the TCP socket (`writeFramed`), bypassing ws's framing. This pins the ws
 * internals that relies on (`_socket`, `_sender._state`), so a ws release that
 * changes them fails here rather than silently: the frame reaches a real
 * client as a text message, in order with ws's own sends, never overtakes a
 * message ws still holds (compression in progress), and never follows a
 * close frame.
 */
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { wsPair } from "./ws-pair.js";
import { Connection, type ConnectionShared, writeFramed } from "../../src/realtime/connection.js";
import { BroadcastTemplate } from "../../src/realtime/frames.js";

const ID = "0b5e3f5e-8a43-4a8e-9d7e-2f1c1f1f1f1f";
const LOUD = { sound: true, volume: 70, desktop: true, silent: false };
const frame = (userId: string, seq: number) => new BroadcastTemplate({ type: "platform_update", title: "Maintenance" } as never).frameFor({ userId, id: `${ID.slice(0, -2)}${String(seq).padStart(2, "0")}`, seq, presentation: LOUD });

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const pair = (perMessageDeflate: boolean) => wsPair(perMessageDeflate, cleanup);

const shared = (sent: string[] = []): ConnectionShared => ({
  limits: { maxBufferedBytes: 1 << 20, maxHeldFrames: 100, maxRememberedIds: 100, messagesPerSecond: 10, messageBurst: 10, rateLimitStrikes: 3, closeGraceMs: 1000 },
  hooks: { onPushed: (id) => sent.push(id), onSent: () => undefined, onSlowConsumer: () => undefined },
});

describe("writeFramed", () => {
  it("writes the prebuilt frame to the socket, received as a text message in order with ws's own sends", async () => {
    const p = await pair(false);
    const f = frame("u1", 1);
    p.server.send("first");
    expect(writeFramed(p.server, f.wire!)).toBe(true);
    p.server.send("last");
    await p.until(3);
    expect(p.got.map(([text]) => text)).toEqual(["first", f.text, "last"]);
    expect(p.got.map(([, binary]) => binary)).toEqual([false, false, false]);
  });

  it("refuses while ws holds a message back (compression in progress), and the connection sends through ws in order", async () => {
    const p = await pair(true);
    const big = "x".repeat(200_000);
    p.server.send(big); // deflated asynchronously: ws's sender queues until it is done
    const f = frame("u1", 2);
    expect(writeFramed(p.server, f.wire!)).toBe(false);
    const conn = new Connection(p.server, "u1", 0, shared());
    conn.state = "live";
    conn.push(f);
    await p.until(2);
    expect(p.got.map(([text]) => text)).toEqual([big, f.text]);
    expect(p.got[1]![1]).toBe(false);
  });

  it("refuses once the close frame is sent: nothing follows it", async () => {
    const p = await pair(false);
    const closed = once(p.client, "close");
    p.server.close(1000, "bye");
    expect(writeFramed(p.server, frame("u1", 3).wire!)).toBe(false);
    await closed;
    expect(p.got).toEqual([]);
  });
});

describe("Connection with broadcast frames", () => {
  it("pushes each frame once, as text, and reports it sent", async () => {
    const p = await pair(false);
    const sent: string[] = [];
    const conn = new Connection(p.server, "u1", 0, shared(sent));
    conn.state = "live";
    const a = frame("u1", 4);
    const b = frame("u1", 5);
    conn.push(a);
    conn.push(a); // the same notification again: never sent twice on one connection
    conn.push(b);
    conn.send({ type: "pong" });
    await p.until(3);
    expect(p.got).toEqual([
      [a.text, false],
      [b.text, false],
      ['{"type":"pong"}', false],
    ]);
    expect(sent).toEqual([a.id, b.id]);
  });
});
