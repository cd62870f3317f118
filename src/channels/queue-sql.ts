/**
 * Every statement the delivery queue runs, in one place (pg-boss's plans.ts).
 * Row states: `held` (member of an hourly bundle, sent by its bundle row),
 * `pending` (due at next_retry_at), `processing` (claimed, leased until
 * locked_until), `sent`, `failed` (gave up; last_error says why) and
 * `cancelled` (the notification was deleted, read or archived before it went
 * out, or the user's current preferences no longer want the send).
 */
import type { Queryable } from "../db/index.js";
import { PREFERENCE_SELECT, rowToPreferences } from "../preferences/index.js";
import type { PreferenceFields } from "../preferences/index.js";
import type { ChannelNotification, OutOfAppChannelName } from "./channel.js";
import type { QueuePayload } from "./router.js";

/**
 * The head of every statement that writes queue rows (one row, the unnest of
 * a batch, a broadcast's INSERT ... SELECT) and its conflict clause: a
 * notification has at most one row per channel, so a retried write adds
 * nothing. Callers supply the rows in this column order.
 */
export const INSERT_QUEUE_ROWS =
  "INSERT INTO notification_queue (notification_id, user_id, channel, status, next_retry_at, max_attempts, payload, created_at, updated_at)";
export const ON_QUEUE_CONFLICT = "ON CONFLICT (notification_id, channel) DO NOTHING";

/** One queue row, created and updated at `now`. */
export async function insertQueueRow(
  db: Queryable,
  row: {
    notificationId: string;
    userId: string;
    channel: OutOfAppChannelName;
    status: "pending" | "held";
    dueAt: Date;
    maxAttempts: number;
    payload: QueuePayload;
    now: Date;
  },
): Promise<void> {
  await db.query(`${INSERT_QUEUE_ROWS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ${ON_QUEUE_CONFLICT}`, [
    row.notificationId,
    row.userId,
    row.channel,
    row.status,
    row.dueAt,
    row.maxAttempts,
    JSON.stringify(row.payload),
    row.now,
  ]);
}

export interface ClaimedRow {
  id: string;
  notificationId: string;
  userId: string;
  channel: OutOfAppChannelName;
  attempts: number;
  maxAttempts: number;
  payload: QueuePayload | null;
  /**
   * The claim's lease end. With locked_by it names the claim: a row whose
   * lease ran out and that was claimed again, by another worker or by the
   * same one, has another, so the first claim's retry or give-up writes
   * nothing (its success still counts: markSent). Set from the worker's
   * clock (claimDue's $3), never the database's now(), so it compares exactly.
   */
  lockedUntil: Date;
}

const claimedColumns = `id, notification_id AS "notificationId", user_id AS "userId", channel, attempts,
  max_attempts AS "maxAttempts", payload, locked_until AS "lockedUntil"`;

/**
 * Claims up to `limit` due rows for `workerId`: pending rows whose time has
 * come, and processing rows whose lease expired (their worker died). SKIP
 * LOCKED lets several workers on several instances claim side by side
 * without waiting for, or ever sharing, a row. The attempt is counted at
 * claim time so a row that keeps crashing its worker still reaches the limit.
 */
export async function claimDue(db: Queryable, workerId: string, now: Date, leaseMs: number, limit: number): Promise<ClaimedRow[]> {
  return db.query<ClaimedRow>(
    `UPDATE notification_queue
        SET status = 'processing', attempts = attempts + 1, locked_by = $2, locked_until = $3, updated_at = $1
      WHERE id IN (
        SELECT id FROM notification_queue
         WHERE (status = 'pending' AND next_retry_at <= $1)
            OR (status = 'processing' AND locked_until < $1)
         ORDER BY next_retry_at
         FOR UPDATE SKIP LOCKED
         LIMIT $4)
      RETURNING ${claimedColumns}`,
    [now, workerId, new Date(now.getTime() + leaseMs), limit],
  );
}

/** The held members of a bundle row, oldest first. */
export async function bundleMembers(db: Queryable, bundle: ClaimedRow): Promise<{ id: string; notificationId: string; payload: QueuePayload }[]> {
  return db.query(
    `SELECT id, notification_id AS "notificationId", payload FROM notification_queue
      WHERE user_id = $1 AND channel = $2 AND status = 'held' AND payload->>'bundleId' = $3
      ORDER BY created_at, id`,
    [bundle.userId, bundle.channel, bundle.id],
  );
}

/** A success to record: the row, its channel progress, its bundle's members, the notifications it reached. */
export interface SentMark {
  id: string;
  payload: QueuePayload | null;
  memberIds: string[];
  notificationIds: string[];
}

