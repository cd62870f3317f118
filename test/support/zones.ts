/**
 * Time-zone fixtures for the DST tests (issue #16): the zones, and the local
 * wall clock read by Intl alone (independent of the code under test) as the
 * oracle.
 */

/** The zones of issue #16: odd offsets, half-hour and two-hour DST, both hemispheres, +14 and -11. */
export const ZONES = [
  "Asia/Kolkata",
  "America/St_Johns",
  "Pacific/Chatham",
  "America/New_York",
  "Europe/Berlin",
  "Australia/Lord_Howe",
  "Antarctica/Troll",
  "UTC",
  "America/Sao_Paulo",
  "Asia/Kathmandu",
  "Pacific/Kiritimati",
  "Pacific/Pago_Pago",
  "Australia/Adelaide",
];

const formats = new Map<string, Intl.DateTimeFormat>();

/** "HH:mm" local time of `t` in `zone`, by Intl alone. */
export function localHHMM(t: number, zone: string): string {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    formats.set(zone, f);
  }
  return f.format(t);
}
