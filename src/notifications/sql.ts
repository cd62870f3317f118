/**
 * Every statement the notification domain runs, in one place (pg-boss's
 * plans.ts habit). Whole notifications come back as NOTIFICATION_COLUMNS
 * selects them (src/db/schema.ts, beside the row type), so
 * `toNotificationDto` maps them.
 */
import { INSERT_QUEUE_ROWS, ON_QUEUE_CONFLICT } from "../channels/index.js";
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
  ${INSERT_QUEUE_ROWS}
  SELECT n.id, n.user_id, s.channel, 'pending', s.due, $20, s.payload::jsonb, $21, $21
    FROM unnest($16::uuid[], $17::text[], $18::timestamptz[], $19::text[]) AS s(notification_id, channel, due, payload)
    JOIN n ON n.id = s.notification_id
  ${ON_QUEUE_CONFLICT}
)
SELECT ${NOTIFICATION_COLUMNS} FROM n`;

/** The key's first use: what it created and with which content. */
export const SELECT_IDEMPOTENCY_KEY = `
SELECT notification_id AS "notificationId", request_hash AS "requestHash" FROM idempotency_keys WHERE user_id = $1 AND key = $2`;

/** Keys past their retention (the insert also takes an expired key afresh, so this only bounds the table). */
export const PURGE_IDEMPOTENCY_KEYS = `DELETE FROM idempotency_keys WHERE created_at < $1`;

export const SELECT_TIMEZONE = `SELECT timezone FROM users WHERE id = $1`;

/**
 * Read and archived state under the per-user watermarks (migrations 0012,
 * 0017): the row's `read`, or at or below the user's read_through_seq unless
 * marked unread since; the row's `archived`, or at or below
 * archived_through_seq unless marked unarchived since. The inbox selects
 * NOTIFICATION_COLUMNS with `read`, `archived` and `readAt` so computed
 * (notification_is_read / notification_is_archived / notification_read_at
 * over the unaliased `notifications`), so every reader of the inbox sees what
 * a read-all or an archive-all did.
 */
export const INBOX_COLUMNS = inboxColumns();

function inboxColumns(): string {
  const columns = NOTIFICATION_COLUMNS.replace(/\bread,/, "notification_is_read(notifications) AS read,")
    .replace(/\barchived,/, "notification_is_archived(notifications) AS archived,")
    .replace('read_at AS "readAt"', 'notification_read_at(notifications) AS "readAt"');
  if (!["notification_is_read", "notification_is_archived", "notification_read_at"].every((f) => columns.includes(f))) {
    throw new Error("NOTIFICATION_COLUMNS changed: INBOX_COLUMNS no longer finds read, archived and read_at");
  }
  return columns;
}

/** A user's watermark read inside the statement ($1 is the user), when the caller did not give its value. */
const watermarkOf = (column: "read_through_seq" | "archived_through_seq") => `COALESCE((SELECT ${column} FROM inbox_state WHERE user_id = $1), 0)`;

/** The user's watermarks, read beforehand (INBOX_COUNTS), so the planner weighs the seq ranges by its statistics. */
export interface Watermarks {
  read: number;
  archived: number;
}

export interface InboxFilter {
  read?: boolean | undefined;
  archived?: boolean | undefined;
  type?: string | undefined;
  /** Keyset cursor: only rows with a smaller seq. */
  before?: number | undefined;
}

/**
 * The WHERE clauses of an inbox read, one per branch, params from $2 on
 * (pushed onto `params`; $1 is the user). Every inbox read keeps to `in_app`
 * rows (delivery rule 4: what in-app off kept out of the app is not listed,
 * counted, pushed or synced). Unread is two disjoint ranges, so each can
 * walk an index in seq order without visiting what a read-all covered:
 * above the read watermark (notifications_inbox_unread_seq_idx when not
 * archived) and marked unread below it (notifications_marked_unread_idx).
 * Not archived is likewise two: above the archive watermark (where the
 * partial indexes with `archived = false` apply) and marked unarchived below
 * it (notifications_marked_unarchived_idx); after an archive-all the first
 * range is empty instead of a walk over every row it archived. The branches
 * are the product of the two splits, disjoint.
 */
function inboxBranches(filter: InboxFilter, params: unknown[], watermarks?: Watermarks): string[] {
  const common = ["user_id = $1", "in_app"];
  const watermark = (value: number | undefined, column: "read_through_seq" | "archived_through_seq"): string => {
    if (value === undefined) return watermarkOf(column);
    params.push(value);
    return `$${params.length}::bigint`;
  };
  if (filter.type !== undefined) {
    params.push(filter.type);
    common.push(`type = $${params.length}`);
  }
  if (filter.before !== undefined) {
    params.push(filter.before);
    common.push(`seq < $${params.length}`);
  }
  let readSplit: string[][] = [[]];
  if (filter.read !== undefined) {
    const r = watermark(watermarks?.read, "read_through_seq");
    readSplit = filter.read ? [[`(read OR (NOT marked_unread AND seq <= ${r}))`]] : [["read = false", `seq > ${r}`], ["marked_unread", "read = false", `seq <= ${r}`]];
  }
  let archivedSplit: string[][] = [[]];
  if (filter.archived !== undefined) {
    const a = watermark(watermarks?.archived, "archived_through_seq");
    archivedSplit = filter.archived
      ? [[`(archived OR (NOT marked_unarchived AND seq <= ${a}))`]]
      : [["archived = false", `seq > ${a}`], ["marked_unarchived", "archived = false", `seq <= ${a}`]];
  }
  return readSplit.flatMap((r) => archivedSplit.map((a) => [...common, ...r, ...a].join(" AND ")));
}

/**
 * The inbox page, newest first: `limit` rows (the caller asks one more to know
 * whether a next page exists) after `offset`, below the `before` cursor.
 * Offset costs what it skips; the cursor costs only the page.
 */
export function listStatement(userId: string, filter: InboxFilter, limit: number, offset: number, watermarks?: Watermarks): [string, unknown[]] {
  const params: unknown[] = [userId];
  const branches = inboxBranches(filter, params, watermarks);
  params.push(limit, offset);
  const [l, o] = [`$${params.length - 1}`, `$${params.length}`];
  if (branches.length === 1) {
    return [`SELECT ${INBOX_COLUMNS} FROM notifications WHERE ${branches[0]} ORDER BY seq DESC LIMIT ${l} OFFSET ${o}`, params];
  }
  const parts = branches.map((w) => `(SELECT ${INBOX_COLUMNS} FROM notifications WHERE ${w} ORDER BY seq DESC LIMIT ${l}::int + ${o}::int)`);
  return [`SELECT * FROM (${parts.join(" UNION ALL ")}) page ORDER BY seq DESC LIMIT ${l} OFFSET ${o}`, params];
}

/**
 * How many rows match `filter`, counting no further than `cap` (+1, to tell
 * "more than cap"). The newest first: the order makes the planner walk an
 * index range of the user (notifications_inbox_type_idx for a type) instead
 * of a sequential scan that stops after cap rows, which PGlite chose at 2M
 * rows and which reads the table through a small ring buffer, from the file
 * on every request.
 */
export function cappedCountStatement(userId: string, filter: InboxFilter, cap: number, watermarks?: Watermarks): [string, unknown[]] {
  const params: unknown[] = [userId];
  const branches = inboxBranches(filter, params, watermarks);
  params.push(cap + 1);
  const parts = branches.map((w) => `(SELECT 1 FROM notifications WHERE ${w} ORDER BY seq DESC LIMIT $${params.length})`);
  return [`SELECT count(*)::int AS total FROM (${parts.join(" UNION ALL ")}) matching`, params];
}

/** The user's counts and watermarks (migrations 0012, 0017; no row: an empty inbox). */
export const INBOX_COUNTS = `
SELECT read_through_seq AS "readThroughSeq", archived_through_seq AS "archivedThroughSeq", in_app_count AS "inApp", archived_count AS archived, unread_count AS unread, archived_unread_count AS "archivedUnread"
  FROM inbox_state WHERE user_id = $1`;

/** The badge: maintained, not counted. */
export const UNREAD_COUNT = `SELECT COALESCE((SELECT unread_count FROM inbox_state WHERE user_id = $1), 0)::int AS count`;

export const SELECT_OWN = `SELECT ${INBOX_COLUMNS} FROM notifications WHERE id = $1 AND user_id = $2`;

/**
 * Sets read and/or archived on one of the user's notifications ($3/$4 NULL =
 * leave), returning the new state and what it was before (both as the
 * watermarks make them), so events are recorded only for real transitions.
 * Marking unread at or below the read watermark sets marked_unread, which the
 * next read-all clears; unarchiving at or below the archive watermark sets
 * marked_unarchived, which the next archive-all clears. Scoped by user:
 * another user's id matches nothing.
 *
 * The watermarks that decide marked_unread / marked_unarchived (and whether
 * the row was archived) are read from the user's inbox_state row locked
 * after the notification (the order a read-all or archive-all takes them in,
 * so they cannot deadlock): a bulk change that committed after this
 * statement's snapshot (while it waited for the notification's lock) is seen,
 * and one still to come waits for this change. With the snapshot's watermark,
 * a notification marked unread just as a read-all moved past it was read.
 */
export const UPDATE_STATE = `
WITH old AS (
  SELECT id, seq, in_app, notification_is_read(n) AS read, archived, marked_unarchived
    FROM notifications n WHERE id = $1 AND user_id = $2 FOR UPDATE
), state AS (
  SELECT read_through_seq, read_all_at, archived_through_seq FROM inbox_state WHERE user_id = $2 AND EXISTS (SELECT 1 FROM old) FOR UPDATE
), was AS (
  SELECT old.*, old.archived OR (old.in_app AND NOT old.marked_unarchived AND old.seq <= COALESCE((SELECT archived_through_seq FROM state), 0)) AS was_archived
    FROM old
)
UPDATE notifications n
   SET read = COALESCE($3::boolean, n.read),
       marked_unread = CASE WHEN $3::boolean IS NULL THEN n.marked_unread
                            WHEN $3::boolean THEN false
                            ELSE n.in_app AND was.seq <= COALESCE((SELECT read_through_seq FROM state), 0) END,
       read_at = CASE WHEN $3::boolean IS NULL THEN n.read_at
                      WHEN $3::boolean AND NOT was.read THEN now()
                      WHEN $3::boolean THEN COALESCE(n.read_at, (SELECT read_all_at FROM state))
                      ELSE NULL END,
       archived = COALESCE($4::boolean, n.archived),
       marked_unarchived = CASE WHEN $4::boolean IS NULL THEN n.marked_unarchived
                                WHEN $4::boolean THEN false
                                ELSE n.in_app AND was.seq <= COALESCE((SELECT archived_through_seq FROM state), 0) END,
       updated_at = now()
  FROM was
 WHERE n.id = was.id
