/**
 * Every statement the notification domain runs, in one place (pg-boss's
 * plans.ts habit). Whole notifications come back as NOTIFICATION_COLUMNS
 * selects them (src/db/schema.ts, beside the row type), so
 * `toNotificationDto` maps them.
 */
import { NOTIFICATION_COLUMNS } from "../db/index.js";

/**
 * Creates notifications (one, or many in one statement: group commit,
 * group-insert.ts), their idempotency keys and their single out-of-app sends,
 * atomically. $1..$15 are parallel arrays (id, then user_id ... idempotency_key,
 * in_app, request_hash); $16..$19 the sends as parallel arrays keyed by
 * notification id; $20 the attempt limit, $21 now, $22 the key cutoff (a key
 * first used before it has expired and is taken afresh).
 *
 * A row whose (user, key) is already taken, by an earlier call, a concurrent
 * one or an earlier row of the same batch (the first in arrival order wins),
 * is skipped and missing from the result, like its sends: the caller then
 * answers from the key (idempotency.ts). Rows are inserted in arrival order
 * (seq follows it).
 */
export const INSERT_NOTIFICATIONS = `
WITH i AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                       $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::boolean[], $15::text[])
       WITH ORDINALITY AS i(id, user_id, type, priority, title, message, description, icon, action_url, action_label,
                            related_id, data, idempotency_key, in_app, request_hash, ord)
), k AS (
  INSERT INTO idempotency_keys AS ik (user_id, key, notification_id, request_hash, created_at)
  SELECT DISTINCT ON (user_id, idempotency_key) user_id, idempotency_key, id, request_hash, $21
    FROM i WHERE idempotency_key IS NOT NULL
   ORDER BY user_id, idempotency_key, ord
  ON CONFLICT (user_id, key) DO UPDATE
     SET notification_id = EXCLUDED.notification_id, request_hash = EXCLUDED.request_hash, created_at = EXCLUDED.created_at
   WHERE ik.created_at < $22
  RETURNING notification_id
), n AS (
  INSERT INTO notifications (id, user_id, type, priority, title, message, description, icon, action_url, action_label,
                             related_id, data, idempotency_key, in_app)
  SELECT id, user_id, type, priority, title, message, description, icon, action_url, action_label,
         related_id, data::jsonb, idempotency_key, in_app
    FROM i
   WHERE idempotency_key IS NULL OR id IN (SELECT notification_id FROM k)
   ORDER BY ord
  RETURNING *
), q AS (
  INSERT INTO notification_queue (notification_id, user_id, channel, status, next_retry_at, max_attempts, payload, created_at, updated_at)
  SELECT n.id, n.user_id, s.channel, 'pending', s.due, $20, s.payload::jsonb, $21, $21
    FROM unnest($16::uuid[], $17::text[], $18::timestamptz[], $19::text[]) AS s(notification_id, channel, due, payload)
    JOIN n ON n.id = s.notification_id
  ON CONFLICT (notification_id, channel) DO NOTHING
)
SELECT ${NOTIFICATION_COLUMNS} FROM n`;

/** The key's first use: what it created and with which content. */
export const SELECT_IDEMPOTENCY_KEY = `
SELECT notification_id AS "notificationId", request_hash AS "requestHash" FROM idempotency_keys WHERE user_id = $1 AND key = $2`;

/** Keys past their retention (the insert also takes an expired key afresh, so this only bounds the table). */
export const PURGE_IDEMPOTENCY_KEYS = `DELETE FROM idempotency_keys WHERE created_at < $1`;

/**
 * Broadcast: one set-based INSERT ... SELECT over the directory (no per-user
 * round trip), skipping users who switched the type off (`toggleColumn`, or
 * null for a critical notification or a custom type), and storing each
 * user's in-app decision (in_app: their inAppEnabled, or always for
 * `critical`). Returns only what the fan-out needs per recipient, so 100,000
 * rows cross the wire cheaply. `toggleColumn` comes from a fixed whitelist,
 * never from input.
 */
