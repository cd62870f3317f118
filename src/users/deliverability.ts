/**
 * Which channels can reach a user at all: e-mail and SMS need the directory's
 * address or phone, Web Push a registered subscription; in-app always works
 * (a notification waits in the inbox for the next connection). This says
 * nothing of the user's choices (preferences): a channel may be deliverable
 * and switched off, or switched on and undeliverable, which is what
 * `deliveryWarnings` reports when a notification is created.
 */
import { z } from "zod";
import type { Cache } from "../cache/index.js";
import type { Queryable } from "../db/index.js";

export const DELIVERY_CHANNELS = ["in_app", "email", "push", "sms"] as const;
export type DeliveryChannel = (typeof DELIVERY_CHANNELS)[number];
/** The channels that need something from the directory or a subscription (the queued ones). */
export type AddressedChannel = Exclude<DeliveryChannel, "in_app">;

/** Why a channel cannot reach the user; also the `code` of a creation warning (docs/auth.md lists them). */
export const UNDELIVERABLE_REASONS = ["user_not_in_directory", "no_email_address", "no_phone_number", "no_push_subscription"] as const;
export type UndeliverableReason = (typeof UNDELIVERABLE_REASONS)[number];

/** What deliverability is decided from: one row read by `readRecipient`. */
export interface Recipient {
  inDirectory: boolean;
  hasEmail: boolean;
  hasPhone: boolean;
  pushSubscriptions: number;
}

export interface ChannelDeliverability {
  deliverable: boolean;
  reason: UndeliverableReason | null;
}

export const deliveryWarningSchema = z.object({
  code: z.enum(UNDELIVERABLE_REASONS),
  channel: z.enum(["email", "push", "sms"]),
  message: z.string(),
});
export type DeliveryWarning = z.infer<typeof deliveryWarningSchema>;

const channelDeliverabilitySchema = z.object({ deliverable: z.boolean(), reason: z.enum(UNDELIVERABLE_REASONS).nullable() });
export const deliverabilitySchema = z.object({
  in_app: channelDeliverabilitySchema,
  email: channelDeliverabilitySchema,
  push: channelDeliverabilitySchema,
  sms: channelDeliverabilitySchema,
});
export type Deliverability = z.infer<typeof deliverabilitySchema>;

const READ_RECIPIENT = `
SELECT (u.id IS NOT NULL) AS "inDirectory",
       (u.email IS NOT NULL AND u.email <> '') AS "hasEmail",
       (u.phone IS NOT NULL AND u.phone <> '') AS "hasPhone",
       (SELECT count(*)::int FROM push_subscriptions s WHERE s.user_id = $1) AS "pushSubscriptions"
  FROM (SELECT 1) one LEFT JOIN users u ON u.id = $1`;

/** The directory entry and push subscriptions of `userId`, as deliverability needs them (one indexed query). */
export async function readRecipient(database: Queryable, userId: string): Promise<Recipient> {
  const [row] = await database.query<Recipient>(READ_RECIPIENT, [userId]);
  return row ?? { inDirectory: false, hasEmail: false, hasPhone: false, pushSubscriptions: 0 };
}

const READ_DIRECTORY_FACTS = `
SELECT (u.id IS NOT NULL) AS "inDirectory",
       (u.email IS NOT NULL AND u.email <> '') AS "hasEmail",
       (u.phone IS NOT NULL AND u.phone <> '') AS "hasPhone"
  FROM (SELECT 1) one LEFT JOIN users u ON u.id = $1`;
const COUNT_PUSH_SUBSCRIPTIONS = `SELECT count(*)::int AS n FROM push_subscriptions WHERE user_id = $1`;

type DirectoryFacts = Omit<Recipient, "pushSubscriptions">;
/** Dropped by UserDirectory.upsert and by erasure, like the time zone. */
export const recipientCacheKey = (userId: string) => `recipient:${userId}`;
const RECIPIENT_TTL_SECONDS = 3600;

/**
 * The recipient as creation warnings need it, cheaply: the directory part is
 * cached (an hour, dropped when the directory entry changes), so a creation in
 * the default configuration costs no query; push subscriptions, registered by
 * browsers outside the directory, are counted only when push was chosen.
 */
export class RecipientReader {
  constructor(private readonly deps: { database: Queryable; cache: Cache }) {}

  async read(userId: string, withPush: boolean): Promise<Recipient> {
    const { database, cache } = this.deps;
    const key = recipientCacheKey(userId);
    const facts =
      (await cache.get<DirectoryFacts>(key)) ??
      (await (async () => {
        const [row] = await database.query<DirectoryFacts>(READ_DIRECTORY_FACTS, [userId]);
        const read = row ?? { inDirectory: false, hasEmail: false, hasPhone: false };
        await cache.set(key, read, RECIPIENT_TTL_SECONDS);
        return read;
      })());
    const pushSubscriptions = withPush ? ((await database.query<{ n: number }>(COUNT_PUSH_SUBSCRIPTIONS, [userId]))[0]?.n ?? 0) : 0;
    return { ...facts, pushSubscriptions };
  }
}

/** Why `channel` cannot reach this recipient, or null when it can. */
export function undeliverableReason(channel: DeliveryChannel, r: Recipient): UndeliverableReason | null {
  switch (channel) {
    case "in_app":
      return null;
    case "push":
      return r.pushSubscriptions > 0 ? null : "no_push_subscription";
    case "email":
      return !r.inDirectory ? "user_not_in_directory" : r.hasEmail ? null : "no_email_address";
    case "sms":
      return !r.inDirectory ? "user_not_in_directory" : r.hasPhone ? null : "no_phone_number";
  }
}

/** Every channel's deliverability (GET /api/users/{id}). */
export function deliverabilityOf(r: Recipient): Deliverability {
  const one = (channel: DeliveryChannel): ChannelDeliverability => {
    const reason = undeliverableReason(channel, r);
    return { deliverable: reason === null, reason };
  };
  return { in_app: one("in_app"), email: one("email"), push: one("push"), sms: one("sms") };
}

const MESSAGES: Record<UndeliverableReason, (channel: AddressedChannel) => string> = {
  user_not_in_directory: (channel) => `The user is not in the directory (PUT /api/users/{id}), so ${channel === "email" ? "e-mail" : "SMS"} has no address to go to`,
  no_email_address: () => "The user has no e-mail address in the directory",
  no_phone_number: () => "The user has no phone number in the directory",
  no_push_subscription: () => "The user has no browser push subscription",
};

/**
 * One warning per channel the delivery rules chose (`channels`) that cannot
 * reach the recipient: the notification is stored anyway, and the queue row
 * of that channel will fail.
 */
export function deliveryWarnings(channels: readonly AddressedChannel[], r: Recipient): DeliveryWarning[] {
  const warnings: DeliveryWarning[] = [];
  for (const channel of channels) {
    const code = undeliverableReason(channel, r);
    if (code) warnings.push({ code, channel, message: MESSAGES[code](channel) });
  }
  return warnings;
}