/**
 * Records successes in one statement: each row, the members of its bundle,
 * and its notifications: pending (nothing delivered them yet, e.g. the user
 * was offline) or marked failed by an earlier give-up move to `sent`
 * (delivery rule 5). The notifications are locked in id order, so two
 * workers marking overlapping sets wait for each other instead of
 * deadlocking. Returns the ids of the rows recorded.
 *
 * A success is recorded whichever claim holds the row: a send that outlasted
 * its lease counts even though the row was claimed again and is being sent
 * once more (the provider took the first; the later claim's outcome then
 * writes nothing, so the row does not go a third time), and it turns a row
 * a later claim gave up or cancelled, with the members it carried, into
 * `sent`: the message went. A row a later claim already sent, or put back to
 * pending, is left as it is: a pending bundle may have taken new members
 * that this send did not carry, and they must go with the next one. Retries
 * and give-ups are written only by the claim that holds the row (markRetry,
 * markFinal).
 */
export async function markSent(db: Queryable, now: Date, marks: SentMark[]): Promise<Set<string>> {
  const owned = (pick: (m: SentMark) => string[]) => {
    const ids: string[] = [];
    const owners: string[] = [];
    for (const m of marks) {
      for (const id of pick(m)) {
        ids.push(id);
        owners.push(m.id);
      }
    }
    return [ids, owners];
  };
  const rows = await db.query<{ id: string }>(
    `WITH row AS (
       UPDATE notification_queue q
          SET status = 'sent', sent_at = $2, last_error = NULL, locked_by = NULL, locked_until = NULL, payload = m.payload, updated_at = $2
         FROM unnest($1::uuid[], $3::jsonb[]) AS m(id, payload)
        WHERE q.id = m.id AND q.status IN ('processing', 'failed', 'cancelled')
        RETURNING q.id
     ), members AS (
       UPDATE notification_queue SET status = 'sent', sent_at = $2, last_error = NULL, updated_at = $2
        WHERE id IN (SELECT o.id FROM unnest($4::uuid[], $5::uuid[]) AS o(id, owner) JOIN row ON row.id = o.owner)
          AND status IN ('held', 'failed', 'cancelled')
     ), reached AS (
       UPDATE notifications n SET delivery_status = 'sent', sent_at = COALESCE(n.sent_at, $2), updated_at = $2
         FROM (SELECT x.id FROM notifications x
                WHERE x.id IN (SELECT o.id FROM unnest($6::uuid[], $7::uuid[]) AS o(id, owner) JOIN row ON row.id = o.owner)
                  AND x.delivery_status IN ('pending', 'failed')
                ORDER BY x.id FOR UPDATE) l
        WHERE n.id = l.id
     )
     SELECT id FROM row`,
    [
      marks.map((m) => m.id),
      now,
      marks.map((m) => (m.payload === null ? null : JSON.stringify(m.payload))),
      ...owned((m) => m.memberIds),
      ...owned((m) => m.notificationIds),
    ],
  );
  return new Set(rows.map((r) => r.id));
}

/**
 * Back to `pending` at `nextAt`, keeping the error and the channel's progress;
 * `uncounted`: nothing was attempted (deferred), so the claim's attempt is given back.
 * Like every outcome, written only while the row's claim holds it; false when it no longer does.
 */
export async function markRetry(
  db: Queryable,
  row: ClaimedRow,
  workerId: string,
  now: Date,
  nextAt: Date,
  error: string,
  memberIds: string[],
  uncounted = false,
): Promise<boolean> {
  const rows = await db.query(
    `UPDATE notification_queue
        SET status = 'pending', next_retry_at = $3, last_error = $4, locked_by = NULL, locked_until = NULL, payload = $5, updated_at = $6,
            attempts = CASE WHEN $7::boolean THEN greatest(attempts - 1, 0) ELSE attempts END
      WHERE id = $1 AND locked_by = $2 AND locked_until = $8 AND status = 'processing'
      RETURNING id`,
    [row.id, workerId, nextAt, error, row.payload === null ? null : JSON.stringify(row.payload), now, uncounted, row.lockedUntil],
  );
  if (rows.length > 0 && memberIds.length > 0) {
    await db.query(
      `UPDATE notification_queue SET attempts = $2, last_error = $3, next_retry_at = $4, updated_at = $5
        WHERE id = ANY($1::uuid[]) AND status = 'held'`,
      [memberIds, row.attempts, error, nextAt, now],
    );
  }
  return rows.length > 0;
}

