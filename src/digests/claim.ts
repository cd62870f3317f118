/**
 * Every SQL statement of the digest pipeline, in one place. Times come from
 * the injected clock (passed as parameters), never from the database's now(),
 * so a test clock drives the whole pipeline.
 *
 * The exactly-once rule lives in the database: a digest is the unique row
 * (user_id, frequency, scheduled_for) WHERE NOT is_test, inserted with
 * ON CONFLICT DO NOTHING; sending is guarded by a lease (lease_until,
 * leased_by) taken with FOR UPDATE SKIP LOCKED, so several instances share
 * the work and a crashed holder's row is picked up when its lease expires.
 */
import type { Database, Queryable } from "../db/index.js";
import { lockDirectoryForRead } from "../users/index.js";
import type { DigestFrequency } from "./schedule.js";

/** Users who get digests: enabled (default true) and with an address, by zone and frequency. */
export async function digestAudience(db: Queryable): Promise<{ timezone: string; frequency: string }[]> {
  return db.query(
    `SELECT DISTINCT u.timezone, coalesce(p.email_digest_frequency, 'daily') AS frequency
       FROM users u
       LEFT JOIN notification_preferences p ON p.user_id = u.id
      WHERE coalesce(p.email_digest_enabled, true)
        AND u.email IS NOT NULL AND u.email <> ''`,
  );
}

export interface ClaimGroup {
  timezone: string;
  frequency: DigestFrequency;
  windowStart: Date;
  scheduledFor: Date;
}

/**
 * Where a user's digest content starts: the latest earlier digest of ANY
 * frequency that was (or is being) sent, so switching between hourly and
 * daily neither drops nor repeats a notification; with none, the beginning
 * (a new user, or one whose scheduler was down for days, gets everything
 * unread). A failed or skipped digest rolls its notifications into the next
 * one. `self` is the digest's own id when it exists: a digest of another
 * frequency closing at the same instant counts only if it came first.
 */
const LOWER_BOUND = (userId: string, end: string, self?: string) => `coalesce(
  (SELECT max(prev.scheduled_for) FROM email_digests prev
    WHERE prev.user_id = ${userId} AND NOT prev.is_test AND prev.status IN ('sent', 'pending')
      AND ${self ? `(prev.scheduled_for < ${end} OR (prev.scheduled_for = ${end} AND prev.id <> ${self}.id AND prev.created_at < ${self}.created_at))` : `prev.scheduled_for <= ${end}`}),
  '-infinity'::timestamptz)`;

/**
 * Not what the e-mail channel sent, or holds to send (for quiet hours' end,
 * in an hourly bundle, or waiting to be seen in-app, unless a device has
 * acknowledged it: that e-mail will be cancelled): a digest never repeats an
 * e-mail ("Digests" in docs/delivery.md). One probe of the queue's unique
 * (notification_id, channel) index per candidate.
 */
const NOT_EMAILED = (n: string) => `NOT EXISTS (SELECT 1 FROM notification_queue q
  WHERE q.notification_id = ${n}.id AND q.channel = 'email'
    AND (q.status IN ('sent', 'processing', 'held')
         OR (q.status = 'pending' AND NOT (q.payload ? 'unlessSeen' AND ${n}.delivery_status = 'delivered'))))`;

/** CLAIM's parameters: $1..$4 the groups (zone, frequency, window start, scheduled for), $5 now. */
const CLAIM = `WITH g AS (
   SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])
     AS g(timezone, frequency, window_start, scheduled_for)
 )
 INSERT INTO email_digests (user_id, frequency, scheduled_for, window_start, email_address, status, next_attempt_at, created_at, updated_at)
 SELECT u.id, g.frequency, g.scheduled_for, g.window_start, u.email, 'pending', $5, $5, $5
   FROM g
   JOIN users u ON u.timezone = g.timezone
   LEFT JOIN notification_preferences p ON p.user_id = u.id
   CROSS JOIN LATERAL (SELECT ${LOWER_BOUND("u.id", "g.scheduled_for")} AS since) b
  WHERE coalesce(p.email_digest_enabled, true)
    AND coalesce(p.email_digest_frequency, 'daily') = g.frequency
    AND u.email IS NOT NULL AND u.email <> ''
    AND NOT EXISTS (SELECT 1 FROM email_digests c
                     WHERE c.user_id = u.id AND c.frequency = g.frequency
                       AND c.scheduled_for = g.scheduled_for AND NOT c.is_test)
    AND EXISTS (SELECT 1 FROM notifications n
                 WHERE n.user_id = u.id AND NOT n.read AND NOT n.archived AND NOT notification_is_read(n) AND NOT notification_is_archived(n)
                   AND n.created_at <= g.scheduled_for
                   AND n.created_at > b.since
                   AND ${NOT_EMAILED("n")})
  -- One insertion order for every instance: concurrent claims then wait on
  -- each other's rows in the same order instead of deadlocking.
  ORDER BY u.id, g.frequency
 ON CONFLICT (user_id, frequency, scheduled_for) WHERE is_test = false DO NOTHING
 RETURNING id`;

