import { describe, expect, it } from "vitest";
import { backoffDelay, bundleKey } from "../../src/channels/index.js";

describe("backoffDelay", () => {
  const policy = { baseMs: 1000, maxMs: 10_000 };
  it.each([
    // attempt, random, expected ms
    [1, 1, 1000],
    [2, 1, 2000],
    [3, 1, 4000],
    [4, 1, 8000],
    [5, 1, 10_000], // capped
    [30, 1, 10_000],
    [1, 0, 500], // jitter never goes below half the nominal delay
    [4, 0, 4000],
    [3, 0.5, 3000],
  ])("attempt %i with random %f waits %i ms", (attempt, random, expected) => {
    expect(backoffDelay(attempt, policy, () => random)).toBe(expected);
  });
});

describe("bundleKey", () => {
  it("is a stable, well-formed UUID per (user, channel, hour) and differs when any part differs", () => {
    const at = new Date("2030-01-01T10:00:00Z");
    const k = bundleKey("u1", "sms", at);
    expect(k).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(bundleKey("u1", "sms", new Date(at))).toBe(k);
    expect(new Set([k, bundleKey("u2", "sms", at), bundleKey("u1", "push", at), bundleKey("u1", "sms", new Date("2030-01-01T11:00:00Z"))]).size).toBe(4);
  });
});
