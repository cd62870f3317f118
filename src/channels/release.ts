/**
 * The check a send passes when the worker releases it (issue 16.5): nothing
 * goes out about a notification the user already read or archived (a deleted
 * one is not loaded at all), and the user's current preferences decide again
 * (the delivery rules applied at release): a channel or type switched off since the send
 * was queued, or e-mail moved to the digest, cancels it; the user's current
 * quiet hours holding at release (their end moved later, or switched on since)
 * defer it to their end, unless critical (delivery rule 3). An e-mail that
 * waited to be seen in-app (`unlessSeen`) is cancelled when a device
 * acknowledged the notification meanwhile, unless the user has since asked
 * for every e-mail (`emailImmediate: "always"`).
 */
import { decideDelivery } from "../preferences/index.js";
import { nextLocalTime, parseHhmm, safeTimeZone } from "../time/index.js";
import type { PreferenceFields } from "../preferences/index.js";
import type { OutOfAppChannelName } from "./channel.js";
import type { NotificationContent } from "./queue-sql.js";

export interface ReleaseVerdict {
  keep: NotificationContent[];
  /** Notifications not to send, with why (stored as the row's last_error). */
  drop: { id: string; reason: string }[];
  /** Every kept notification is inside the user's current quiet hours: send at their end instead of now. */
  deferUntil?: Date;
}

export function releaseCheck(
  channel: OutOfAppChannelName,
  notifications: NotificationContent[],
  current: { prefs: PreferenceFields; timeZone: string } | undefined,
  now: Date,
  unlessSeen = false,
): ReleaseVerdict {
  const verdict: ReleaseVerdict = { keep: [], drop: [] };
  let silent = current !== undefined;
  for (const n of notifications) {
    const decision = current && decideDelivery(n, current.prefs, current.timeZone, now);
    const plan = decision?.outOfApp[channel];
    const reason = n.read
      ? "already read"
      : n.archived
        ? "archived"
        : plan && (plan.mode === "off" || plan.mode === "digest")
          ? "switched off in the user's current preferences"
          : unlessSeen && n.delivered && (!plan || plan.mode === "unless_seen")
            ? "seen in-app (a device acknowledged it)"
            : undefined;
    if (reason) verdict.drop.push({ id: n.id, reason });
    else {
      verdict.keep.push(n);
      if (decision && !decision.silent) silent = false;
    }
  }
  if (current && silent && verdict.keep.length > 0) {
    verdict.deferUntil = nextLocalTime(now, safeTimeZone(current.timeZone), parseHhmm(current.prefs.quietHoursEnd));
  }
  return verdict;
}