RETURNING was.read AS "wasRead", was.was_archived AS "wasArchived", COALESCE($3::boolean, was.read) AS read,
          COALESCE($4::boolean, was.was_archived) AS archived`;

/**
 * Mark all read, in constant time for any inbox size: clears what was marked
 * unread (few rows, by notifications_marked_unread_idx), then locks the
 * user's inbox_state row, so creations of the user that already counted
 * themselves have committed and the next statement sees them, then moves the
 * watermark to the user's newest seq. See Inbox.markAllRead.
 */
export const CLEAR_MARKED_UNREAD = `
UPDATE notifications SET read = true, marked_unread = false, read_at = now(), updated_at = now()
 WHERE user_id = $1 AND marked_unread AND read = false
RETURNING id, notification_is_archived(notifications) AS archived, in_app AS "inApp"`;

/**
 * Creates the user's inbox_state row if needed and locks it, in one statement
 * that always returns the row: ON CONFLICT DO UPDATE waits for a transaction
 * holding it (a creation counting itself, an erasure) and, if that deleted it,
 * inserts it anew. (An INSERT ... DO NOTHING followed by SELECT ... FOR UPDATE
 * found no row when an erasure deleted it in between.) The next statement has
 * a fresh snapshot: it sees every creation that counted itself.
 */
export const LOCK_INBOX_STATE = `INSERT INTO inbox_state (user_id) VALUES ($1) ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id RETURNING 1`;

/** Returns the counts before and the watermarks; what stays unread is what was marked unread meanwhile. */
export const MOVE_WATERMARK = `
WITH before AS (SELECT read_through_seq, unread_count, archived_unread_count FROM inbox_state WHERE user_id = $1),
kept AS (
  SELECT count(*) FILTER (WHERE NOT notification_is_archived(n)) AS unread, count(*) FILTER (WHERE notification_is_archived(n)) AS archived_unread
    FROM notifications n WHERE user_id = $1 AND marked_unread AND in_app AND read = false
)
UPDATE inbox_state s
   SET read_through_seq = GREATEST(s.read_through_seq, COALESCE((SELECT max(seq) FROM notifications WHERE user_id = $1), 0)),
       read_all_at = now(),
       unread_count = kept.unread,
       archived_unread_count = kept.archived_unread
  FROM before, kept
 WHERE s.user_id = $1
