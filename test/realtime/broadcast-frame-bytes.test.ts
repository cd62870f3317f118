/**
 * A broadcast frame is built per recipient on the fan-out's hot path: for the
 * usual recipient (plain-ASCII id and user id, integer seq) its bytes are
 * copied in place, for any other through JSON.stringify. Both must give
 * exactly the message docs/websocket.md describes, whatever the id, user id
 * and seq. And a connection remembers at most `maxRememberedIds` sent ids,
 * the oldest forgotten first, never sending a remembered one again.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { wsPair } from "./ws-pair.js";
import { Connection, type ConnectionShared } from "../../src/realtime/connection.js";
import { BroadcastTemplate, frameHeaderLength } from "../../src/realtime/frames.js";

const LOUD = { sound: true, volume: 70, desktop: true, silent: false };
const BASE = { type: "platform_update", title: "Maintenance ünï 🎉", message: "Read-only from 02:00" };

/** The message as the protocol defines it, serialized independently of BroadcastTemplate. */
const expected = (id: string, seq: number, userId: string) =>
  `{"type":"notification","notification":{"id":${JSON.stringify(id)},"seq":${seq},"userId":${JSON.stringify(userId)},${JSON.stringify(BASE).slice(1)},"presentation":${JSON.stringify(LOUD)}}`;

function checkFrame(template: BroadcastTemplate, id: string, seq: number, userId: string): void {
  const frame = template.frameFor({ id, seq, userId, presentation: LOUD });
  const text = expected(id, seq, userId);
  const payload = Buffer.from(text);
  const header = frameHeaderLength(payload.length);
  const wire = frame.wire!;
  expect(wire[0]).toBe(0x81);
  expect(wire.length).toBe(header + payload.length);
  expect(header === 2 ? wire[1] : wire.readUInt16BE(2)).toBe(payload.length);
  expect(wire.subarray(header).equals(payload)).toBe(true);
  expect(frame.text).toBe(text);
  expect(frame).toMatchObject({ id, seq });
}

describe("BroadcastTemplate.frameFor bytes", () => {
  it("match the protocol's JSON for plain-ASCII recipients (the copied path), at every seq width", () => {
    const template = new BroadcastTemplate(BASE as never);
    for (const seq of [0, 1, 9, 10, 99, 100, 12_345, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
      checkFrame(template, "0b5e3f5e-8a43-4a8e-9d7e-2f1c1f1f1f1f", seq, "user-42");
    }
    checkFrame(template, " ", 3, "~ !#$%&'()*+,-./:;<=>?@[]^_`{|}");
  });

  it("match it for recipients that need escaping or UTF-8 (the JSON.stringify path)", () => {
    const template = new BroadcastTemplate(BASE as never);
    for (const userId of ['q"', "back\\slash", "line\nbreak", "tab\t", "del\u007f", "zoë", "🎉", "\ud800"]) checkFrame(template, "id-1", 7, userId);
    checkFrame(template, 'id"quoted', 7, "user");
  });

  it("match it for any id, user id and non-negative integer seq", () => {
    const template = new BroadcastTemplate(BASE as never);
    const text = fc.oneof(fc.string({ unit: "grapheme-ascii" }), fc.string({ unit: "binary" }), fc.uuid());
    fc.assert(
      fc.property(text, text, fc.maxSafeNat(), (id, userId, seq) => {
        checkFrame(template, id, seq, userId);
      }),
      { numRuns: 500 },
    );
  });
});

describe("Connection remembered ids", () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });

  it("keeps the last maxRememberedIds: a remembered id is never sent again, the oldest is forgotten first", async () => {
    const p = await wsPair(false, cleanup);
    const sent: string[] = [];
    const shared: ConnectionShared = {
      limits: { maxBufferedBytes: 1 << 20, maxHeldFrames: 100, maxRememberedIds: 3, messagesPerSecond: 10, messageBurst: 10, rateLimitStrikes: 3, closeGraceMs: 1000 },
      hooks: { onPushed: (id) => sent.push(id), onSent: () => undefined, onSlowConsumer: () => undefined },
    };
    const conn = new Connection(p.server, "u1", 0, shared);
    conn.state = "live";
    const template = new BroadcastTemplate(BASE as never);
    const frames = ["a", "b", "c", "d"].map((id, i) => template.frameFor({ id, seq: i + 1, userId: "u1", presentation: LOUD }));
    for (const f of frames) conn.push(f);
    expect(["a", "b", "c", "d"].map((id) => conn.hasInFlight(id))).toEqual([false, true, true, true]);
    for (const f of frames.slice(1).reverse()) conn.push(f); // remembered: not sent again
    conn.push(frames[0]!); // forgotten: sent again, and now b is the oldest forgotten
    expect(sent).toEqual(["a", "b", "c", "d", "a"]);
    expect(["a", "b", "c", "d"].map((id) => conn.hasInFlight(id))).toEqual([true, false, true, true]);
    await p.until(5);
    expect(p.got.map(([t]) => JSON.parse(t).notification.id)).toEqual(sent);
  });
});
