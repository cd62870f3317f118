/**
 * Wall-clock arithmetic in a user's IANA time zone, with Intl only: where
 * "now" falls in the local day, whether that is inside a quiet-hours window
 * (which may cross midnight), and the instant the window ends.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** True when `timeZone` is an IANA zone this runtime knows. */
export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== "string" || timeZone.length === 0 || timeZone.length > 64) return false;
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The zone to compute with: the user's when valid, else UTC (never throw on a bad row). */
export function safeTimeZone(timeZone: string | null | undefined): string {
  return timeZone && isValidTimeZone(timeZone) ? timeZone : "UTC";
}

/** Offset of local wall time from UTC at `at`, in minutes (e.g. +60 for Paris in winter). */
export function offsetMinutes(at: Date, timeZone: string): number {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(at)) {
    if (part.type !== "literal") p[part.type] = Number(part.value);
  }
  const wall = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return Math.round((wall - Math.floor(at.getTime() / 1000) * 1000) / 60_000);
}

/** Minutes since local midnight at `at`. */
export function localMinuteOfDay(at: Date, timeZone: string): number {
  const local = new Date(at.getTime() + offsetMinutes(at, timeZone) * 60_000);
  return local.getUTCHours() * 60 + local.getUTCMinutes();
}

/** "HH:mm" -> minutes since midnight. */
export function parseHhmm(value: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(value);
  if (!m) throw new RangeError(`not HH:mm: ${value}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/**
 * Whether minute `m` is inside [start, end). A window with start > end
 * crosses midnight (22:00-08:00); start == end is an empty window, so a user
 * cannot silence the whole day by accident.
 */
export function inWindow(m: number, start: number, end: number): boolean {
  if (start === end) return false;
  return start < end ? m >= start && m < end : m >= start || m < end;
}

/**
 * The next instant at which local wall time reads `endMinute`, corrected for
 * a DST change between now and then (a window ending at 08:00 ends at 08:00
 * local on the morning the clocks moved).
 */
export function nextLocalTime(now: Date, timeZone: string, endMinute: number): Date {
  const m = localMinuteOfDay(now, timeZone);
  const delta = (endMinute - m + 1440) % 1440 || 1440;
  const startOfMinute = Math.floor(now.getTime() / 60_000) * 60_000;
  let candidate = new Date(startOfMinute + delta * 60_000);
  const shift = offsetMinutes(now, timeZone) - offsetMinutes(candidate, timeZone);
  if (shift !== 0) candidate = new Date(candidate.getTime() + shift * 60_000);
  return candidate;
}

/** The next local top of the hour strictly after `now` (half-hour zones included). */
export function nextLocalHour(now: Date, timeZone: string): Date {
  const m = localMinuteOfDay(now, timeZone);
  const startOfMinute = Math.floor(now.getTime() / 60_000) * 60_000;
  return new Date(startOfMinute + (60 - (m % 60)) * 60_000);
}