/**
 * Claims the due window for every user in the groups who has something to
 * say. Users with nothing unread in the window get no row at all (rather than
 * a 'skipped' row per user per hour); if a notification for that window
 * commits late, a later tick claims it then, and still only once.
 */
export async function claimDueDigests(database: Pick<Database, "transaction">, groups: ClaimGroup[], now: Date): Promise<number> {
  if (groups.length === 0) return 0;
  const params = [
    groups.map((g) => g.timezone),
    groups.map((g) => g.frequency),
    groups.map((g) => g.windowStart.toISOString()),
    groups.map((g) => g.scheduledFor.toISOString()),
    now.toISOString(),
  ];
  // The claim reads the directory and copies addresses: no erasure runs beside it (src/users/directory-lock.ts).
  const rows = await database.transaction(async (tx) => {
    await lockDirectoryForRead(tx);
    return tx.query<{ id: string }>(CLAIM, params);
  });
  return rows.length;
}

export interface DigestRow {
  id: string;
  user_id: string;
  frequency: DigestFrequency;
  status: string;
  scheduled_for: Date;
  window_start: Date | null;
  sent_at: Date | null;
  email_address: string;
  subject: string | null;
  html_content: string | null;
  text_content: string | null;
  notification_count: number;
  attempts: number;
  next_attempt_at: Date | null;
  lease_until: Date | null;
  leased_by: string | null;
  last_error: string | null;
  message_id: string | null;
  is_test: boolean;
  /** Connection failures that never carried the message (not attempts; they only grow the backoff). */
  unreached: number;
  created_at: Date;
  updated_at: Date;
}

/** Takes up to `limit` due rows for this instance until `leaseUntil`; attempts counts every lease. */
export async function leaseDueDigests(
  db: Queryable,
  opts: { now: Date; leaseUntil: Date; owner: string; limit: number },
): Promise<DigestRow[]> {
  return db.query<DigestRow>(
    `UPDATE email_digests d
        SET lease_until = $2, leased_by = $3, attempts = d.attempts + 1, updated_at = $1
      WHERE d.id IN (
        SELECT id FROM email_digests
         WHERE status = 'pending' AND NOT is_test AND next_attempt_at <= $1
           AND (lease_until IS NULL OR lease_until <= $1)
         ORDER BY next_attempt_at, id
         LIMIT $4
         FOR UPDATE SKIP LOCKED)
      RETURNING d.*`,
    [opts.now.toISOString(), opts.leaseUntil.toISOString(), opts.owner, opts.limit],
  );
}

export interface ContentRow {
  digest_id: string;
  id: string;
  type: string;
  priority: string;
  title: string;
  message: string;
  action_url: string | null;
  action_label: string | null;
  created_at: Date;
}

export interface DigestContent {
  /** Per digest: the newest `perType` notifications of each of its (at most `maxTypes`) newest types, newest first. */
  items: ContentRow[];
  /** Per digest: every matching notification counted by type (all types, listed or not). */
  counts: { digest_id: string; type: string; count: number }[];
}

/** The digest's lower bound, once per digest (inline per notification it would be re-evaluated for each). */
const SINCE = `CROSS JOIN LATERAL (
         SELECT CASE WHEN d.is_test THEN d.window_start ELSE ${LOWER_BOUND("d.user_id", "d.scheduled_for", "d")} END AS since
       ) b`;
// notification_is_read / notification_is_archived: a read-all's or archive-all's watermark also reads
// or archives (migrations 0012, 0017); `NOT x.read AND NOT x.archived` keeps the partial index.
const MATCHES = `x.user_id = d.user_id AND NOT x.read AND NOT x.archived AND NOT notification_is_read(x) AND NOT notification_is_archived(x) AND x.created_at <= d.scheduled_for AND x.created_at > b.since AND ${NOT_EMAILED("x")}`;

/**
 * The notifications each digest reports: unread, unarchived, created in
 * (lower bound, scheduled_for]. Counted per type in SQL, and listed per type
 * (a flood of one type never hides another). A test digest uses its own
 * window_start as the bound.
 */
export async function digestContent(db: Queryable, digestIds: string[], perType: number, maxTypes: number): Promise<DigestContent> {
  if (digestIds.length === 0) return { items: [], counts: [] };
  const [counts, items] = await Promise.all([
    db.query<{ digest_id: string; type: string; count: number }>(
      `SELECT d.id AS digest_id, x.type, count(*)::int AS count
         FROM email_digests d ${SINCE}
         JOIN notifications x ON ${MATCHES}
        WHERE d.id = ANY($1::uuid[])
        GROUP BY d.id, x.type`,
      [digestIds],
    ),
    db.query<ContentRow>(
      `SELECT d.id AS digest_id, n.id, n.type, n.priority, n.title, n.message, n.action_url, n.action_label, n.created_at
         FROM email_digests d ${SINCE}
         CROSS JOIN LATERAL (
           SELECT x.type, max(x.created_at) AS newest FROM notifications x WHERE ${MATCHES}
            GROUP BY x.type ORDER BY newest DESC LIMIT $3
         ) t
         CROSS JOIN LATERAL (
           SELECT x.* FROM notifications x WHERE ${MATCHES} AND x.type = t.type
            ORDER BY x.created_at DESC, x.seq DESC LIMIT $2
         ) n
        WHERE d.id = ANY($1::uuid[])
        ORDER BY d.id, n.created_at DESC, n.seq DESC`,
      [digestIds, perType, maxTypes],
    ),
  ]);
  return { items, counts };
}

