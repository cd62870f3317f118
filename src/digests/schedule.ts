/**
 * Pure window math for digests (SPEC.md section 7): hourly at :00, daily at
 * 08:00, weekly on Monday at 09:00, in the user's IANA time zone. croner does
 * the calendar arithmetic; this module fixes the rules for odd days:
 *
 * - a window is identified by the instant it closes (`scheduled_for`), and
 *   each local wall-clock label ("2025-11-02 01:00") yields at most one window;
 * - a local time that does not exist (spring forward) runs once, at the first
 *   instant after the gap (croner's shift);
 * - a local time that occurs twice (fall back) runs once, at its first
 *   occurrence; the repeat is dropped here even if croner were asked to start
 *   inside the repeated hour.
 */
import { Cron } from "croner";

export const DIGEST_FREQUENCIES = ["hourly", "daily", "weekly"] as const;
export type DigestFrequency = (typeof DIGEST_FREQUENCIES)[number];

/** Cron patterns, minute first, evaluated in the user's zone. */
export const DIGEST_PATTERNS: Readonly<Record<DigestFrequency, string>> = Object.freeze({
  hourly: "0 * * * *",
  daily: "0 8 * * *",
  weekly: "0 9 * * 1",
});

const HOUR = 3_600_000;
/** Longer than one period plus any DST shift, so the window before `t` is always found. */
const LOOKBACK_MS: Record<DigestFrequency, number> = { hourly: 3 * HOUR, daily: 27 * HOUR, weekly: 8 * 24 * HOUR };
/** DST shifts in use today: 30 min (Lord Howe), 1 h, 2 h (Troll). */
const DST_SHIFTS_MS = [30 * 60_000, HOUR, 2 * HOUR];

const crons = new Map<string, Cron>();
function cronFor(pattern: string, timeZone: string): Cron {
  const key = `${pattern}|${timeZone}`;
  let cron = crons.get(key);
  if (!cron) {
    cron = new Cron(pattern, { timezone: timeZone, paused: true });
    crons.set(key, cron);
  }
  return cron;
}

const zoneValidity = new Map<string, boolean>();
export function isValidTimeZone(timeZone: string): boolean {
  let ok = zoneValidity.get(timeZone);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone });
      ok = true;
    } catch {
      ok = false;
    }
    zoneValidity.set(timeZone, ok);
  }
  return ok;
}

/** The zone to compute in: the user's when valid, else UTC (the spec's default). */
export function resolveTimeZone(timeZone: string | null | undefined): string {
  return timeZone && isValidTimeZone(timeZone) ? timeZone : "UTC";
}

const labelFormats = new Map<string, Intl.DateTimeFormat>();
/** The local wall-clock reading of `t` in `timeZone`, to the minute: "2025-11-02 01:00". */
export function wallClock(t: Date, timeZone: string): string {
  let f = labelFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    labelFormats.set(timeZone, f);
  }
  return f.format(t).replace(",", "");
}

/** True when the same local minute already happened earlier (the second pass of a fall-back hour). */
function isRepeatedWallTime(t: Date, timeZone: string): boolean {
  const label = wallClock(t, timeZone);
  return DST_SHIFTS_MS.some((shift) => wallClock(new Date(t.getTime() - shift), timeZone) === label);
}

/** Every run of `pattern` in `timeZone` with `from < t <= to`, oldest first. */
export function runsBetween(pattern: string, timeZone: string, from: Date, to: Date): Date[] {
  const cron = cronFor(pattern, resolveTimeZone(timeZone));
  const zone = resolveTimeZone(timeZone);
  const out: Date[] = [];
  let cursor: Date | null = from;
  while (cursor) {
    const next: Date | null = cron.nextRun(cursor);
    if (!next || next.getTime() > to.getTime()) break;
    if (next.getTime() <= cursor.getTime()) {
      // croner, asked from inside a repeated (fall-back) hour, can answer with
      // the first pass, which lies before `cursor`: step past it instead.
      cursor = new Date(cursor.getTime() + 60_000);
      continue;
    }
    if (!isRepeatedWallTime(next, zone)) out.push(next);
    cursor = next;
  }
  return out;
}

/** The latest window closing at or before `now` (the one a scheduler should claim). */
export function latestWindowEnd(frequency: DigestFrequency, timeZone: string, now: Date): Date {
  const runs = runsBetween(DIGEST_PATTERNS[frequency], timeZone, new Date(now.getTime() - LOOKBACK_MS[frequency]), now);
  const last = runs.at(-1);
  if (!last) throw new Error(`no ${frequency} window found before ${now.toISOString()} in ${timeZone}`);
  return last;
}

/** The window closing strictly before `end`: the start of the window that ends at `end`. */
export function previousWindowEnd(frequency: DigestFrequency, timeZone: string, end: Date): Date {
  return latestWindowEnd(frequency, timeZone, new Date(end.getTime() - 1));
}

/** The first window closing strictly after `now` (when the next digest is due). */
export function nextWindowEnd(frequency: DigestFrequency, timeZone: string, now: Date): Date {
  const runs = runsBetween(DIGEST_PATTERNS[frequency], timeZone, now, new Date(now.getTime() + LOOKBACK_MS[frequency]));
  const first = runs[0];
  if (!first) throw new Error(`no ${frequency} window found after ${now.toISOString()} in ${timeZone}`);
  return first;
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