RETURNING before.read_through_seq AS "fromSeq", s.read_through_seq AS "throughSeq", s.archived_through_seq AS "archivedThroughSeq",
          before.unread_count + before.archived_unread_count - s.unread_count - s.archived_unread_count AS changed`;

/**
 * The newest of what a read-all covered and that is not archived, for the
 * devices (bounded: the count follows anyway). Two ranges, so neither walks
 * what an archive-all covered: above the archive watermark ($5), by
 * notifications_inbox_unread_seq_idx, and marked unarchived below it.
 */
export const NEWLY_READ = `
SELECT * FROM (
  (SELECT id, seq FROM notifications
    WHERE user_id = $1 AND in_app AND read = false AND archived = false AND seq > GREATEST($2::bigint, $5::bigint) AND seq <= $3
    ORDER BY seq DESC LIMIT $4)
  UNION ALL
  (SELECT id, seq FROM notifications
    WHERE user_id = $1 AND marked_unarchived AND in_app AND read = false AND archived = false AND seq > $2 AND seq <= LEAST($3::bigint, $5::bigint)
    ORDER BY seq DESC LIMIT $4)
) newly ORDER BY seq DESC LIMIT $4`;

/**
 * Archive all, in constant time for any inbox size, as mark all read: archives
 * what was marked unarchived (few rows, by
 * notifications_marked_unarchived_idx), then (after LOCK_INBOX_STATE) moves the
 * archive watermark to the user's newest seq. See Inbox.archiveAll.
 */
export const CLEAR_MARKED_UNARCHIVED = `
UPDATE notifications SET archived = true, marked_unarchived = false, updated_at = now()
 WHERE user_id = $1 AND marked_unarchived AND archived = false
