/**
 * Quiet-hours time math on DST nights (issue #16.6): the end of quiet hours,
 * and the hourly bundle time, checked as tables on the reported nights and as
 * properties over every hour of 2025-2027 in zones with odd offsets and DST
 * rules, against Intl as the oracle.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_PREFERENCES, decideDelivery } from "../../src/preferences/index.js";
import { nextLocalHour, nextLocalTime } from "../../src/time/index.js";
import { ZONES, localHHMM } from "../support/zones.js";

const MIN = 60_000;
/** Local minute of day by Intl alone (independent of the code under test). */
function wallMinute(t: number, zone: string): number {
  const [h, m] = localHHMM(t, zone).split(":").map(Number);
  return h! * 60 + m!;
}

/** True when `end` is read at `r`, or was skipped by a clock change at `r` (the first instant after the gap). */
function endsAt(r: number, zone: string, end: number): boolean {
  const now = wallMinute(r, zone);
  if (now === end) return true;
  const before = wallMinute(r - MIN, zone);
  // A jump forward of up to 2 h (the largest DST shift) is a gap; a step back is a repeat, not a gap.
  const forward = (now - before + 1440) % 1440;
  return forward > 1 && forward <= 121 && (end - before + 1440) % 1440 < forward && end !== before;
}

const iso = (d: Date) => d.toISOString();

describe("quiet hours end on spring-forward nights (issue #16.6)", () => {
  it.each([
    // [zone, now, end, expected]: ends in the gap release at the first instant after it.
    ["America/New_York", "2026-03-08T05:30:00Z", "02:00", "2026-03-08T07:00:00.000Z"],
    ["America/New_York", "2026-03-08T05:30:00Z", "02:30", "2026-03-08T07:00:00.000Z"],
    ["Europe/Berlin", "2026-03-29T00:30:00Z", "02:15", "2026-03-29T01:00:00.000Z"],
    // Ends outside the gap still land on their local time.
    ["America/New_York", "2026-03-08T05:30:00Z", "08:00", "2026-03-08T12:00:00.000Z"],
    ["Europe/Berlin", "2026-10-25T00:30:00Z", "08:00", "2026-10-25T07:00:00.000Z"],
    // In the repeated hour of a fall-back night, an end later in that hour is its second pass.
    ["America/New_York", "2026-11-01T06:10:00Z", "01:30", "2026-11-01T06:30:00.000Z"],
  ])("%s from %s, quiet hours ending %s: released at %s", (zone, now, end, expected) => {
    const [h, m] = end.split(":").map(Number);
    expect(iso(nextLocalTime(new Date(now), zone, h! * 60 + m!))).toBe(expected);
  });

  it("a held immediate send and an hourly bundle in New York (22:00-02:00) wait for 03:00 EDT", () => {
    const now = new Date("2026-03-08T05:30:00Z"); // 00:30 EST
    // E-mail mode "always": held by quiet hours alone (in "unseen" mode it would also wait to be seen, to the same instant).
    const prefs = { ...DEFAULT_PREFERENCES, emailImmediate: "always" as const, quietHoursEnabled: true, quietHoursStart: "22:00", quietHoursEnd: "02:00" };
    const held = decideDelivery({ type: "new_message", priority: "normal" }, prefs, "America/New_York", now);
    expect(held.outOfApp.email).toEqual({ mode: "hold_until", until: new Date("2026-03-08T07:00:00Z") });
    const hourly = decideDelivery({ type: "new_message", priority: "normal" }, { ...prefs, frequency: "hourly" }, "America/New_York", now);
    expect(hourly.outOfApp.email).toEqual({ mode: "hourly", at: new Date("2026-03-08T07:00:00Z") });
  });

  it.each(ZONES)("%s, every hour of 2025-2027: the end is the first instant reading it (or after its gap)", (zone) => {
    const from = Date.UTC(2025, 0, 1);
    const to = Date.UTC(2028, 0, 1);
    // Ends inside the gaps of these zones (New York, Berlin, Lord Howe, Troll, Chatham); others are covered below.
    const ends = [120, 150, 180];
    for (let t = from; t < to; t += 60 * MIN) {
      for (const end of ends) {
        const r = nextLocalTime(new Date(t), zone, end).getTime();
        if (!(r > t && r - t <= 26 * 60 * MIN && endsAt(r, zone, end))) {
          throw new Error(`${zone} ${new Date(t).toISOString()} end ${end}: got ${new Date(r).toISOString()}`);
        }
      }
    }
  });

  it("nothing earlier than the answer reads the end (brute force over minutes)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.constantFrom(0, 30, 60, 120, 135, 150, 165, 480),
        fc.integer({ min: Date.UTC(2025, 0, 1) / MIN, max: Date.UTC(2027, 11, 30) / MIN }),
        (zone, end, minute) => {
          const now = minute * MIN + 17_000;
          const r = nextLocalTime(new Date(now), zone, end).getTime();
          let first = Math.floor(now / MIN) * MIN + MIN;
          while (!endsAt(first, zone, end)) first += MIN;
          expect(new Date(r).toISOString()).toBe(new Date(first).toISOString());
        },
      ),
      { numRuns: 300 },
    );
  });

  it("the next local top of the hour is the first later instant reading :00 (or after a gap that swallowed one)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.integer({ min: Date.UTC(2025, 0, 1) / MIN, max: Date.UTC(2027, 11, 30) / MIN }), (zone, minute) => {
        const now = minute * MIN + 5_000;
        const r = nextLocalHour(new Date(now), zone).getTime();
        let first = Math.floor(now / MIN) * MIN + MIN;
        const isTop = (t: number) => wallMinute(t, zone) % 60 === 0 || Math.floor(wallMinute(t, zone) / 60) !== Math.floor(wallMinute(t - MIN, zone) / 60);
        while (!isTop(first)) first += MIN;
        expect(new Date(r).toISOString()).toBe(new Date(first).toISOString());
      }),
      { numRuns: 300 },
    );
  });
});
