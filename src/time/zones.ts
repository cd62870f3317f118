/**
 * Wall-clock arithmetic in a user's IANA time zone, with Intl only: zone
 * validation, where "now" falls in the local day, whether that is inside a
 * window that may cross midnight (quiet hours), the instant a window ends,
 * and local hour and day boundaries across DST (digest windows).
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
  const local = at.getTime() + offsetAt(at.getTime(), timeZone) * MINUTE;
  return Math.floor((((local % DAY) + DAY) % DAY) / MINUTE);
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** A change of a zone's offset at instant `at`: forward (a gap of wall times) or back (a repeat). */
interface Transition {
  at: number;
  before: number;
  after: number;
}

/**
 * Each zone's offset changes for one UTC year, found once with Intl (a sample
 * every 6 hours, then a binary search to the second) so that the per-instant
 * math below is arithmetic. Assumes no zone changes its offset twice within
 * 6 hours, true of every zone in the tz database since 1970.
 */
const zoneYears = new Map<string, { start: number; transitions: Transition[] }>();
function zoneYear(timeZone: string, year: number): { start: number; transitions: Transition[] } {
  const key = `${timeZone}|${year}`;
  let entry = zoneYears.get(key);
  if (entry) return entry;
  const from = Date.UTC(year, 0, 1);
  const to = Date.UTC(year + 1, 0, 1);
  const step = 6 * HOUR;
  const intl = (t: number) => offsetMinutes(new Date(t), timeZone);
  const start = intl(from);
  const transitions: Transition[] = [];
  let previous = start;
  for (let t = from + step; t <= to; t += step) {
    const o = intl(t);
    if (o === previous) continue;
    let lo = t - step;
    let hi = t;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (intl(mid) === previous) lo = mid;
      else hi = mid;
    }
    if (hi < to) transitions.push({ at: hi, before: previous, after: o });
    previous = o;
  }
  entry = { start, transitions };
  zoneYears.set(key, entry);
  return entry;
}

const yearOf = (t: number) => new Date(t).getUTCFullYear();

/** Offset in minutes at instant `t` (ms), from the cached transitions. */
export function offsetAt(t: number, timeZone: string): number {
  const { start, transitions } = zoneYear(timeZone, yearOf(t));
  let o = start;
  for (const tr of transitions) if (tr.at <= t) o = tr.after;
  return o;
}

/** Offset changes with `from < at <= to`, oldest first. */
function transitionsIn(timeZone: string, from: number, to: number): Transition[] {
  const out: Transition[] = [];
  for (let y = yearOf(from); y <= yearOf(to); y++) {
    for (const tr of zoneYear(timeZone, y).transitions) if (tr.at > from && tr.at <= to) out.push(tr);
  }
  return out;
}

/**
 * The instants at which the wall clock reads `wallMs` (local fields encoded as
 * if UTC): none, one, or two on a fall-back night, oldest first; when none
 * (the time is in a spring-forward gap), the first instant after the gap.
 */
export function wallTimeInstants(timeZone: string, wallMs: number): { instants: number[]; gapEnd?: number } {
  const offsets = new Set([offsetAt(wallMs - DAY, timeZone), offsetAt(wallMs, timeZone), offsetAt(wallMs + DAY, timeZone)]);
  const instants = [...offsets]
    .map((o) => wallMs - o * MINUTE)
    .filter((t) => wallMs - offsetAt(t, timeZone) * MINUTE === t)
    .sort((a, b) => a - b);
  if (instants.length > 0) return { instants };
  const gap = transitionsIn(timeZone, wallMs - 2 * DAY, wallMs + 2 * DAY).find(
    (tr) => tr.at + tr.before * MINUTE <= wallMs && wallMs < tr.at + tr.after * MINUTE,
  );
  return gap ? { instants, gapEnd: gap.at } : { instants };
}

/** Local midnight of the day containing `t`, encoded as if UTC. */
export function localDayStart(t: number, timeZone: string): number {
  const local = t + offsetAt(t, timeZone) * MINUTE;
  return local - (((local % DAY) + DAY) % DAY);
}

/** The first instant of local day `dayMs` (local midnight as if UTC) at `minute`: its first occurrence, or the end of the gap that skipped it. */
export function firstInstantOfWallTime(timeZone: string, dayMs: number, minute: number): number {
  const { instants, gapEnd } = wallTimeInstants(timeZone, dayMs + minute * MINUTE);
  return instants[0] ?? gapEnd!;
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
 * The first instant after `now` at which local wall time reads `endMinute`;
 * when a spring-forward gap skips that time, the first instant after the gap
 * (quiet hours ending at 02:30 in New York end at 03:00 EDT that night). On a
 * fall-back night the repeated pass counts too: from 01:10 EST, 01:30 is 20
 * minutes away.
 */
export function nextLocalTime(now: Date, timeZone: string, endMinute: number): Date {
  const t = now.getTime();
  const today = localDayStart(t, timeZone);
  for (let d = 0; d <= 2; d++) {
    const { instants, gapEnd } = wallTimeInstants(timeZone, today + d * DAY + endMinute * MINUTE);
    const next = [...instants, ...(gapEnd !== undefined ? [gapEnd] : [])].find((x) => x > t);
    if (next !== undefined) return new Date(next);
  }
  throw new Error(`no ${endMinute} min local time after ${now.toISOString()} in ${timeZone}`);
}

/** A change is a top of the hour when it lands on one, or skipped one going forward (Troll 01:00 -> 03:00, Lord Howe 02:00 -> 02:30). */
function isHourBoundary(tr: Transition): boolean {
  const from = tr.at + tr.before * MINUTE;
  const to = tr.at + tr.after * MINUTE;
  return to % HOUR === 0 || (to > from && Math.ceil(from / HOUR) * HOUR < to);
}

/**
 * The next local top of the hour strictly after `now` (half-hour zones
 * included): the next instant reading :00, or the end of a gap that skipped
 * one. Both passes of a repeated hour count (one per real hour).
 */
export function nextLocalHour(now: Date, timeZone: string): Date {
  let t = now.getTime();
  for (;;) {
    const o = offsetAt(t, timeZone) * MINUTE;
    const candidate = Math.floor((t + o) / HOUR) * HOUR + HOUR - o;
    const tr = transitionsIn(timeZone, t, candidate)[0];
    if (!tr) return new Date(candidate);
    if (isHourBoundary(tr)) return new Date(tr.at);
    t = tr.at;
  }
}

/** The latest local top of the hour at or before `now` (as nextLocalHour, backwards). */
export function lastLocalHour(now: Date, timeZone: string): Date {
  let t = now.getTime();
  for (;;) {
    const o = offsetAt(t, timeZone) * MINUTE;
    const candidate = Math.floor((t + o) / HOUR) * HOUR - o;
    const tr = transitionsIn(timeZone, candidate, t).at(-1);
    if (!tr) return new Date(candidate);
    if (isHourBoundary(tr)) return new Date(tr.at);
    t = tr.at - 1;
  }
}
