/** Pure parts of the realtime protocol, table-driven: parsing, rate limit, broadcast splicing, backoff, token-expiry wheel. */
import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/client/index.js";
import { TokenBucket, parseClientMessage } from "../../src/realtime/client-messages.js";
import { ExpiryWheel } from "../../src/realtime/expiry.js";
import { BroadcastTemplate, decodeEnvelope, encodeEnvelope } from "../../src/realtime/frames.js";

const ID = "0b5e3f5e-8a43-4a8e-9d7e-2f1c1f1f1f1f";

describe("parseClientMessage", () => {
  it.each([
    ['{"type":"ping"}', { ok: true, message: { type: "ping" } }],
    [`{"type":"ack","id":"${ID.toUpperCase()}"}`, { ok: true, message: { type: "ack", id: ID } }],
    [`{"type":"ack","ids":["${ID}"]}`, { ok: true, message: { type: "ack", ids: [ID] } }],
    [`{"type":"read","id":"${ID}"}`, { ok: true, message: { type: "read", id: ID } }],
    ['{"type":"sync","cursor":12}', { ok: true, message: { type: "sync", cursor: 12 } }],
    ['{"type":"sync"}', { ok: true, message: { type: "sync" } }],
    ["{oops", { ok: false, code: "malformed_json" }],
    ["[1]", { ok: false, code: "invalid_message" }],
    ["null", { ok: false, code: "invalid_message" }],
    ['{"type":"nope"}', { ok: false, code: "unknown_type" }],
    ['{"type":7}', { ok: false, code: "invalid_message" }],
    ['{"type":"ack","id":"x"}', { ok: false, code: "invalid_message" }],
    ['{"type":"ack","ids":[]}', { ok: false, code: "invalid_message" }],
    ['{"type":"sync","cursor":-1}', { ok: false, code: "invalid_message" }],
    ['{"type":"sync","cursor":1.5}', { ok: false, code: "invalid_message" }],
  ])("%s", (raw, expected) => {
    expect(parseClientMessage(raw)).toMatchObject(expected);
  });
});

describe("TokenBucket", () => {
  it("allows the burst at once, then the rate", () => {
    const b = new TokenBucket(50, 100, 0);
    let ok = 0;
    for (let i = 0; i < 150; i++) if (b.take(0)) ok++;
    expect(ok).toBe(100);
    expect(b.take(10)).toBe(false); // 0.5 token after 10 ms
    expect(b.take(20)).toBe(true); // 1 token after 20 ms
    let later = 0;
    for (let i = 0; i < 200; i++) if (b.take(1_000_000)) later++;
    expect(later).toBe(100); // refills up to the burst, not beyond
  });
});

describe("BroadcastTemplate", () => {
  it("splices a recipient into the shared body exactly as serializing the whole message would", () => {
    const base = { type: "platform_update", title: 'Quote " and \\ and ünicode 🎉', message: "line\nbreak", data: { a: [1, { b: null }] } };
    const template = new BroadcastTemplate(base as never);
    const presentation = { sound: false, volume: 30, desktop: true, silent: true };
    const frame = template.frameFor({ userId: 'user "q"', id: ID, seq: 42, presentation });
    expect(JSON.parse(frame.text)).toEqual({ type: "notification", notification: { ...base, id: ID, seq: 42, userId: 'user "q"' }, presentation });
    expect(frame).toMatchObject({ id: ID, seq: 42 });
    // The body travels on the bus and is reused as is.
    const again = new BroadcastTemplate(template.body).frameFor({ userId: "u", id: ID, seq: 1, presentation });
    expect(JSON.parse(again.text).notification.title).toBe(base.title);
  });

  it("envelopes split on the first newline, payload untouched", () => {
    const payload = JSON.stringify({ text: "a\nb" });
    const { header, payload: out } = decodeEnvelope(encodeEnvelope({ k: "u", o: "i1", u: "x\ny" }, payload));
    expect(header).toEqual({ k: "u", o: "i1", u: "x\ny" });
    expect(out).toBe(payload);
  });
});

describe("backoffDelay", () => {
  it.each([
    [0, 0, 250],
    [0, 0.999, 500],
    [3, 0, 2000],
    [3, 1, 4000],
    [20, 0, 15000],
    [20, 1, 30000],
  ])("attempt %i with random %f gives %i ms", (attempt, random, expected) => {
    expect(backoffDelay(attempt, { random: () => random })).toBe(Math.round(expected === 500 ? 499.75 : expected));
  });
});

describe("ExpiryWheel", () => {
  it("expires what is due, seconds skipped by a stalled loop included, and never what was removed", () => {
    const expired: string[] = [];
    const wheel = new ExpiryWheel<string>((item) => expired.push(item));
    const now = Math.floor(Date.now() / 1000);
    const a = wheel.add(now + 2, "a");
    wheel.add(now + 2, "b");
    const c = wheel.add(now + 3, "c");
    wheel.add(now + 9, "late");
    wheel.remove(c, "c");
    expect(a).toBe(now + 2);
    expect(wheel.size).toBe(3);
    wheel.advance(now + 1);
    expect(expired).toEqual([]);
    wheel.advance(now + 5); // seconds now+2..now+5 in one call
    expect(expired.sort()).toEqual(["a", "b"]);
    expect(wheel.size).toBe(1);
    // A second already passed is filed under the next one, so it is not lost.
    expect(wheel.add(now + 4, "past")).toBe(now + 6);
    wheel.advance(now + 9);
    expect(expired.sort()).toEqual(["a", "b", "late", "past"]);
    expect(wheel.size).toBe(0);
  });
});
