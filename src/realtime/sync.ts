/**
 * The two reads a connection makes: its unread badge and what this device
 * has not received, oldest first.
 *
 * Per device (delivery rule 4): a connection resumes from its own cursor (the last
 * seq it received), so another device's ack never hides anything from it.
 * The cursor is the client's (`?cursor=`, `sync {cursor}`), else the highest
 * seq this device acknowledged (device_cursors, migration 0008), else none.
 * A page holds every live notification after the cursor, acknowledged by
 * another device or not. When the connection resumes (connect, bus
 * reconnect, `sync` without a cursor) it also holds what nobody has
 * acknowledged at or before the cursor (an ack lost with its socket, or a
 * frame from another instance that came after a newer one): at least once on
 * the wire, once per id in the SDK. A `sync {cursor}` (the next page of a
 * truncated one) reads strictly after its cursor, so paging always advances.
 * With no cursor at all (a brand-new device, or an old client without a
 * device id) that is only the unacknowledged: not the user's whole history.
 * The badge is the maintained count (inbox_state, migration 0012) and each
 * row's `read` and `archived` honour the user's watermarks (INBOX_COLUMNS).
 * Cost per sync: a range of notifications_user_seq_idx after the cursor, the
 * partial notifications_undelivered_idx as before, one primary-key lookup in
 * device_cursors (only without a client cursor), one probe of the seq
 * index per statement for the next cursor, and one upsert of the device's
 * cursor (connections that name their device).
 *
 * `SyncReader` answers the syncs of every connection that asked in the same
 * event-loop turn with ONE statement (badge and page per connection, by
 * LATERAL joins over the requests): a connect storm costs a few round trips,
 * not two per socket.
 */
import { GroupCommit, type Queryable } from "../db/index.js";
import { NOTIFICATION_COLUMNS, type NotificationDto, type NotificationRow, toNotificationDto } from "../notifications/index.js";
import { type Clock, systemClock } from "../observability/index.js";
import { pruneDevices } from "./delivery-log.js";

// Which of a request's notifications a connection may be synced (both branches below use it):
// never what in-app off kept out of the app (in_app false, delivery rule 4; migration 0009).
const SYNCABLE = `user_id = r.user_id AND in_app`;

// The wire columns with `read`, `archived` and `readAt` as notification_is_read(),
// notification_is_archived() and notification_read_at() (migrations 0012, 0017) define them, from
// the request's inbox_state row (`st`, joined once per request) instead of one call of each
// function, with its own inbox_state lookup, per row: those calls were three quarters of the
// statement (EXPLAIN ANALYZE, 1,000 syncs of 20 rows). The same definitions: read explicitly, or
// in-app, not marked unread and at or below the read watermark (no inbox_state row: no watermark);
// archived likewise with marked_unarchived and the archive watermark; readAt the row's own, else
// the read-all's time when the watermark made it read.
// test/realtime/sync.test.ts compares them with the inbox's, row by row, across a read-all and an archive-all.
const SYNC_COLUMNS = syncColumns();

function syncColumns(): string {
  const watermarked = "(in_app AND NOT marked_unread AND COALESCE(seq <= st.read_through_seq, false))";
  const archivedByWatermark = "(in_app AND NOT marked_unarchived AND COALESCE(seq <= st.archived_through_seq, false))";
  const columns = NOTIFICATION_COLUMNS.replace(/\bread,/, `(read OR ${watermarked}) AS read,`)
    .replace(/\barchived,/, `(archived OR ${archivedByWatermark}) AS archived,`)
    .replace('read_at AS "readAt"', `COALESCE(read_at, CASE WHEN NOT read AND ${watermarked} THEN st.read_all_at END) AS "readAt"`);
  if (
    !columns.includes(`${watermarked}) AS read,`) ||
    !columns.includes(`${archivedByWatermark}) AS archived,`) ||
    !columns.includes('st.read_all_at END) AS "readAt"')
  ) {
    throw new Error("NOTIFICATION_COLUMNS changed: SYNC_COLUMNS no longer finds read, archived and read_at");
  }
  return columns;
}

