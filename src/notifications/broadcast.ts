/**
 * A broadcast's write, in one transaction and, for most recipients, one
 * statement:
 *
 * 1. The distinct settings of the directory's saved preferences (with each
 *    user's zone): the delivery rules decide once per setting (a class), in
 *    JavaScript, and the users without saved preferences form one more class
 *    (the defaults, which do not depend on the zone).
 * 2. One INSERT ... SELECT over the user directory (a row per user who
 *    accepts the type, sharing one broadcast_id, each with its in_app
 *    decision) that also writes, from the same rows, every recipient's
 *    single out-of-app sends (its class's template rows, joined in SQL:
 *    nothing per recipient crosses the wire on the way in), and returns only
 *    the recipients the caller still needs: those the in-app path pushes to,
 *    with their class (their presentation), and the few whose sends need
 *    more than a template (hourly bundles) or whose setting changed between
 *    (1) and (2) (decided here from their preferences read right after the write).
 * 3. Those few sends through `enqueueBroadcast` (src/channels/broadcast-queue.ts).
 *
 * The caller fans the committed rows out.
 */
import { randomUUID } from "node:crypto";
import { INSERT_QUEUE_ROWS, ON_QUEUE_CONFLICT, enqueueBroadcast, singleSendRows } from "../channels/index.js";
import type { BroadcastSend } from "../channels/index.js";
import type { Database, Queryable } from "../db/index.js";
import { DEFAULT_PREFERENCES, type DeliveryRuleOptions, type PreferenceFields, decideDelivery, isCritical, typeToggleOf } from "../preferences/index.js";
import { PREFERENCE_COLUMNS } from "../preferences/index.js";
import { lockDirectoryForRead } from "../users/index.js";
import type { BroadcastBase, BroadcastRecipient } from "./publisher.js";
import { type NotificationContent, contentParams } from "./input.js";
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

/** A setting's class key, the same text in both statements: the decision fields and the zone. */
const CLASS_KEY = `ROW(${DECISION_FIELDS.map((f) => `p.${PREFERENCE_COLUMNS[f]}`).join(", ")}, u.timezone)::text`;
/** The class of users without saved preferences. */
const DEFAULT_CLASS = "";
const PREFERENCE_SELECT = `u.timezone, ${DECISION_FIELDS.map((f) => `p.${PREFERENCE_COLUMNS[f]} AS "${f}"`).join(", ")}`;

export interface WrittenBroadcast {
  broadcastId: string;
  count: number;
  base: BroadcastBase | undefined;
  /** The recipients the in-app path delivers to, with their presentation. */
  recipients: BroadcastRecipient[];
}

interface Written {
  count: number;
  createdAt: Date | string;
  users: string[] | null;
  ids: string[] | null;
  seqs: (string | number)[] | null;
  /** 1-based class index, null for a recipient whose setting was not among the classes. */
  classes: (number | null)[] | null;
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
  const filter = toggle ? `WHERE COALESCE(p.${PREFERENCE_COLUMNS[toggle]}, true)` : "";
  const broadcastId = randomUUID();
  const notification = { type: n.type, priority };
  const decide = (p: DecisionPreferences | undefined) =>
    p ? decideDelivery(notification, { ...DEFAULT_PREFERENCES, ...p }, p.timezone, now, rules) : decideDelivery(notification, DEFAULT_PREFERENCES, "UTC", now, rules);

