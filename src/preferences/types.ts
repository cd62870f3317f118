/**
 * The guide's NotificationPreferences, their defaults (what a user who never
 * set any gets) and the validation of a partial update. The zod schema is the
 * one the REST route uses, so the library and HTTP accept the same input.
 */
import { z } from "zod";

export const FREQUENCIES = ["immediate", "hourly", "daily_digest"] as const;
export type Frequency = (typeof FREQUENCIES)[number];
export const DIGEST_FREQUENCIES = ["hourly", "daily", "weekly"] as const;
export type DigestFrequency = (typeof DIGEST_FREQUENCIES)[number];
/**
 * How `frequency: "immediate"` treats e-mail of normal and low priority
 * (docs/delivery.md, rule 3): `unseen` sends it only when the user has not
 * seen it in-app (no device acknowledged it and it is unread) a short delay
 * after its creation; `always` sends every one at once.
 */
export const EMAIL_IMMEDIATE_MODES = ["unseen", "always"] as const;
export type EmailImmediate = (typeof EMAIL_IMMEDIATE_MODES)[number];

export interface NotificationPreferences {
  userId: string;
  inAppEnabled: boolean;
  emailEnabled: boolean;
  browserPushEnabled: boolean;
  smsEnabled: boolean;
  newMessageEnabled: boolean;
  bookingRequestEnabled: boolean;
  bookingConfirmedEnabled: boolean;
  paymentReceivedEnabled: boolean;
  platformUpdateEnabled: boolean;
  securityAlertEnabled: boolean;
  quietHoursEnabled: boolean;
  /** HH:mm in the user's time zone (users.timezone). */
  quietHoursStart: string;
  quietHoursEnd: string;
  frequency: Frequency;
  /** With `frequency: "immediate"`: e-mail normal/low priority only when unseen in-app, or always. */
  emailImmediate: EmailImmediate;
  soundEnabled: boolean;
  soundVolume: number;
  desktopNotifications: boolean;
  emailDigestEnabled: boolean;
  emailDigestFrequency: DigestFrequency;
  /** Null while the user has never saved preferences (defaults in force). */
  updatedAt: string | null;
}

export type PreferenceFields = Omit<NotificationPreferences, "userId" | "updatedAt">;

/** Mirrors the column defaults of migration 0001 (and 0013 for emailImmediate). */
export const DEFAULT_PREFERENCES: Readonly<PreferenceFields> = Object.freeze({
  inAppEnabled: true,
  emailEnabled: true,
  browserPushEnabled: false,
  smsEnabled: false,
  newMessageEnabled: true,
  bookingRequestEnabled: true,
  bookingConfirmedEnabled: true,
  paymentReceivedEnabled: true,
  platformUpdateEnabled: true,
  securityAlertEnabled: true,
  quietHoursEnabled: false,
  quietHoursStart: "22:00",
  quietHoursEnd: "08:00",
  frequency: "immediate",
  emailImmediate: "unseen",
  soundEnabled: true,
  soundVolume: 70,
  desktopNotifications: true,
  emailDigestEnabled: true,
  emailDigestFrequency: "daily",
});

export function defaultPreferences(userId: string): NotificationPreferences {
  return { userId, ...DEFAULT_PREFERENCES, updatedAt: null };
}

/** Field name -> column, the whitelist every dynamic SQL statement is built from. */
export const PREFERENCE_COLUMNS: Readonly<Record<keyof PreferenceFields, string>> = Object.freeze({
  inAppEnabled: "in_app_enabled",
  emailEnabled: "email_enabled",
  browserPushEnabled: "browser_push_enabled",
  smsEnabled: "sms_enabled",
  newMessageEnabled: "new_message_enabled",
  bookingRequestEnabled: "booking_request_enabled",
  bookingConfirmedEnabled: "booking_confirmed_enabled",
  paymentReceivedEnabled: "payment_received_enabled",
  platformUpdateEnabled: "platform_update_enabled",
  securityAlertEnabled: "security_alert_enabled",
  quietHoursEnabled: "quiet_hours_enabled",
  quietHoursStart: "quiet_hours_start",
  quietHoursEnd: "quiet_hours_end",
  frequency: "frequency",
  emailImmediate: "email_immediate",
  soundEnabled: "sound_enabled",
  soundVolume: "sound_volume",
  desktopNotifications: "desktop_notifications",
  emailDigestEnabled: "email_digest_enabled",
  emailDigestFrequency: "email_digest_frequency",
});

/** The toggle that switches a known notification type off; custom types have none. */
export const TYPE_TOGGLES: Readonly<Record<string, keyof PreferenceFields>> = Object.freeze({
  new_message: "newMessageEnabled",
  booking_request: "bookingRequestEnabled",
  booking_confirmed: "bookingConfirmedEnabled",
  payment_received: "paymentReceivedEnabled",
  platform_update: "platformUpdateEnabled",
  security_alert: "securityAlertEnabled",
});

/** The type toggle for `type`, undefined for custom types (own keys only: "constructor" is a custom type). */
export function typeToggleOf(type: string): keyof PreferenceFields | undefined {
  return Object.hasOwn(TYPE_TOGGLES, type) ? TYPE_TOGGLES[type] : undefined;
}

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "must be HH:mm (00:00 to 23:59)");

/** A partial update: every field optional, unknown fields refused. */
export const preferencesUpdateSchema = z
  .object({
    inAppEnabled: z.boolean(),
    emailEnabled: z.boolean(),
    browserPushEnabled: z.boolean(),
    smsEnabled: z.boolean(),
    newMessageEnabled: z.boolean(),
    bookingRequestEnabled: z.boolean(),
    bookingConfirmedEnabled: z.boolean(),
    paymentReceivedEnabled: z.boolean(),
    platformUpdateEnabled: z.boolean(),
    securityAlertEnabled: z.boolean(),
    quietHoursEnabled: z.boolean(),
    quietHoursStart: hhmm,
    quietHoursEnd: hhmm,
    frequency: z.enum(FREQUENCIES),
    emailImmediate: z.enum(EMAIL_IMMEDIATE_MODES),
    soundEnabled: z.boolean(),
    soundVolume: z.number().int().min(0).max(100),
    desktopNotifications: z.boolean(),
    emailDigestEnabled: z.boolean(),
    emailDigestFrequency: z.enum(DIGEST_FREQUENCIES),
  })
  .partial()
  .strict();

export type PreferencesUpdate = z.infer<typeof preferencesUpdateSchema>;

export const preferencesSchema = z.object({
  userId: z.string(),
  ...preferencesUpdateSchema.required().shape,
  updatedAt: z.string().nullable(),
});