// One row per notification of each request's page (one row more than the page,
// to know whether it is truncated), or one row with NULLs for an empty page;
// `unread` repeats the request's badge (NULL when not wanted). Rows come in no
// particular order (SyncReader orders each page by seq: no sort of the whole
// result, which spilled to disk at 1,000 requests).
// `cur.after` is the client's cursor, else the device's stored one (0 is a device known to be past
// nothing: it gets everything), else -1 (no cursor at all: only the unacknowledged).
// `top` (the newest seq of all, one probe of the seq index per statement) is the
// cursor of a complete page: a device that has received nothing still gets a
// cursor, so another device's ack while it is offline cannot hide what follows.
//
// The same statement stores where each named device now is (device_cursors, never backwards):
// just before its page's oldest row, else the page's cursor. It is known before the page
// is even sent, so no notification created afterwards can be acknowledged by another device
// while this device's position is still unwritten: stored by a later batched write (the
// delivery log's, or another instance's), an ack of a newer notification written first
// made a device that came back without a cursor look brand-new, and miss it. Grouped per
// (user, device) (two connections of one device in a batch) and sorted, as the delivery
// log's cursor writes are, so concurrent writers lock rows in one order.
// The users whose device was seen for the first time come once, on one extra row (k NULL),
// not repeated on every row (1,000 new devices made every one of 20,000 rows carry 1,000 ids).
const SYNC_BATCH = `
WITH r AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::bool[], $4::text[], $5::bool[]) WITH ORDINALITY AS r(user_id, after, with_count, device_id, resume, k)
), q AS (
  SELECT r.k, CASE WHEN r.with_count THEN COALESCE(st.unread_count, 0) END AS unread, t.top, p.*
    FROM r
    LEFT JOIN device_cursors d ON r.after = 0 AND d.user_id = r.user_id AND d.device_id = r.device_id
    CROSS JOIN LATERAL (SELECT CASE WHEN r.after > 0 THEN r.after ELSE COALESCE(d.acked_seq, -1) END AS after) cur
    LEFT JOIN inbox_state st ON st.user_id = r.user_id
    CROSS JOIN (SELECT max(seq) AS top FROM notifications) t
    LEFT JOIN LATERAL (
      SELECT * FROM (
        (SELECT ${SYNC_COLUMNS} FROM notifications
          WHERE ${SYNCABLE} AND cur.after >= 0 AND seq > cur.after
          ORDER BY seq LIMIT $6)
        UNION ALL
        (SELECT ${SYNC_COLUMNS} FROM notifications
          WHERE ${SYNCABLE} AND r.resume AND delivery_status IN ('pending', 'sent') AND (cur.after < 0 OR seq <= cur.after)
          ORDER BY seq LIMIT $6)
      ) u
      ORDER BY seq ASC
      LIMIT $6
    ) p ON true
), past AS (
  SELECT r.user_id, r.device_id, COALESCE(min(q.seq) - 1, GREATEST(COALESCE(max(q.top), 0), r.after)) AS seq
    FROM r JOIN q ON q.k = r.k
   WHERE r.device_id IS NOT NULL
   GROUP BY r.k, r.user_id, r.device_id, r.after
), moved AS (
  INSERT INTO device_cursors AS d (user_id, device_id, acked_seq, updated_at)
  SELECT user_id, device_id, max(seq), $7 FROM past
   GROUP BY user_id, device_id
   ORDER BY user_id, device_id
  ON CONFLICT (user_id, device_id) DO UPDATE
     SET acked_seq = GREATEST(d.acked_seq, EXCLUDED.acked_seq), updated_at = EXCLUDED.updated_at
  RETURNING d.user_id, (d.xmax = 0) AS inserted
)
SELECT q.*, NULL::text[] AS grown FROM q
UNION ALL
SELECT none.*, g.grown
  FROM (SELECT array_agg(DISTINCT user_id) AS grown FROM moved WHERE inserted) g
  LEFT JOIN q AS none ON false
 WHERE g.grown IS NOT NULL`;

export interface SyncPage {
  notifications: NotificationDto[];
  /** Where the next sync resumes: the last seq in a truncated page, else the user's newest seq (never below the request's cursor). */
  cursor: number;
  truncated: boolean;
}

export interface SyncResult {
  /** The unread badge, when asked for. */
  count: number | undefined;
  page: SyncPage;
}