RETURNING id, notification_is_read(notifications) AS read, in_app AS "inApp"`;

/**
 * Returns the archived count before and the watermarks. After it every in-app
 * row is archived but those marked unarchived meanwhile (a PATCH between the
 * clear and the lock): they, and their unread ones, are all the counts that
 * stay outside the archive; unread moves into archived_unread.
 */
export const MOVE_ARCHIVE_WATERMARK = `
WITH before AS (SELECT archived_through_seq, archived_count FROM inbox_state WHERE user_id = $1),
kept AS (
  SELECT count(*) AS rows, count(*) FILTER (WHERE NOT notification_is_read(n)) AS unread
    FROM notifications n WHERE user_id = $1 AND marked_unarchived AND in_app AND archived = false
)
UPDATE inbox_state s
   SET archived_through_seq = GREATEST(s.archived_through_seq, COALESCE((SELECT max(seq) FROM notifications WHERE user_id = $1), 0)),
       archived_all_at = now(),
       archived_count = s.in_app_count - kept.rows,
       unread_count = kept.unread,
       archived_unread_count = s.unread_count + s.archived_unread_count - kept.unread
  FROM before, kept
 WHERE s.user_id = $1
RETURNING before.archived_through_seq AS "fromSeq", s.archived_through_seq AS "throughSeq", s.archived_count - before.archived_count AS changed`;

/** The newest of what an archive-all covered, for the devices (bounded: the count follows anyway). */
export const NEWLY_ARCHIVED = `
SELECT id, notification_is_read(n) AS read FROM notifications n
 WHERE user_id = $1 AND in_app AND archived = false AND NOT marked_unarchived AND seq > $2 AND seq <= $3
 ORDER BY seq DESC LIMIT $4`;

/** Returns the state it had, so the devices hear the real one (issue 16.14). */
export const DELETE_OWN = `DELETE FROM notifications WHERE id = $1 AND user_id = $2
RETURNING id, notification_is_read(notifications) AS read, notification_is_archived(notifications) AS archived`;
