/**
 * A creation serializes its notification once (withJson) for its push frame and
 * its 201 body, and the REST route's validated body is not parsed a second time
 * (parsedCreation). The frame must be the bytes JSON.stringify of the message
 * writes, kept text or not, and an input nobody marked is still validated.
 */
import { describe, expect, it } from "vitest";
import { HeraldError } from "../../src/errors/index.js";
import { type NotificationDto, notificationJson, parsedCreation, withJson } from "../../src/notifications/index.js";
import { parseCreation } from "../../src/notifications/input.js";
import { notificationFrame } from "../../src/realtime/frames.js";

const dto = (): NotificationDto => ({
  id: "0b7e8f3c-3f0a-4c55-9d6e-0c6a2f1d9a10",
  seq: 42,
  userId: "u-\u00e9\u{1F600}",
  type: "new_message",
  priority: "high",
  title: 'He said "hi"\n',
  message: "x".repeat(50),
  description: null,
  icon: null,
  actionUrl: "/inbox",
  actionLabel: null,
  read: false,
  archived: false,
  deliveryStatus: "pending",
  sentAt: null,
  deliveredAt: null,
  readAt: null,
  relatedId: null,
  data: { b: 1, a: [true, null, { z: "\u2028" }] },
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
});
const presentation = { sound: true, volume: 80, desktop: false, silent: false };

describe("a creation's notification serialized once", () => {
  it("gives the frame JSON.stringify's bytes, with the text kept by withJson or made on the spot", () => {
    for (const d of [dto(), withJson(dto())]) {
      expect(notificationJson(d)).toBe(JSON.stringify(d));
      expect(notificationFrame(d, presentation).text).toBe(JSON.stringify({ type: "notification", notification: d, presentation }));
      expect(notificationFrame(d, presentation)).toMatchObject({ id: d.id, seq: 42 });
    }
  });

  it("parses an input once when the route marked it, and validates any other", () => {
    const input = { userId: "u1", type: "new_message", title: "t", message: "m" };
    expect(parseCreation(parsedCreation({ ...input }))).toEqual(input);
    const marked = parsedCreation({ ...input });
    expect(parseCreation(marked)).toBe(marked);
    expect(parseCreation({ ...input })).not.toBe(input);
    expect(() => parseCreation({ ...input, title: "" })).toThrow(HeraldError);
  });
});