  return database.transaction(async (tx) => {
    // Before the directory is read: an erasure running now waits for this transaction, or this one for it.
    await lockDirectoryForRead(tx);
    // 1. One decision per class; its single sends become template rows.
    const saved = await tx.query<DecisionPreferences & { key: string }>(
      `SELECT DISTINCT ${CLASS_KEY} AS key, ${PREFERENCE_SELECT}
         FROM notification_preferences p JOIN users u ON u.id = p.user_id ${filter}`,
    );
    const keys = [DEFAULT_CLASS, ...saved.map((s) => s.key)];
    const decisions = [decide(undefined), ...saved.map((s) => decide(s))];
    const templates = { classes: [] as number[], channels: [] as string[], due: [] as Date[], payloads: [] as string[] };
    /** Classes whose recipients come back: pushed in-app, or with sends `enqueueBroadcast` writes. */
    const wanted: number[] = [];
    const perRecipient = new Set<number>();
    decisions.forEach((d, i) => {
      const rows = singleSendRows(d, now);
      if (rows) {
        for (let c = 0; c < rows.channels.length; c++) {
          templates.classes.push(i + 1);
          templates.channels.push(rows.channels[c]!);
          templates.due.push(rows.dueAt[c]!);
          templates.payloads.push(rows.payloads[c]!);
        }
      } else perRecipient.add(i + 1);
      if (d.inApp || !rows) wanted.push(i + 1);
    });

    // 2. The rows, their template sends, and the recipients still needed.
    const [written] = await tx.query<Written>(broadcastWrite(critical, filter), [
      ...contentParams(n, priority),
      broadcastId,
      keys,
      templates.classes,
      templates.channels,
      templates.due,
      templates.payloads,
      maxAttempts,
      now,
      wanted,
    ]);
    const count = written!.count;
    if (count === 0) return { broadcastId, count: 0, base: undefined, recipients: [] };

    // 3. Presentation per class; the sends of hourly classes and of recipients whose setting changed meanwhile.
    const users = written!.users ?? [];
    const ids = written!.ids ?? [];
    const seqs = written!.seqs ?? [];
    const classes = written!.classes ?? [];
    const recipients: BroadcastRecipient[] = [];
    const sends: BroadcastSend[] = [];
    const changed: number[] = [];
    for (let i = 0; i < users.length; i++) {
      const c = classes[i];
      if (c == null) {
        changed.push(i);
        continue;
      }
      const d = decisions[c - 1]!;
      if (d.inApp) recipients.push({ userId: users[i]!, id: ids[i]!, seq: Number(seqs[i]), presentation: d.presentation });
      if (perRecipient.has(c)) sends.push({ id: ids[i]!, userId: users[i]!, decision: d });
    }
    if (changed.length > 0) {
      const current = await preferencesOf(tx, changed.map((i) => users[i]!));
      for (const i of changed) {
        const d = decide(current.get(users[i]!));
        if (d.inApp) recipients.push({ userId: users[i]!, id: ids[i]!, seq: Number(seqs[i]), presentation: d.presentation });
        sends.push({ id: ids[i]!, userId: users[i]!, decision: d });
      }
    }
    if (sends.length > 0) await enqueueBroadcast(tx, sends, { now, maxAttempts });
    return { broadcastId, count, base: baseOf(n, priority, new Date(written!.createdAt).toISOString()), recipients };
  });
}

/**
 * The broadcast statement. $1..$10 the content, $11 the broadcast id, $12 the
 * class keys (1-based, the first the default class), $13..$16 the template
 * sends (class, channel, due, payload), $17 max attempts, $18 the caller's
 * now, $19 the classes whose recipients are returned. The rows' id is drawn
 * before the INSERT so the queue rows can name it; created_at is the
 * column's default, the transaction's time, returned once as now().
 * `filter` is built from a fixed whitelist, never from input.
 */
function broadcastWrite(critical: boolean, filter: string): string {
  const inApp = critical ? "true" : "COALESCE(p.in_app_enabled, true)";
  return `
WITH cls AS (
  SELECT c.key, c.idx::int AS idx FROM unnest($12::text[]) WITH ORDINALITY AS c(key, idx)
), r AS MATERIALIZED (
  SELECT gen_random_uuid() AS id, u.id AS user_id, ${inApp} AS in_app, c.idx
    FROM users u
    LEFT JOIN notification_preferences p ON p.user_id = u.id
    LEFT JOIN cls c ON c.key = CASE WHEN p.user_id IS NULL THEN '${DEFAULT_CLASS}' ELSE ${CLASS_KEY} END
  ${filter}
), ins AS (
  INSERT INTO notifications (id, user_id, type, priority, title, message, description, icon, action_url, action_label,
                             related_id, data, broadcast_id, in_app)
  SELECT r.id, r.user_id, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11::uuid, r.in_app FROM r
  RETURNING id, seq
), queued AS (
  ${INSERT_QUEUE_ROWS}
  SELECT r.id, r.user_id, s.channel, 'pending', s.due, $17, s.payload, $18, $18
    FROM unnest($13::int[], $14::text[], $15::timestamptz[], $16::jsonb[]) AS s(idx, channel, due, payload)
    JOIN r ON r.idx = s.idx
  ${ON_QUEUE_CONFLICT}
)
SELECT (SELECT count(*)::int FROM r) AS count, now() AS "createdAt",
       array_agg(r.user_id) AS users, array_agg(ins.id::text) AS ids, array_agg(ins.seq) AS seqs, array_agg(r.idx) AS classes
  FROM ins JOIN r ON r.id = ins.id
 WHERE r.idx IS NULL OR r.idx = ANY($19::int[])`;
}

/** The decision fields of `userIds` who have saved preferences (the others take the defaults). */
async function preferencesOf(tx: Queryable, userIds: string[]): Promise<Map<string, DecisionPreferences>> {
  const rows = await tx.query<DecisionPreferences & { userId: string }>(
    `SELECT p.user_id AS "userId", ${PREFERENCE_SELECT} FROM notification_preferences p JOIN users u ON u.id = p.user_id WHERE p.user_id = ANY($1::text[])`,
    [userIds],
  );
  return new Map(rows.map((r) => [r.userId, r]));
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