interface SyncRequest {
  userId: string;
  cursor: number;
  withCount: boolean;
  deviceId: string | null;
  resume: boolean;
}

/**
 * Collects sync reads and runs each turn's collection as one statement (a
 * GroupCommit that collects the turn). At most `maxInFlight` statements run
 * at once (default one); requests that arrive meanwhile wait for the next
 * one, so batches grow with the load instead of the queue of pool clients.
 * Measured on the backlog drain (1,000 connects): ~500-800 statements with 4
 * in flight, ~80-200 with one, and a shorter drain.
 */
export interface SyncReaderOptions {
  /** The time stored with a device's position (device_cursors.updated_at; default the system clock). */
  clock?: Clock;
  /** Device cursors kept per user: a device first seen by a sync prunes the least recent beyond it (default 20). */
  maxDevicesPerUser?: number;
  maxBatch?: number;
  maxInFlight?: number;
}

export class SyncReader {
  private readonly commits: GroupCommit<SyncRequest, SyncResult>;
  private readonly clock: Clock;
  private readonly maxDevicesPerUser: number;

  constructor(
    private readonly db: Queryable,
    private readonly limit: number,
    { clock = systemClock, maxDevicesPerUser = 20, maxBatch = 500, maxInFlight = 1 }: SyncReaderOptions = {},
  ) {
    this.clock = clock;
    this.maxDevicesPerUser = maxDevicesPerUser;
    this.commits = new GroupCommit((batch) => this.run(batch), { maxBatch, maxInFlight, collectTurn: true });
  }

  /**
   * `cursor` 0 means "none": the device's acknowledged cursor (when `deviceId` is given and known) stands in.
   * `resume` adds the unacknowledged notifications at or before the cursor (see the file comment).
   * With a `deviceId`, the device's stored position moves to what the page shows it (SYNC_BATCH).
   */
  read(userId: string, cursor: number, withCount: boolean, deviceId: string | null = null, resume = cursor === 0): Promise<SyncResult> {
    return this.commits.submit({ userId, cursor, withCount, deviceId, resume });
  }

  private async run(batch: SyncRequest[]): Promise<PromiseSettledResult<SyncResult>[]> {
    const rows = await this.db.query<
      Omit<NotificationRow, "id"> & { id: string | null; k: string | number | null; unread: number | null; top: string | number | null; grown: string[] | null }
    >(SYNC_BATCH, [
      batch.map((r) => r.userId),
      batch.map((r) => r.cursor),
      batch.map((r) => r.withCount),
      batch.map((r) => r.deviceId),
      batch.map((r) => r.resume),
      this.limit + 1,
      this.clock.now().toISOString(),
    ]);
    const pages: NotificationRow[][] = batch.map(() => []);
    const counts: number[] = batch.map(() => 0);
    const tops: number[] = batch.map(() => 0);
    let grown: string[] | null = null;
    for (const row of rows) {
      // The one row naming the users whose device was seen for the first time.
      if (row.k === null) {
        grown = row.grown;
        continue;
      }
      const k = Number(row.k) - 1;
      counts[k] = Number(row.unread ?? 0);
      tops[k] = Number(row.top ?? 0);
      if (row.id !== null) pages[k]!.push(row as NotificationRow);
    }
    // Devices seen for the first time: their users' least recent devices beyond the cap are forgotten.
    if (grown && grown.length > 0) await pruneDevices(this.db, grown, this.maxDevicesPerUser);
    return batch.map((r, k) => ({ status: "fulfilled", value: { count: r.withCount ? counts[k] : undefined, page: toPage(pages[k]!, r.cursor, tops[k]!, this.limit) } }));
  }
}

function toPage(rows: NotificationRow[], cursor: number, top: number, limit: number): SyncPage {
  // The statement leaves the order to us (already ascending, as a rule: then this is one pass).
  rows.sort((a, b) => Number(a.seq) - Number(b.seq));
  const truncated = rows.length > limit;
  const notifications = (truncated ? rows.slice(0, limit) : rows).map(toNotificationDto);
  const last = notifications[notifications.length - 1];
  // A truncated page resumes after its last row; a complete one after everything the user has.
  return { notifications, cursor: truncated ? last!.seq : Math.max(last?.seq ?? 0, top, cursor), truncated };
}
