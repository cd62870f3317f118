/**
 * A broadcast's write, in one transaction: one set-based INSERT ... SELECT
 * over the user directory (a row per user who accepts the type, sharing one
 * broadcast_id, each with its in_app decision), then each recipient's delivery rules
 * decision from their saved preferences (decided once per distinct setting),
 * and their out-of-app sends, set-based too (src/channels broadcast-queue.ts).
 * The caller fans the committed rows out.
 */
import { randomUUID } from "node:crypto";
import { enqueueBroadcast } from "../channels/index.js";
import type { BroadcastSend } from "../channels/index.js";
import type { Database } from "../db/index.js";
import { DEFAULT_PREFERENCES, type DeliveryDecision, type DeliveryRuleOptions, type PreferenceFields, decideDelivery, isCritical, typeToggleOf } from "../preferences/index.js";
import { PREFERENCE_COLUMNS } from "../preferences/index.js";
import type { BroadcastBase, BroadcastRecipient } from "./publisher.js";
import { type NotificationContent, contentParams } from "./input.js";
import { BROADCAST_CREATED_AT, broadcastPreferences, broadcastStatement } from "./sql.js";
import type { Priority } from "./types.js";

/** Preferences that shape a recipient's decision (the type toggle is applied in SQL). */
const DECISION_FIELDS = [
  "inAppEnabled",
  "emailEnabled",
  "browserPushEnabled",
  "smsEnabled",
  "frequency",
  "emailImmediate",
  "emailDigestEnabled",
  "quietHoursEnabled",
  "quietHoursStart",
  "quietHoursEnd",
  "soundEnabled",
  "soundVolume",
  "desktopNotifications",
] as const;
type DecisionPreferences = Pick<PreferenceFields, (typeof DECISION_FIELDS)[number]> & { timezone: string };

export interface WrittenBroadcast {
  broadcastId: string;
  count: number;
  base: BroadcastBase | undefined;
  /** The recipients the in-app path delivers to, with their presentation. */
  recipients: BroadcastRecipient[];
}

export async function writeBroadcast(
  database: Database,
  n: NotificationContent,
  priority: Priority,
  now: Date,
  maxAttempts: number,
  rules: DeliveryRuleOptions = {},
): Promise<WrittenBroadcast> {
  const critical = isCritical({ type: n.type, priority });
  const toggle = critical ? undefined : typeToggleOf(n.type);
  const broadcastId = randomUUID();
  return database.transaction(async (tx) => {
    const rows = await tx.query<{ id: string; seq: string | number; userId: string }>(
      broadcastStatement(toggle ? PREFERENCE_COLUMNS[toggle] : null, critical),
      [...contentParams(n, priority), broadcastId],
    );
    if (rows.length === 0) return { broadcastId, count: 0, base: undefined, recipients: [] };
    const select = DECISION_FIELDS.map((f) => `p.${PREFERENCE_COLUMNS[f]} AS "${f}"`).join(", ");
    const saved = new Map((await tx.query<DecisionPreferences & { userId: string }>(broadcastPreferences(select))).map((r) => [r.userId, r]));

    const notification = { type: n.type, priority };
    // Users without saved preferences (most) take the defaults, which do not depend on the zone.
    const defaults = decideDelivery(notification, DEFAULT_PREFERENCES, "UTC", now, rules);
    const memo = new Map<string, DeliveryDecision>();
    const recipients: BroadcastRecipient[] = [];
    const sends: BroadcastSend[] = [];
    for (const r of rows) {
      const p = saved.get(r.userId);
      let d = defaults;
      if (p) {
        const key = `${DECISION_FIELDS.map((f) => p[f]).join("|")}|${p.timezone}`;
        d = memo.get(key) ?? decideDelivery(notification, { ...DEFAULT_PREFERENCES, ...p }, p.timezone, now, rules);
        memo.set(key, d);
      }
      if (d.inApp) recipients.push({ userId: r.userId, id: r.id, seq: Number(r.seq), presentation: d.presentation });
      sends.push({ id: r.id, userId: r.userId, decision: d });
    }
    await enqueueBroadcast(tx, sends, { now, maxAttempts });
    const [created] = await tx.query<{ createdAt: Date }>(BROADCAST_CREATED_AT, [rows[0]!.id]);
    return { broadcastId, count: rows.length, base: baseOf(n, priority, new Date(created!.createdAt).toISOString()), recipients };
  });
}

/** The fields every recipient's copy shares (the fan-out adds id, seq and userId). */
function baseOf(n: NotificationContent, priority: Priority, createdAt: string): BroadcastBase {
  return {
    type: n.type,
    priority,
    title: n.title,
    message: n.message,
    description: n.description ?? null,
    icon: n.icon ?? null,
    actionUrl: n.actionUrl ?? null,
    actionLabel: n.actionLabel ?? null,
    read: false,
    archived: false,
    deliveryStatus: "pending",
    sentAt: null,
    deliveredAt: null,
    readAt: null,
    relatedId: n.relatedId ?? null,
    data: n.data ?? null,
    createdAt,
    updatedAt: createdAt,
  };
}
