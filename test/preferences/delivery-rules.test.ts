/**
 * The delivery rules (docs/delivery.md), rule by rule, as tables over the pure decision
 * `decideDelivery(notification, preferences, timeZone, now)`.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_PREFERENCES, type PreferenceFields, decideDelivery, inQuietHours, preferencesUpdateSchema } from "../../src/preferences/index.js";

const prefs = (over: Partial<PreferenceFields> = {}): PreferenceFields => ({ ...DEFAULT_PREFERENCES, ...over });
const at = (iso: string) => new Date(iso);
const NOON = at("2024-01-15T12:00:00Z");

describe("rule 1: a type switched off delivers nothing, except security_alert and critical", () => {
  it.each([
    ["new_message", "newMessageEnabled"],
    ["booking_request", "bookingRequestEnabled"],
    ["booking_confirmed", "bookingConfirmedEnabled"],
    ["payment_received", "paymentReceivedEnabled"],
    ["platform_update", "platformUpdateEnabled"],
  ] as const)("%s with %s=false is not stored and goes nowhere", (type, toggle) => {
    const d = decideDelivery({ type, priority: "normal" }, prefs({ [toggle]: false }), "UTC", NOON);
    expect(d).toMatchObject({ store: false, inApp: false, reason: "type_disabled" });
    expect(d.outOfApp).toEqual({ email: { mode: "off" }, push: { mode: "off" }, sms: { mode: "off" } });
  });

  it.each([
    ["security_alert switched off", { type: "security_alert", priority: "critical" }, { securityAlertEnabled: false }],
    ["security_alert sent with low priority, switched off", { type: "security_alert", priority: "low" }, { securityAlertEnabled: false }],
    ["a critical new_message with new_message off", { type: "new_message", priority: "critical" }, { newMessageEnabled: false }],
  ] as const)("%s is still stored, pushed and e-mailed now", (_name, n, over) => {
    const d = decideDelivery(n, prefs(over), "UTC", NOON);
    expect(d).toMatchObject({ store: true, inApp: true, critical: true });
    expect(d.outOfApp.email).toEqual({ mode: "now" });
  });

  it.each([
    ["a custom type has no toggle", { type: "invoice_overdue", priority: "normal" }, {}],
    ["another type's toggle does not matter", { type: "new_message", priority: "high" }, { platformUpdateEnabled: false }],
    ["a name that is an Object property is a custom type", { type: "constructor", priority: "normal" }, {}],
  ] as const)("%s: stored", (_name, n, over) => {
    expect(decideDelivery(n, prefs(over), "UTC", NOON).store).toBe(true);
  });
});

describe("security_alert at any priority is critical (issue 16: the choice, documented in README)", () => {
  it("a low-priority security_alert in quiet hours, with in-app and its toggle off, is pushed unsilenced and e-mailed now", () => {
    const over = { quietHoursEnabled: true, quietHoursStart: "00:00", quietHoursEnd: "23:59", inAppEnabled: false, securityAlertEnabled: false, frequency: "daily_digest" as const };
    const d = decideDelivery({ type: "security_alert", priority: "low" }, prefs(over), "UTC", NOON);
    expect(d).toMatchObject({ store: true, inApp: true, critical: true, silent: false });
    expect(d.presentation.silent).toBe(false);
    expect(d.outOfApp.email).toEqual({ mode: "now" });
    // A low-priority notification of another type in the same settings is silenced and left to the digest.
    const other = decideDelivery({ type: "booking_request", priority: "low" }, prefs(over), "UTC", NOON);
    expect([other.inApp, other.silent, other.outOfApp.email.mode]).toEqual([false, true, "digest"]);
  });
});

describe("rule 2: in-app, pushed at once, silent in quiet hours, critical never silenced", () => {
  it.each([
    ["inAppEnabled=false: stored but not pushed", { type: "new_message", priority: "high" }, { inAppEnabled: false }, true, false],
    ["inAppEnabled=false does not stop critical", { type: "security_alert", priority: "critical" }, { inAppEnabled: false }, true, true],
    ["defaults: stored and pushed", { type: "booking_confirmed", priority: "normal" }, {}, true, true],
  ] as const)("%s", (_name, n, over, store, inApp) => {
    const d = decideDelivery(n, prefs(over), "UTC", NOON);
    expect([d.store, d.inApp]).toEqual([store, inApp]);
  });

  const quiet = { quietHoursEnabled: true, quietHoursStart: "22:00", quietHoursEnd: "08:00" };
  it.each([
    // zone, window, instant (UTC), silent?
    ["UTC", quiet, "2024-01-15T23:30:00Z", true],
    ["UTC", quiet, "2024-01-15T22:00:00Z", true],
    ["UTC", quiet, "2024-01-16T07:59:00Z", true],
    ["UTC", quiet, "2024-01-16T08:00:00Z", false],
    ["UTC", quiet, "2024-01-15T21:59:00Z", false],
    ["UTC", { ...quiet, quietHoursEnabled: false }, "2024-01-15T23:30:00Z", false],
    ["UTC", { quietHoursEnabled: true, quietHoursStart: "13:00", quietHoursEnd: "14:00" }, "2024-01-15T13:30:00Z", true],
    ["UTC", { quietHoursEnabled: true, quietHoursStart: "13:00", quietHoursEnd: "14:00" }, "2024-01-15T14:00:00Z", false],
    ["UTC", { quietHoursEnabled: true, quietHoursStart: "13:00", quietHoursEnd: "14:00" }, "2024-01-15T23:00:00Z", false],
    ["UTC", { quietHoursEnabled: true, quietHoursStart: "09:00", quietHoursEnd: "09:00" }, "2024-01-15T09:00:00Z", false],
    // 22:30 in Paris (UTC+1 in winter) is quiet although 21:30 UTC is not.
    ["Europe/Paris", quiet, "2024-01-15T21:30:00Z", true],
    ["Europe/Paris", quiet, "2024-01-16T06:30:00Z", true],
    ["Europe/Paris", quiet, "2024-01-16T07:30:00Z", false],
    // 23:00 in New York in summer (UTC-4) is 03:00 UTC.
    ["America/New_York", { ...quiet, quietHoursEnd: "07:00" }, "2024-07-01T03:00:00Z", true],
    ["America/New_York", { ...quiet, quietHoursEnd: "07:00" }, "2024-07-01T12:00:00Z", false],
    // Half-hour zone: 06:15 and 06:35 in Kolkata (UTC+5:30) around a 06:30 end.
    ["Asia/Kolkata", { ...quiet, quietHoursEnd: "06:30" }, "2024-03-01T00:45:00Z", true],
    ["Asia/Kolkata", { ...quiet, quietHoursEnd: "06:30" }, "2024-03-01T01:05:00Z", false],
    // An unknown zone in the row falls back to UTC instead of failing the send.
    ["Not/AZone", quiet, "2024-01-15T23:30:00Z", true],
  ] as const)("%s %o at %s: silent=%s", (zone, window, instant, silent) => {
    const d = decideDelivery({ type: "new_message", priority: "high" }, prefs(window), zone, at(instant));
    expect(d.silent).toBe(silent);
    expect(d.presentation.silent).toBe(silent);
    expect(d.presentation.sound).toBe(!silent);
    expect(d.inApp).toBe(true);
    expect(inQuietHours(prefs(window), zone === "Not/AZone" ? "UTC" : zone, at(instant))).toBe(silent);
  });

  it("critical inside quiet hours is pushed with sound, not silently", () => {
    const d = decideDelivery({ type: "payment_received", priority: "critical" }, prefs(quiet), "UTC", at("2024-01-15T23:30:00Z"));
    expect(d.presentation).toEqual({ sound: true, volume: 70, desktop: true, silent: false });
  });

  it.each([
    [{ soundEnabled: false }, { sound: false, volume: 70, desktop: true, silent: false }],
    [{ soundVolume: 15 }, { sound: true, volume: 15, desktop: true, silent: false }],
    [{ desktopNotifications: false }, { sound: true, volume: 70, desktop: false, silent: false }],
  ] as const)("presentation follows the sound and desktop preferences %o", (over, presentation) => {
    expect(decideDelivery({ type: "new_message", priority: "high" }, prefs(over), "UTC", NOON).presentation).toEqual(presentation);
  });
});

describe("rule 3: out of app, each channel behind its toggle, then frequency and quiet hours", () => {
  const quiet = { quietHoursEnabled: true, quietHoursStart: "22:00", quietHoursEnd: "08:00" };
  const all = { emailEnabled: true, browserPushEnabled: true, smsEnabled: true };
  const n = { type: "new_message", priority: "high" };
  const crit = { type: "security_alert", priority: "critical" };
  it.each([
    ["defaults: e-mail now, push and SMS off", n, {}, "UTC", NOON, { email: { mode: "now" }, push: { mode: "off" }, sms: { mode: "off" } }],
    ["every toggle on, immediate", n, all, "UTC", NOON, { email: { mode: "now" }, push: { mode: "now" }, sms: { mode: "now" } }],
    ["e-mail switched off", n, { ...all, emailEnabled: false }, "UTC", NOON, { email: { mode: "off" }, push: { mode: "now" }, sms: { mode: "now" } }],
    [
      "immediate in quiet hours: held until they end (Paris, 22:30 local -> 08:00 local)",
      n, { ...all, ...quiet }, "Europe/Paris", at("2024-01-15T21:30:00Z"),
      { email: { mode: "hold_until", until: at("2024-01-16T07:00:00Z") }, push: { mode: "hold_until", until: at("2024-01-16T07:00:00Z") }, sms: { mode: "hold_until", until: at("2024-01-16T07:00:00Z") } },
    ],
    [
      "held across the spring-forward night: 08:00 CEST is 06:00 UTC",
      n, quiet, "Europe/Paris", at("2024-03-30T22:00:00Z"),
      { email: { mode: "hold_until", until: at("2024-03-31T06:00:00Z") }, push: { mode: "off" }, sms: { mode: "off" } },
    ],
    [
      "held across the fall-back night: 08:00 CET is 07:00 UTC",
      n, quiet, "Europe/Paris", at("2024-10-26T21:00:00Z"),
      { email: { mode: "hold_until", until: at("2024-10-27T07:00:00Z") }, push: { mode: "off" }, sms: { mode: "off" } },
    ],
    ["critical in quiet hours goes now", crit, { ...all, ...quiet }, "UTC", at("2024-01-15T23:30:00Z"), { email: { mode: "now" }, push: { mode: "now" }, sms: { mode: "now" } }],
    ["critical still respects a channel switched off", crit, { smsEnabled: false, browserPushEnabled: false }, "UTC", NOON, { email: { mode: "now" }, push: { mode: "off" }, sms: { mode: "off" } }],
    ["hourly: bundled at the next top of the hour", n, { ...all, frequency: "hourly" }, "UTC", at("2024-01-15T10:20:00Z"),
      { email: { mode: "hourly", at: at("2024-01-15T11:00:00Z") }, push: { mode: "hourly", at: at("2024-01-15T11:00:00Z") }, sms: { mode: "hourly", at: at("2024-01-15T11:00:00Z") } }],
    ["hourly in a half-hour zone: the local top of the hour (16:00 IST = 10:30 UTC)", n, { frequency: "hourly" }, "Asia/Kolkata", at("2024-01-15T10:20:00Z"),
      { email: { mode: "hourly", at: at("2024-01-15T10:30:00Z") }, push: { mode: "off" }, sms: { mode: "off" } }],
    ["hourly bundle due in quiet hours waits for their end", n, { ...quiet, frequency: "hourly" }, "UTC", at("2024-01-15T23:20:00Z"),
      { email: { mode: "hourly", at: at("2024-01-16T08:00:00Z") }, push: { mode: "off" }, sms: { mode: "off" } }],
    ["hourly does not batch critical", crit, { frequency: "hourly" }, "UTC", at("2024-01-15T10:20:00Z"), { email: { mode: "now" }, push: { mode: "off" }, sms: { mode: "off" } }],
    ["daily_digest: e-mail left to the digest, push and SMS off", n, { ...all, frequency: "daily_digest" }, "UTC", NOON,
      { email: { mode: "digest" }, push: { mode: "off" }, sms: { mode: "off" } }],
    ["daily_digest with digests switched off: nothing by e-mail", n, { frequency: "daily_digest", emailDigestEnabled: false }, "UTC", NOON,
      { email: { mode: "off" }, push: { mode: "off" }, sms: { mode: "off" } }],
    ["daily_digest does not hold critical", crit, { ...all, frequency: "daily_digest" }, "UTC", NOON, { email: { mode: "now" }, push: { mode: "now" }, sms: { mode: "now" } }],
  ] as const)("%s", (_name, notification, over, zone, now, outOfApp) => {
    expect(decideDelivery(notification, prefs(over as Partial<PreferenceFields>), zone, now).outOfApp).toEqual(outOfApp);
  });
});

describe('rule 3, e-mail in "unseen" mode (the default): normal and low wait to be seen in-app, high and critical go now', () => {
  const all = { emailEnabled: true, browserPushEnabled: true, smsEnabled: true };
  const quiet = { quietHoursEnabled: true, quietHoursStart: "22:00", quietHoursEnd: "08:00" };
  const TWO_MINUTES_AFTER_NOON = at("2024-01-15T12:02:00Z");
  it.each([
    ["defaults, normal: e-mailed at +2 min unless seen", { type: "booking_confirmed", priority: "normal" }, {}, NOON, { mode: "unless_seen", at: TWO_MINUTES_AFTER_NOON }],
    ["defaults, low: the same", { type: "platform_update", priority: "low" }, {}, NOON, { mode: "unless_seen", at: TWO_MINUTES_AFTER_NOON }],
    ["high goes now", { type: "new_message", priority: "high" }, {}, NOON, { mode: "now" }],
    ["critical goes now", { type: "payment_received", priority: "critical" }, {}, NOON, { mode: "now" }],
    ["security_alert at low priority is critical: now", { type: "security_alert", priority: "low" }, {}, NOON, { mode: "now" }],
    ['emailImmediate "always": normal goes now (frequency "immediate" as before)', { type: "booking_confirmed", priority: "normal" }, { emailImmediate: "always" }, NOON, { mode: "now" }],
    ["in-app off: nothing to see, so now", { type: "booking_confirmed", priority: "normal" }, { inAppEnabled: false }, NOON, { mode: "now" }],
    ["in quiet hours: at their end, unless seen by then", { type: "booking_confirmed", priority: "normal" }, quiet, at("2024-01-15T23:30:00Z"), { mode: "unless_seen", at: at("2024-01-16T08:00:00Z") }],
    ["quiet hours ending within the delay: the delay still applies", { type: "booking_confirmed", priority: "normal" }, quiet, at("2024-01-16T07:59:00Z"), { mode: "unless_seen", at: at("2024-01-16T08:01:00Z") }],
    ['"always" in quiet hours: held until their end', { type: "booking_confirmed", priority: "normal" }, { ...quiet, emailImmediate: "always" }, at("2024-01-15T23:30:00Z"), { mode: "hold_until", until: at("2024-01-16T08:00:00Z") }],
    ["hourly is not affected: bundled", { type: "booking_confirmed", priority: "normal" }, { frequency: "hourly" }, at("2024-01-15T10:20:00Z"), { mode: "hourly", at: at("2024-01-15T11:00:00Z") }],
    ["daily_digest is not affected: the digest", { type: "booking_confirmed", priority: "normal" }, { frequency: "daily_digest" }, NOON, { mode: "digest" }],
    ["e-mail off stays off", { type: "booking_confirmed", priority: "normal" }, { emailEnabled: false }, NOON, { mode: "off" }],
  ] as const)("%s", (_name, notification, over, now, email) => {
    expect(decideDelivery(notification, prefs(over as Partial<PreferenceFields>), "UTC", now).outOfApp.email).toEqual(email);
  });

  it("push and SMS, switched on by the user, still go now for normal priority", () => {
    const d = decideDelivery({ type: "booking_confirmed", priority: "normal" }, prefs(all), "UTC", NOON);
    expect(d.outOfApp).toEqual({ email: { mode: "unless_seen", at: TWO_MINUTES_AFTER_NOON }, push: { mode: "now" }, sms: { mode: "now" } });
  });

  it("the delay is a server setting (emailUnseenDelayMs)", () => {
    const d = decideDelivery({ type: "booking_confirmed", priority: "normal" }, prefs(), "UTC", NOON, { emailUnseenDelayMs: 30_000 });
    expect(d.outOfApp.email).toEqual({ mode: "unless_seen", at: at("2024-01-15T12:00:30Z") });
  });

  it('"unseen" is the default, and the value is validated', () => {
    expect(DEFAULT_PREFERENCES.emailImmediate).toBe("unseen");
    expect(preferencesUpdateSchema.safeParse({ emailImmediate: "always" }).success).toBe(true);
    expect(preferencesUpdateSchema.safeParse({ emailImmediate: "sometimes" }).success).toBe(false);
  });
});
