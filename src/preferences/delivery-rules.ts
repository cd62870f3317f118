/**
 * The delivery rules (docs/delivery.md) as one pure decision: given a notification's type and
 * priority, the recipient's preferences and time zone, and the current
 * instant, what happens on each channel. No I/O; table-tested in
 * test/preferences/delivery-rules.test.ts.
 *
 * Choices where the rules leave room:
 * - A type switched off stores nothing (no inbox row, no channel), so the
 *   notification does not exist for that user; `critical` priority and
 *   `security_alert` cannot be switched off.
 * - `inAppEnabled: false` still stores the row (digests and out-of-app sends
 *   read it) but does not push it over WebSocket; critical is pushed anyway.
 * - Channel toggles (email, push, SMS) are respected even for critical: a
 *   user without SMS cannot be texted. Critical skips quiet hours and the
 *   hourly / digest batching and goes out at once.
 * - E-mail under `frequency: "immediate"` with `emailImmediate: "unseen"`
 *   (the default) goes at once only for high and critical priority; normal
 *   and low wait `emailUnseenDelayMs` and go only if the user has not seen
 *   them in-app by then (the worker checks at send time). With in-app off
 *   there is nothing to see, so e-mail goes at once. Push and SMS are opt-in
 *   channels the user switched on and keep sending at once.
 */
import type { Presentation } from "../protocol/index.js";
import { inWindow, localMinuteOfDay, nextLocalHour, nextLocalTime, parseHhmm, safeTimeZone } from "../time/index.js";
import { type PreferenceFields, typeToggleOf } from "./types.js";

export type ChannelPlan =
  | { mode: "now" }
  /** Immediate, but quiet hours are on: send at `until` (their end). */
  | { mode: "hold_until"; until: Date }
  /** Send at `at` unless by then a device acknowledged the notification or the user read it (e-mail's "unseen" mode). */
  | { mode: "unless_seen"; at: Date }
  /** Bundled with the hour's others into one message at `at`. */
  | { mode: "hourly"; at: Date }
  /** Left to the e-mail digest. */
  | { mode: "digest" }
  | { mode: "off" };

export const OUT_OF_APP_CHANNELS = ["email", "push", "sms"] as const;
export type OutOfAppChannel = (typeof OUT_OF_APP_CHANNELS)[number];

export interface DeliveryDecision {
  /** Written to the user's inbox at all (false only when the type is switched off). */
  store: boolean;
  /** Pushed over WebSocket to the user's live connections. */
  inApp: boolean;
  /** Inside quiet hours and not critical. */
  silent: boolean;
  critical: boolean;
  presentation: Presentation;
  outOfApp: Record<OutOfAppChannel, ChannelPlan>;
  /** Why nothing is delivered, when `store` is false. */
  reason?: "type_disabled";
}

export interface DeliveryInput {
  type: string;
  priority: string;
}

const OFF: ChannelPlan = { mode: "off" };

/** How long a normal/low notification may wait to be seen in-app before it is e-mailed (`emailImmediate: "unseen"`). */
export const DEFAULT_EMAIL_UNSEEN_DELAY_MS = 120_000;

/** Server-level knobs of the rules; every field has a default. */
export interface DeliveryRuleOptions {
  emailUnseenDelayMs?: number;
}

export function isCritical(n: DeliveryInput): boolean {
  return n.priority === "critical" || n.type === "security_alert";
}

/** Whether the user's quiet hours contain `now` in `timeZone`. */
export function inQuietHours(prefs: Pick<PreferenceFields, "quietHoursEnabled" | "quietHoursStart" | "quietHoursEnd">, timeZone: string, now: Date): boolean {
  if (!prefs.quietHoursEnabled) return false;
  return inWindow(localMinuteOfDay(now, timeZone), parseHhmm(prefs.quietHoursStart), parseHhmm(prefs.quietHoursEnd));
}

export function decideDelivery(
  notification: DeliveryInput,
  prefs: PreferenceFields,
  timeZone: string | null | undefined,
  now: Date,
  options: DeliveryRuleOptions = {},
): DeliveryDecision {
  const zone = safeTimeZone(timeZone);
  const critical = isCritical(notification);

  // Rule 1: a type switched off delivers nothing, anywhere.
  const toggle = typeToggleOf(notification.type);
  if (!critical && toggle !== undefined && prefs[toggle] === false) {
    return {
      store: false,
      inApp: false,
      silent: false,
      critical,
      presentation: { sound: false, volume: prefs.soundVolume, desktop: false, silent: true },
      outOfApp: { email: OFF, push: OFF, sms: OFF },
      reason: "type_disabled",
    };
  }

  // Rule 2: in-app, silenced (never dropped) during quiet hours.
  const quiet = inQuietHours(prefs, zone, now);
  const silent = quiet && !critical;
  const presentation: Presentation = {
    sound: prefs.soundEnabled && !silent,
    volume: prefs.soundVolume,
    desktop: prefs.desktopNotifications,
    silent,
  };

  // Rule 3: out of app, each behind its toggle, then frequency and quiet hours.
  const rule = { prefs, zone, now, critical, quiet };
  const inApp = prefs.inAppEnabled || critical;
  // Rule 3, e-mail in "unseen" mode: normal and low wait to be seen in-app (not past quiet hours' end).
  const email = channelPlan(rule, prefs.emailEnabled, true);
  const waitsToBeSeen =
    (email.mode === "now" || email.mode === "hold_until") && inApp && prefs.emailImmediate !== "always" && notification.priority !== "high" && !critical;
  const seenBy = new Date(now.getTime() + (options.emailUnseenDelayMs ?? DEFAULT_EMAIL_UNSEEN_DELAY_MS));
  return {
    store: true,
    inApp,
    silent,
    critical,
    presentation,
    outOfApp: {
      email: !waitsToBeSeen ? email : { mode: "unless_seen", at: email.mode === "hold_until" && email.until > seenBy ? email.until : seenBy },
      push: channelPlan(rule, prefs.browserPushEnabled, false),
      sms: channelPlan(rule, prefs.smsEnabled, false),
    },
  };
}

/**
 * Rule 3 for one out-of-app channel. A module function, not a closure in decideDelivery: the runtime's
 * transform (tsx, keepNames) names every closure with a defineProperty call each time it is created, which
 * was ~4 us of each creation (issue 17's profile).
 */
function channelPlan(
  r: { prefs: PreferenceFields; zone: string; now: Date; critical: boolean; quiet: boolean },
  enabled: boolean,
  digestable: boolean,
): ChannelPlan {
  if (!enabled) return OFF;
  if (r.critical) return { mode: "now" };
  switch (r.prefs.frequency) {
    case "immediate":
      return r.quiet ? { mode: "hold_until", until: nextLocalTime(r.now, r.zone, parseHhmm(r.prefs.quietHoursEnd)) } : { mode: "now" };
    case "hourly": {
      const at = nextLocalHour(r.now, r.zone);
      // A bundle due inside quiet hours waits for them to end.
      return { mode: "hourly", at: inQuietHours(r.prefs, r.zone, at) ? nextLocalTime(at, r.zone, parseHhmm(r.prefs.quietHoursEnd)) : at };
    }
    case "daily_digest":
      return digestable && r.prefs.emailDigestEnabled ? { mode: "digest" } : OFF;
    default:
      return OFF;
  }
}