export function broadcastStatement(toggleColumn: string | null, critical = false): string {
  const filter = toggleColumn ? `WHERE COALESCE(p.${toggleColumn}, true)` : "";
  const inApp = critical ? "true" : "COALESCE(p.in_app_enabled, true)";
  return `
INSERT INTO notifications (user_id, type, priority, title, message, description, icon, action_url, action_label,
                           related_id, data, broadcast_id, in_app)
SELECT u.id, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11::uuid, ${inApp}
  FROM users u LEFT JOIN notification_preferences p ON p.user_id = u.id ${filter}
RETURNING id, seq, user_id AS "userId", created_at AS "createdAt"`;
}

/**
 * The presentation-shaping preferences of every user in the directory who
 * saved any (usually a minority): one query after a broadcast; the others
 * take the defaults.
 */
export function broadcastPreferences(preferenceSelect: string): string {
  return `SELECT p.user_id AS "userId", u.timezone, ${preferenceSelect}
  FROM notification_preferences p JOIN users u ON u.id = p.user_id`;
}

export const SELECT_TIMEZONE = `SELECT timezone FROM users WHERE id = $1`;

/**
 * The inbox page: filters are optional ($2 read, $3 archived, $4 type; NULL =
 * any). Every inbox read keeps to `in_app` rows (delivery rule 4: what in-app off
 * kept out of the app is not listed, counted, pushed or synced).
 */
export const LIST_NOTIFICATIONS = `
SELECT ${NOTIFICATION_COLUMNS} FROM notifications
 WHERE user_id = $1 AND in_app
   AND ($2::boolean IS NULL OR read = $2)
   AND ($3::boolean IS NULL OR archived = $3)
   AND ($4::text IS NULL OR type = $4)
 ORDER BY seq DESC
 LIMIT $5 OFFSET $6`;

export const COUNT_NOTIFICATIONS = `
SELECT count(*)::int AS total FROM notifications
 WHERE user_id = $1 AND in_app
   AND ($2::boolean IS NULL OR read = $2)
   AND ($3::boolean IS NULL OR archived = $3)
   AND ($4::text IS NULL OR type = $4)`;

/** Matches the partial index notifications_inbox_unread_idx. */
export const UNREAD_COUNT = `SELECT count(*)::int AS count FROM notifications WHERE user_id = $1 AND in_app AND read = false AND archived = false`;

export const SELECT_OWN = `SELECT ${NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1 AND user_id = $2`;

/**
 * Sets read and/or archived on one of the user's notifications ($3/$4 NULL =
 * leave), returning the new row and what it was before, so events are
 * recorded only for real transitions. Scoped by user: another user's id
 * matches nothing.
 */
export const UPDATE_STATE = `
WITH old AS (SELECT id, read, archived FROM notifications WHERE id = $1 AND user_id = $2 FOR UPDATE)
UPDATE notifications n
   SET read = COALESCE($3::boolean, n.read),
       read_at = CASE WHEN $3::boolean IS NULL THEN n.read_at
                      WHEN $3::boolean AND NOT n.read THEN now()
                      WHEN NOT $3::boolean THEN NULL
                      ELSE n.read_at END,
       archived = COALESCE($4::boolean, n.archived),
       updated_at = now()
  FROM old
 WHERE n.id = old.id
RETURNING old.read AS "wasRead", old.archived AS "wasArchived", n.read, n.archived`;

export const MARK_ALL_READ = `
UPDATE notifications SET read = true, read_at = now(), updated_at = now()
 WHERE user_id = $1 AND in_app AND read = false
RETURNING id, archived`;

/** Returns the state it had, so the devices hear the real one (issue 16.14). */
export const DELETE_OWN = `DELETE FROM notifications WHERE id = $1 AND user_id = $2 RETURNING id, read, archived`;