/** Gives up: `failed` (or `cancelled`) with the reason; members of a bundle share its fate. False when the claim no longer holds the row. */
export async function markFinal(
  db: Queryable,
  row: ClaimedRow,
  workerId: string,
  now: Date,
  status: "failed" | "cancelled",
  error: string,
  memberIds: string[],
): Promise<boolean> {
  const rows = await db.query(
    `UPDATE notification_queue
        SET status = $3, last_error = $4, locked_by = NULL, locked_until = NULL, payload = $5, updated_at = $6
      WHERE id = $1 AND locked_by = $2 AND locked_until = $7 AND status = 'processing'
      RETURNING id`,
    [row.id, workerId, status, error, row.payload === null ? null : JSON.stringify(row.payload), now, row.lockedUntil],
  );
  if (rows.length > 0 && memberIds.length > 0) {
    await db.query(
      `UPDATE notification_queue SET status = $2, attempts = $3, last_error = $4, updated_at = $5
        WHERE id = ANY($1::uuid[]) AND status = 'held'`,
      [memberIds, status, row.attempts, error, now],
    );
  }
  return rows.length > 0;
}

/**
 * A notification whose every out-of-app send gave up, that the in-app path
 * does not carry (in-app off) and that nothing delivered, is `failed`. A
 * notification the in-app path carries stays pending/sent: the inbox and the
 * sync on reconnect still deliver it, and `failed` would hide it from sync.
 */
export async function markNotificationsFailed(db: Queryable, notificationIds: string[], now: Date): Promise<void> {
  if (notificationIds.length === 0) return;
  await db.query(
    `UPDATE notifications n SET delivery_status = 'failed', updated_at = $2
       FROM (SELECT x.id FROM notifications x WHERE x.id = ANY($1::uuid[]) AND x.delivery_status = 'pending' ORDER BY x.id FOR UPDATE) l
      WHERE n.id = l.id AND n.delivery_status = 'pending'
        AND NOT EXISTS (SELECT 1 FROM notification_queue q
                         WHERE q.notification_id = n.id AND q.status IN ('sent', 'pending', 'processing', 'held'))`,
    [notificationIds, now],
  );
}

/**
 * The notification fields a channel renders (one definition, in channel.ts), plus what the release check reads
 * (`delivered`: a device acknowledged it).
 */
export type NotificationContent = ChannelNotification & { read: boolean; archived: boolean; delivered: boolean };

export async function loadNotifications(db: Queryable, ids: string[]): Promise<NotificationContent[]> {
  return db.query<NotificationContent>(
    `SELECT id, type, priority, title, message, description, icon, action_url AS "actionUrl",
            action_label AS "actionLabel", created_at AS "createdAt", notification_is_read(notifications) AS read,
            notification_is_archived(notifications) AS archived,
            delivery_status = 'delivered' AS delivered
       FROM notifications WHERE id = ANY($1::uuid[]) ORDER BY seq`,
    [ids],
  );
}

/** Held members of a bundle that are not sent with it (read, archived, switched off meanwhile). */
export async function cancelMembers(db: Queryable, memberIds: string[], reason: string, now: Date): Promise<void> {
  if (memberIds.length === 0) return;
  await db.query(
    `UPDATE notification_queue SET status = 'cancelled', last_error = $2, updated_at = $3 WHERE id = ANY($1::uuid[]) AND status = 'held'`,
    [memberIds, reason, now],
  );
}

/**
 * The current preferences and time zone of those users who stored any, read at
 * release and never cached. A user without a row had the defaults when the
 * send was queued and still has them: nothing to re-check.
 */
export async function loadPreferences(db: Queryable, userIds: string[]): Promise<Map<string, { prefs: PreferenceFields; timeZone: string }>> {
  const rows = await db.query<PreferenceFields & { userId: string; updatedAt: Date | null; timeZone: string | null }>(
    `SELECT p.user_id AS "userId", u.timezone AS "timeZone", p.updated_at AS "updatedAt", ${PREFERENCE_SELECT}
       FROM notification_preferences p LEFT JOIN users u ON u.id = p.user_id
      WHERE p.user_id = ANY($1::text[])`,
    [userIds],
  );
  return new Map(rows.map((r) => [r.userId, { prefs: rowToPreferences(r), timeZone: r.timeZone ?? "UTC" }]));
}

export interface Recipient {
  userId: string;
  email: string | null;
  phone: string | null;
  name: string | null;
  locale: string;
}

/** Contacts of the given users from the directory; users not in it get empty contacts. */
export async function loadRecipients(db: Queryable, userIds: string[]): Promise<Map<string, Recipient>> {
  const rows = await db.query<Recipient>(
    `SELECT id AS "userId", email, phone, name, locale FROM users WHERE id = ANY($1::text[])`,
    [userIds],
  );
  const out = new Map(rows.map((r) => [r.userId, r]));
  for (const userId of userIds) if (!out.has(userId)) out.set(userId, { userId, email: null, phone: null, name: null, locale: "en" });
  return out;
}

export async function queueDepth(db: Queryable): Promise<{ status: string; count: number }[]> {
  const rows = await db.query<{ status: string; count: string | number }>(
    "SELECT status, count(*) AS count FROM notification_queue WHERE status IN ('held', 'pending', 'processing') GROUP BY status",
  );
  return rows.map((r) => ({ status: r.status, count: Number(r.count) }));
}