export interface RenderedDigest {
  id: string;
  subject: string;
  html: string;
  text: string;
  count: number;
  messageId: string;
}

/**
 * Stores what will be sent before sending, so a retry or a takeover resends
 * the same message. Only rows this owner still holds: a holder that stalled
 * past its lease does not overwrite what the instance that took over stored
 * (and maybe sent). Returns the ids stored.
 */
export async function storeRendered(db: Queryable, rendered: RenderedDigest[], owner: string, now: Date): Promise<Set<string>> {
  if (rendered.length === 0) return new Set();
  const rows = await db.query<{ id: string }>(
    `UPDATE email_digests d
        SET subject = r.subject, html_content = r.html, text_content = r.text,
            notification_count = r.count, message_id = r.message_id, updated_at = $7
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[])
         AS r(id, subject, html, text, count, message_id)
      WHERE d.id = r.id AND d.leased_by = $8 AND d.status = 'pending'
      RETURNING d.id`,
    [
      rendered.map((r) => r.id),
      rendered.map((r) => r.subject),
      rendered.map((r) => r.html),
      rendered.map((r) => r.text),
      rendered.map((r) => r.count),
      rendered.map((r) => r.messageId),
      now.toISOString(),
      owner,
    ],
  );
  return new Set(rows.map((r) => r.id));
}

/**
 * The claim check right before a send: extends this owner's lease on one
 * digest, or returns undefined when the digest is no longer this owner's to
 * send (taken over after a stall, or already sent, skipped or failed).
 */
export async function renewLease(db: Queryable, opts: { id: string; owner: string; now: Date; leaseUntil: Date }): Promise<Date | undefined> {
  const [row] = await db.query<{ lease_until: Date }>(
    `UPDATE email_digests SET lease_until = $3, updated_at = $2
      WHERE id = $1 AND leased_by = $4 AND status = 'pending'
      RETURNING lease_until`,
    [opts.id, opts.now.toISOString(), opts.leaseUntil.toISOString(), opts.owner],
  );
  return row ? new Date(row.lease_until) : undefined;
}

/**
 * Marks delivered digests, right after the server accepted them (a holder
 * that stalls past its lease must leave as little delivered-but-unmarked as
 * possible for the next holder to send again). Not lease-guarded: whoever
 * delivered, 'sent' is true, and it stops a later holder's claim check; but
 * only from 'pending', so it never overrides another holder's final outcome.
 */
export async function markSent(db: Queryable, ids: string[], now: Date): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `UPDATE email_digests
        SET status = 'sent', sent_at = $2, lease_until = NULL, last_error = NULL, next_attempt_at = NULL, updated_at = $2
      WHERE id = ANY($1::uuid[]) AND status = 'pending'`,
    [ids, now.toISOString()],
  );
}

/** Nothing left to say when it came to sending (all read meanwhile): no e-mail. Only rows this owner still holds. */
export async function markSkipped(db: Queryable, ids: string[], owner: string, now: Date): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `UPDATE email_digests
        SET status = 'skipped', lease_until = NULL, next_attempt_at = NULL, updated_at = $2
      WHERE id = ANY($1::uuid[]) AND leased_by = $3 AND status = 'pending'`,
    [ids, now.toISOString(), owner],
  );
}

/**
 * Records a failed attempt: back to 'pending' with a later next_attempt_at,
 * or 'failed' for good. Guarded by the lease owner so a stalled instance
 * cannot overwrite the outcome of the one that took over. A failure that
 * never reached the server (`reached` false) gives the lease's attempt back
 * and counts in `unreached` instead.
 */
export async function markAttemptFailed(
  db: Queryable,
  opts: { id: string; owner: string; now: Date; error: string; retryAt: Date | undefined; reached?: boolean },
): Promise<void> {
  await db.query(
    `UPDATE email_digests
        SET status = CASE WHEN $4::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
            next_attempt_at = $4::timestamptz, last_error = $5, lease_until = NULL, updated_at = $3,
            attempts = CASE WHEN $6 THEN attempts ELSE greatest(attempts - 1, 0) END,
            unreached = CASE WHEN $6 THEN unreached ELSE unreached + 1 END
      WHERE id = $1 AND leased_by = $2 AND status = 'pending'`,
    [opts.id, opts.owner, opts.now.toISOString(), opts.retryAt?.toISOString() ?? null, opts.error, opts.reached ?? true],
  );
}
