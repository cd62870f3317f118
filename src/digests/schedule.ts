/**
 * Pure window math for digests (docs/delivery.md, Digests): hourly at :00, daily at
 * 08:00, weekly on Monday at 09:00, in the user's IANA time zone. A window is
 * identified by the instant it closes (`scheduled_for`) and runs from the
 * previous window's end (exclusive), so windows neither overlap nor leave gaps.
 * The rules for odd days:
 *
 * - hourly: one digest per real hour, at every instant the local clock reads
 *   :00. A local hour that does not exist (spring forward) is the first instant
 *   after the gap (Troll's skipped 01:00 and 02:00 are one digest at 03:00); a
 *   repeated hour (fall back) gets a digest for each of its two passes;
 * - daily and weekly: exactly one per local day (week), at the first
 *   occurrence of 08:00 (Monday 09:00), or the first instant after a gap that
 *   skipped it.
 */
import { DIGEST_FREQUENCIES, type DigestFrequency } from "../preferences/index.js";
import { firstInstantOfWallTime, isValidTimeZone, lastLocalHour, localDayStart, nextLocalHour, offsetMinutes, safeTimeZone } from "../time/index.js";

/** The frequencies a user may choose for their digest (the preference's values). */
export { DIGEST_FREQUENCIES, type DigestFrequency };

const DAY = 86_400_000;
const MINUTE = 60_000;
/** Local time of the daily and weekly digests, in minutes since midnight. */
const DAILY_MINUTE = 8 * 60;
const WEEKLY_MINUTE = 9 * 60;

export { isValidTimeZone };

/** The zone to compute in: the user's when valid, else UTC (the default zone). */
export const resolveTimeZone = safeTimeZone;

/** The local wall-clock reading of `t` in `timeZone`, to the minute: "2025-11-02 01:00" (Intl's offset, through time/'s formatters). */
export function wallClock(t: Date, timeZone: string): string {
  return new Date(t.getTime() + offsetMinutes(t, timeZone) * MINUTE).toISOString().slice(0, 16).replace("T", " ");
}

/** The day's (or the week's Monday's) digest instant for the local day starting at `dayMs` (local midnight as if UTC). */
function runOfDay(frequency: "daily" | "weekly", timeZone: string, dayMs: number): number {
  if (frequency === "daily") return firstInstantOfWallTime(timeZone, dayMs, DAILY_MINUTE);
  // getUTCDay of a local midnight encoded as UTC is the local weekday; 1 is Monday.
  const monday = dayMs - ((new Date(dayMs).getUTCDay() + 6) % 7) * DAY;
  return firstInstantOfWallTime(timeZone, monday, WEEKLY_MINUTE);
}

/** The latest window closing at or before `now` (the one a scheduler should claim). */
export function latestWindowEnd(frequency: DigestFrequency, timeZone: string, now: Date): Date {
  const zone = resolveTimeZone(timeZone);
  if (frequency === "hourly") return lastLocalHour(now, zone);
  const today = localDayStart(now.getTime(), zone);
  const step = frequency === "daily" ? DAY : 7 * DAY;
  for (let k = 0; k <= 2; k++) {
    const run = runOfDay(frequency, zone, today - k * step);
    if (run <= now.getTime()) return new Date(run);
  }
  throw new Error(`no ${frequency} window found before ${now.toISOString()} in ${zone}`);
}

/** The window closing strictly before `end`: the start of the window that ends at `end`. */
export function previousWindowEnd(frequency: DigestFrequency, timeZone: string, end: Date): Date {
  return latestWindowEnd(frequency, timeZone, new Date(end.getTime() - 1));
}

/** The first window closing strictly after `now` (when the next digest is due). */
export function nextWindowEnd(frequency: DigestFrequency, timeZone: string, now: Date): Date {
  const zone = resolveTimeZone(timeZone);
  if (frequency === "hourly") return nextLocalHour(now, zone);
  const today = localDayStart(now.getTime(), zone);
  const step = frequency === "daily" ? DAY : 7 * DAY;
  for (let k = -1; k <= 1; k++) {
    const run = runOfDay(frequency, zone, today + k * step);
    if (run > now.getTime()) return new Date(run);
  }
  throw new Error(`no ${frequency} window found after ${now.toISOString()} in ${zone}`);
}

/** Every window end with `from < end <= to`, oldest first. */
export function windowEndsBetween(frequency: DigestFrequency, timeZone: string, from: Date, to: Date): Date[] {
  const out: Date[] = [];
  for (let t = nextWindowEnd(frequency, timeZone, from); t.getTime() <= to.getTime(); t = nextWindowEnd(frequency, timeZone, t)) out.push(t);
  return out;
}

export interface DigestWindow {
  /** Exclusive start: the previous window's end. */
  start: Date;
  /** Inclusive end: `scheduled_for`, the claim key. */
  end: Date;
}

/** The window a scheduler running at `now` is responsible for: the latest one that has closed. */
export function dueWindow(frequency: DigestFrequency, timeZone: string, now: Date): DigestWindow {
  const end = latestWindowEnd(frequency, timeZone, now);
  return { start: previousWindowEnd(frequency, timeZone, end), end };
}

export function isDigestFrequency(value: unknown): value is DigestFrequency {
  return typeof value === "string" && (DIGEST_FREQUENCIES as readonly string[]).includes(value);
}
