/**
 * Broadcast frames are built whole, once per recipient: the WebSocket header
 * (RFC 6455 5.2, server to client: unmasked, FIN + text) and the JSON text in
 * one Buffer, which connections write to the socket as is. And the envelope
 * prefixes by which an instance drops its own bus echo unparsed.
 */
import { describe, expect, it } from "vitest";
import { BroadcastTemplate, broadcastHeader, encodeEnvelope, frameHeaderLength, originPrefixes } from "../../src/realtime/frames.js";

const ID = "0b5e3f5e-8a43-4a8e-9d7e-2f1c1f1f1f1f";
const LOUD = { sound: true, volume: 70, desktop: true, silent: false };
const QUIET = { sound: false, volume: 30, desktop: true, silent: true };

/** Decodes one unmasked frame: its first byte, payload length and text. */
function decode(wire: Buffer): { first: number; masked: boolean; length: number; headerLength: number; text: string } {
  const short = wire[1]! & 0x7f;
  const masked = (wire[1]! & 0x80) !== 0;
  let length = short;
  let headerLength = 2;
  if (short === 126) {
    length = wire.readUInt16BE(2);
    headerLength = 4;
  } else if (short === 127) {
    length = wire.readUInt32BE(2) * 2 ** 32 + wire.readUInt32BE(6);
    headerLength = 10;
  }
  return { first: wire[0]!, masked, length, headerLength, text: wire.subarray(headerLength).toString("utf8") };
}

describe("BroadcastTemplate wire frames", () => {
  it.each([
    ["a short body (7-bit length)", {}, "u"],
    ["a usual body (16-bit length)", { type: "platform_update", title: "Maintenance", message: "Read-only from 02:00" }, "user-1"],
    ["a body over 64 KiB (64-bit length)", { type: "platform_update", title: "t", message: "x".repeat(70_000) }, "user-1"],
    ["a non-ASCII user id", { type: "t", title: "Ünïcode 🎉" }, "zoë 🎉"],
    ["a user id that needs escaping", { type: "t" }, 'q"\\\n'],
    ["a user id with control characters, DEL and a lone surrogate", { type: "t" }, "a\u0001b\u007fc\ud800"],
    ["a plain user id with every printable ASCII character but the quote and backslash", { type: "t" }, " !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~"],
  ])("%s: one text frame, FIN set, unmasked, whose payload is the whole message", (_, base, userId) => {
    const template = new BroadcastTemplate(base as never);
    const frame = template.frameFor({ userId, id: ID, seq: 7, presentation: LOUD });
    const wire = frame.wire!;
    expect(wire).toBeInstanceOf(Buffer);
    const d = decode(wire);
    expect(d.first).toBe(0x81);
    expect(d.masked).toBe(false);
    expect(d.headerLength).toBe(frameHeaderLength(d.length));
    expect(d.headerLength + d.length).toBe(wire.length);
    expect(JSON.parse(d.text)).toEqual({ type: "notification", notification: { ...base, id: ID, seq: 7, userId }, presentation: LOUD });
    // The same message as text and as payload bytes, for the paths that cannot write the frame whole.
    expect(frame.text).toBe(d.text);
    expect(frame.bytes!.equals(wire.subarray(d.headerLength))).toBe(true);
    expect(frame).toMatchObject({ id: ID, seq: 7 });
  });

  it("gives each recipient its own presentation, alternating between presentation objects", () => {
    const template = new BroadcastTemplate({ type: "t" } as never);
    const seen = [LOUD, QUIET, QUIET, LOUD, { ...LOUD, volume: 10 }, LOUD].map((presentation, i) => {
      const frame = template.frameFor({ userId: `u${i}`, id: ID, seq: i + 1, presentation });
      return JSON.parse(frame.text).presentation;
    });
    expect(seen).toEqual([LOUD, QUIET, QUIET, LOUD, { ...LOUD, volume: 10 }, LOUD]);
  });

  it("any user id and id, plain or not, make a frame whose JSON gives them back (2,000 random ones)", () => {
    const template = new BroadcastTemplate({ type: "t" } as never);
    const alphabet = ["a", "Z", "0", "-", " ", "~", "\"", "\\", "/", "\n", "\u0000", "\u001f", "\u007f", "\u0080", "é", "\u2028", "🎉", "\ud800", "\udfff"];
    let seed = 17;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const text = () => Array.from({ length: random(12) }, () => alphabet[random(alphabet.length)]).join("");
    for (let i = 0; i < 2_000; i++) {
      const userId = text();
      const id = i % 2 === 0 ? ID : text();
      const frame = template.frameFor({ userId, id, seq: i, presentation: QUIET });
      const d = decode(frame.wire!);
      expect(d.headerLength + d.length).toBe(frame.wire!.length);
      expect(JSON.parse(d.text).notification).toEqual({ type: "t", id, seq: i, userId });
    }
  });

  it("frame header lengths follow RFC 6455 5.2", () => {
    expect([0, 125, 126, 65_535, 65_536].map(frameHeaderLength)).toEqual([2, 2, 4, 4, 10]);
  });
});

describe("originPrefixes", () => {
  const recipients = [{ userId: "u", id: ID, seq: 1, presentation: LOUD }];
  const envelopes = (origin: string) => [
    encodeEnvelope({ k: "u", o: origin, u: "user" }, "{}"),
    encodeEnvelope({ k: "u", o: origin, u: "user", i: ID, s: 1 }, "{}"),
    encodeEnvelope(broadcastHeader(origin, recipients), "}"),
  ];

  it("match every envelope of the instance, and no other instance's (even one whose id extends it)", () => {
    const [u, b] = originPrefixes("i1");
    const own = (raw: string) => raw.startsWith(u) || raw.startsWith(b);
    expect(envelopes("i1").map(own)).toEqual([true, true, true]);
    expect([...envelopes("i10"), ...envelopes("i"), ...envelopes('i1",')].map(own)).toEqual(Array(9).fill(false));
  });
});
