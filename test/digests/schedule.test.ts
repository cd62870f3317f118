import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type DigestFrequency,
  dueWindow,
  latestWindowEnd,
  nextWindowEnd,
  previousWindowEnd,
  windowEndsBetween,
} from "../../src/digests/index.js";
import { wallClock } from "../../src/digests/schedule.js";
import { ZONES, localHHMM } from "../support/zones.js";

const iso = (d: Date) => d.toISOString();

describe("digest schedule (pure window math)", () => {
  // [zone, frequency, now, expected latest window end (UTC)]
  const latestCases: [string, DigestFrequency, string, string][] = [
    ["UTC", "daily", "2025-06-10T12:00:00Z", "2025-06-10T08:00:00.000Z"],
    ["UTC", "daily", "2025-06-10T08:00:00Z", "2025-06-10T08:00:00.000Z"],
    ["UTC", "daily", "2025-06-10T07:59:59Z", "2025-06-09T08:00:00.000Z"],
    ["UTC", "hourly", "2025-06-10T12:34:00Z", "2025-06-10T12:00:00.000Z"],
    ["UTC", "weekly", "2025-06-12T00:00:00Z", "2025-06-09T09:00:00.000Z"],
    // Half-hour and 45-minute zones.
    ["Asia/Kolkata", "hourly", "2025-06-10T12:34:00Z", "2025-06-10T12:30:00.000Z"],
    ["Asia/Kolkata", "daily", "2025-06-10T12:00:00Z", "2025-06-10T02:30:00.000Z"],
    ["Asia/Kathmandu", "hourly", "2025-06-10T12:14:00Z", "2025-06-10T11:15:00.000Z"],
    // Pacific/Chatham +12:45 -> +13:45 on 2025-09-28 02:45 local.
    ["Pacific/Chatham", "daily", "2025-09-27T00:00:00Z", "2025-09-26T19:15:00.000Z"],
    ["Pacific/Chatham", "daily", "2025-09-28T00:00:00Z", "2025-09-27T18:15:00.000Z"],
    // Australia/Lord_Howe moves 30 minutes: +10:30 -> +11 on 2025-10-05 02:00 local, back on 2025-04-06.
    ["Australia/Lord_Howe", "daily", "2025-10-04T00:00:00Z", "2025-10-03T21:30:00.000Z"],
    ["Australia/Lord_Howe", "daily", "2025-10-05T00:00:00Z", "2025-10-04T21:00:00.000Z"],
    ["Australia/Lord_Howe", "daily", "2025-04-06T00:00:00Z", "2025-04-05T21:30:00.000Z"],
    // New York spring forward 2025-03-09 and fall back 2025-11-02.
    ["America/New_York", "daily", "2025-03-09T12:00:00Z", "2025-03-09T12:00:00.000Z"],
    ["America/New_York", "daily", "2025-03-09T11:59:00Z", "2025-03-08T13:00:00.000Z"],
    ["America/New_York", "daily", "2025-11-02T13:00:00Z", "2025-11-02T13:00:00.000Z"],
    ["America/New_York", "weekly", "2025-03-10T13:00:00Z", "2025-03-10T13:00:00.000Z"],
    ["America/New_York", "weekly", "2025-03-10T12:59:00Z", "2025-03-03T14:00:00.000Z"],
    ["Europe/London", "weekly", "2025-03-31T08:00:00Z", "2025-03-31T08:00:00.000Z"],
    ["Europe/London", "daily", "2025-10-26T08:30:00Z", "2025-10-26T08:00:00.000Z"],
    // Unknown zones fall back to UTC.
    ["Not/AZone", "daily", "2025-06-10T12:00:00Z", "2025-06-10T08:00:00.000Z"],
  ];
  it.each(latestCases)("%s %s at %s: latest window ends %s", (zone, frequency, now, expected) => {
    expect(iso(latestWindowEnd(frequency, zone, new Date(now)))).toBe(expected);
  });

  it("hourly on Lord Howe's spring-forward day: one run per local hour, the missing 02:00 at the transition", () => {
    const runs = windowEndsBetween("hourly", "Australia/Lord_Howe", new Date("2025-10-04T13:00:00Z"), new Date("2025-10-04T17:00:00Z"));
    expect(runs.map(iso)).toEqual([
      "2025-10-04T13:30:00.000Z", // 00:00 +10:30
      "2025-10-04T14:30:00.000Z", // 01:00 +10:30
      "2025-10-04T15:30:00.000Z", // 02:00 does not exist: the transition instant (02:30 +11)
      "2025-10-04T16:00:00.000Z", // 03:00 +11
      "2025-10-04T17:00:00.000Z", // 04:00 +11
    ]);
  });

  it("hourly on New York's fall-back day: each pass of the repeated 01:00 gets its own digest (one per real hour)", () => {
    const runs = windowEndsBetween("hourly", "America/New_York", new Date("2025-11-02T03:30:00Z"), new Date("2025-11-02T08:00:00Z"));
    expect(runs.map(iso)).toEqual([
      "2025-11-02T04:00:00.000Z", // 00:00 EDT
      "2025-11-02T05:00:00.000Z", // 01:00 EDT (first pass)
      "2025-11-02T06:00:00.000Z", // 01:00 EST (second pass)
      "2025-11-02T07:00:00.000Z", // 02:00 EST
      "2025-11-02T08:00:00.000Z",
    ]);
  });

  // The three reported 2026 cases (issue #16.7).
  it.each([
    ["Europe/Berlin", "2026-10-24T23:30:00Z", "2026-10-25T02:30:00Z", ["2026-10-25T00:00:00.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T02:00:00.000Z"]],
    // Chatham falls back 03:45 -> 02:45 (+13:45 -> +12:45): 03:00 comes twice.
    ["Pacific/Chatham", "2026-04-04T12:30:00Z", "2026-04-04T15:30:00Z", ["2026-04-04T13:15:00.000Z", "2026-04-04T14:15:00.000Z", "2026-04-04T15:15:00.000Z"]],
    // Troll springs 01:00 -> 03:00 (+00 -> +02): the skipped 01:00 and 02:00 run once at the change, 03:00.
    ["Antarctica/Troll", "2026-03-28T23:30:00Z", "2026-03-29T02:30:00Z", ["2026-03-29T00:00:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-29T02:00:00.000Z"]],
    // Troll falls back 03:00 -> 01:00: 01:00 and 02:00 each come twice, one digest per real hour.
    ["Antarctica/Troll", "2026-10-24T23:30:00Z", "2026-10-25T03:30:00Z", ["2026-10-25T00:00:00.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T02:00:00.000Z", "2026-10-25T03:00:00.000Z"]],
  ])("hourly in %s from %s to %s: a digest every real hour", (zone, from, to, expected) => {
    expect(windowEndsBetween("hourly", zone, new Date(from), new Date(to)).map(iso)).toEqual(expected);
  });

  const zones = ZONES;

  const minutes = (label: string) => Number(label.slice(0, 2)) * 60 + Number(label.slice(3, 5));
  const QUARTER = 15 * 60_000;
  const FROM = Date.UTC(2025, 0, 1);
  const TO = Date.UTC(2028, 0, 1);

  it.each(zones)("hourly in %s over 2025-2027: contiguous, disjoint windows, one at every instant reading :00 and after every gap that skipped one", (zone) => {
    // Every UTC offset in use is a multiple of 15 minutes, so every local :00 falls on a UTC quarter hour.
    const expected: number[] = [];
    for (let t = FROM; t < TO; t += QUARTER) {
      const m = minutes(localHHMM(t, zone));
      const prev = minutes(localHHMM(t - 60_000, zone));
      const forward = (m - prev + 1440) % 1440;
      // A top of the hour: reads :00, or a jump forward (DST) skipped one.
      if (m % 60 === 0 || (forward > 1 && forward <= 121 && Math.floor((prev + forward) / 60) !== Math.floor(prev / 60))) expected.push(t);
    }
    const ends: number[] = [];
    let end = latestWindowEnd("hourly", zone, new Date(FROM - 1)).getTime();
    for (;;) {
      const next = nextWindowEnd("hourly", zone, new Date(end)).getTime();
      if (next >= TO) break;
      if (previousWindowEnd("hourly", zone, new Date(next)).getTime() !== end) throw new Error(`${zone}: window ending ${new Date(next).toISOString()} does not start at ${new Date(end).toISOString()}`);
      ends.push(next);
      end = next;
    }
    const want = new Set(expected);
    const got = new Set(ends);
    expect(ends.filter((t) => !want.has(t)).map((t) => new Date(t).toISOString())).toEqual([]);
    expect(expected.filter((t) => !got.has(t)).map((t) => new Date(t).toISOString())).toEqual([]);
  });

  it.each(zones)("daily and weekly in %s over 2025-2027: exactly one per local day at 08:00, per local week on Monday 09:00", (zone) => {
    const days = new Map<string, number>();
    const weeks: string[] = [];
    for (const [frequency, out] of [["daily", days], ["weekly", weeks]] as const) {
      let end = latestWindowEnd(frequency, zone, new Date(FROM)).getTime();
      for (;;) {
        const next = nextWindowEnd(frequency, zone, new Date(end)).getTime();
        if (next >= TO) break;
        expect(previousWindowEnd(frequency, zone, new Date(next)).getTime()).toBe(end);
        const label = wallClock(new Date(next), zone);
        expect(label.slice(11)).toBe(frequency === "daily" ? "08:00" : "09:00");
        if (Array.isArray(out)) {
          expect(new Date(next).toLocaleDateString("en-US", { timeZone: zone, weekday: "long" })).toBe("Monday");
          out.push(label.slice(0, 10));
        } else out.set(label.slice(0, 10), (out.get(label.slice(0, 10)) ?? 0) + 1);
        end = next;
      }
    }
    expect(days.size).toBeGreaterThanOrEqual(1094);
    expect([...days.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(weeks).size).toBe(weeks.length);
    expect(weeks.length).toBeGreaterThanOrEqual(156);
  });

  it("latest <= now < next, with no window in between, for any instant and zone", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.constantFrom<DigestFrequency>("hourly", "daily", "weekly"),
        fc.date({ min: new Date("2024-01-01T00:00:00Z"), max: new Date("2026-12-31T00:00:00Z"), noInvalidDate: true }),
        (zone, frequency, now) => {
          const { start, end } = dueWindow(frequency, zone, now);
          const next = nextWindowEnd(frequency, zone, now);
          expect(end.getTime()).toBeLessThanOrEqual(now.getTime());
          expect(next.getTime()).toBeGreaterThan(now.getTime());
          expect(nextWindowEnd(frequency, zone, end).getTime()).toBe(next.getTime());
          expect(start.getTime()).toBeLessThan(end.getTime());
          expect(previousWindowEnd(frequency, zone, end).getTime()).toBe(start.getTime());
          if (frequency === "weekly") expect(new Date(end).toLocaleDateString("en-US", { timeZone: zone, weekday: "long" })).toBe("Monday");
        },
      ),
      { numRuns: 150 },
    );
  });
});
