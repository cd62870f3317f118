/**
 * Every statement the notification domain runs, in one place (pg-boss's
 * plans.ts habit). Rows come back with the Drizzle row's camelCase names so
 * `toNotificationDto` maps them.
 */
export const NOTIFICATION_COLUMNS = `id, seq, user_id AS "userId", type, priority, title, message, description, icon,
  action_url AS "actionUrl", action_label AS "actionLabel", read, archived, delivery_status AS "deliveryStatus",
  sent_at AS "sentAt", delivered_at AS "deliveredAt", read_at AS "readAt", related_id AS "relatedId", data,
  idempotency_key AS "idempotencyKey", broadcast_id AS "broadcastId", created_at AS "createdAt", updated_at AS "updatedAt"`;

/**
 * One notification. With an idempotency key already used by this user,
 * nothing is written: the caller then reads the existing row. Its out-of-app
 * queue rows are written by src/channels in the same transaction.
 */
export const INSERT_NOTIFICATION = `
INSERT INTO notifications (user_id, type, priority, title, message, description, icon, action_url, action_label,
                           related_id, data, idempotency_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::jsonb, $12)
ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING ${NOTIFICATION_COLUMNS}`;

/**
 * The same insert plus its single out-of-app sends (src/channels
 * `singleSendRows`) in one statement: the common case costs one round trip
 * and stays atomic. $13..$15 are parallel arrays (channel, due, payload),
 * $16 the attempt limit, $17 now.
 */
export const INSERT_NOTIFICATION_WITH_SENDS = `
WITH n AS (
  INSERT INTO notifications (user_id, type, priority, title, message, description, icon, action_url, action_label,
                             related_id, data, idempotency_key)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::jsonb, $12)
  ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING *
), q AS (
  INSERT INTO notification_queue (notification_id, user_id, channel, status, next_retry_at, max_attempts, payload, created_at, updated_at)
  SELECT n.id, n.user_id, s.channel, 'pending', s.due, $16, s.payload::jsonb, $17, $17
    FROM n, unnest($13::text[], $14::timestamptz[], $15::text[]) AS s(channel, due, payload)
  ON CONFLICT (notification_id, channel) DO NOTHING
)
SELECT ${NOTIFICATION_COLUMNS} FROM n`;

/**
 * Many single creations in one statement (group commit, group-insert.ts):
 * $1..$13 are parallel arrays (id, then the INSERT_NOTIFICATION columns),
 * $14..$17 the out-of-app sends as parallel arrays keyed by notification id,
 * $18 the attempt limit, $19 now. Rows are inserted in arrival order (seq
 * follows it); a row whose idempotency key is taken is skipped and missing
 * from the result, like its sends.
 */
export const INSERT_NOTIFICATION_BATCH = `
WITH n AS (
  INSERT INTO notifications (id, user_id, type, priority, title, message, description, icon, action_url, action_label,
                             related_id, data, idempotency_key)
  SELECT id, user_id, type, priority, title, message, description, icon, action_url, action_label,
         related_id, data::jsonb, idempotency_key
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
         WITH ORDINALITY AS i(id, user_id, type, priority, title, message, description, icon, action_url, action_label,
                              related_id, data, idempotency_key, ord)
   ORDER BY ord
  ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING *
), q AS (
  INSERT INTO notification_queue (notification_id, user_id, channel, status, next_retry_at, max_attempts, payload, created_at, updated_at)
  SELECT n.id, n.user_id, s.channel, 'pending', s.due, $18, s.payload::jsonb, $19, $19
    FROM unnest($14::uuid[], $15::text[], $16::timestamptz[], $17::text[]) AS s(notification_id, channel, due, payload)
    JOIN n ON n.id = s.notification_id
  ON CONFLICT (notification_id, channel) DO NOTHING
)
SELECT ${NOTIFICATION_COLUMNS} FROM n`;

export const SELECT_BY_IDEMPOTENCY_KEY = `SELECT ${NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = $1 AND idempotency_key = $2`;

/**
 * Broadcast: one set-based INSERT ... SELECT over the directory (no per-user
 * round trip), skipping users who switched the type off (`toggleColumn`, or
 * null for a critical notification or a custom type). Returns only what the
 * fan-out needs per recipient, so 100,000 rows cross the wire cheaply.
 * `toggleColumn` comes from a fixed whitelist, never from input.
 */
export function broadcastStatement(toggleColumn: string | null): string {
  const filter = toggleColumn ? `LEFT JOIN notification_preferences p ON p.user_id = u.id WHERE COALESCE(p.${toggleColumn}, true)` : "";
  return `
INSERT INTO notifications (user_id, type, priority, title, message, description, icon, action_url, action_label,
                           related_id, data, broadcast_id)
SELECT u.id, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11::uuid
  FROM users u ${filter}
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

/** The inbox page: filters are optional ($2 read, $3 archived, $4 type; NULL = any). */
export const LIST_NOTIFICATIONS = `
SELECT ${NOTIFICATION_COLUMNS} FROM notifications
 WHERE user_id = $1
   AND ($2::boolean IS NULL OR read = $2)
   AND ($3::boolean IS NULL OR archived = $3)
   AND ($4::text IS NULL OR type = $4)
 ORDER BY seq DESC
 LIMIT $5 OFFSET $6`;

export const COUNT_NOTIFICATIONS = `
SELECT count(*)::int AS total FROM notifications
 WHERE user_id = $1
   AND ($2::boolean IS NULL OR read = $2)
   AND ($3::boolean IS NULL OR archived = $3)
   AND ($4::text IS NULL OR type = $4)`;

/** Matches the partial index notifications_unread_idx. */
export const UNREAD_COUNT = `SELECT count(*)::int AS count FROM notifications WHERE user_id = $1 AND read = false AND archived = false`;

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
 WHERE user_id = $1 AND read = false
RETURNING id, archived`;

export const DELETE_OWN = `DELETE FROM notifications WHERE id = $1 AND user_id = $2 RETURNING id`;
