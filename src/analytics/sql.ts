/**
 * The SQL that writes analytics: the ingest's one INSERT of raw events, and
 * the roll-up pass (run apart from it, see roller.ts) that folds the rows
 * written since the previous pass into the rollups of migrations 0005 and
 * 0014, so readers never need the raw table for metrics. Keep in step with
 * rebuildRollups (rollups.ts) and the backfills in 0005 and 0014.
 */

import { CHANNEL_OUTCOMES, EVENT_TYPES } from "./events.js";

/** `date_bin` origin for the 15-minute rollup buckets. */
export const EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'";
export const BUCKET_SECONDS = 900;

/**
 * Analytics (docs/delivery.md) counts each notification once per event type; an event also counts
 * what it proves happened before it, so no rate can pass 100%: an open or a
 * click proves a delivery (a notification read in the list after it was
 * created offline has no delivery event), and a delivery, open or click
 * proves a send. The implied rows take the implying event's time and user;
 * a recorded event of the same type, if earlier, wins (counted once).
 * `source` rows have notification_id, user_id, event_type and `ts`; `extra` is carried along.
 */
const IMPLIED = (source: string, ts: string, extra?: string) => {
  const cols = `notification_id, user_id, ${ts}${extra ? `, ${extra}` : ""}`;
  return `SELECT ${cols}, event_type FROM ${source}
    UNION ALL SELECT ${cols}, 'delivered' FROM ${source} WHERE event_type IN ('opened', 'clicked')
    UNION ALL SELECT ${cols}, 'sent' FROM ${source} WHERE event_type IN ('delivered', 'opened', 'clicked')`;
};

/** Both rollup tables keep one count column per event type, named after it. */
const COUNT_COLUMNS = EVENT_TYPES.join(", ");

/** One count per event type, in COUNT_COLUMNS order, of the rows whose `column` names it. */
const countsBy = (column: string) => EVENT_TYPES.map((t) => `count(*) FILTER (WHERE ${column} = '${t}')`).join(", ");

/** An upsert's SET list that adds the incoming counts (`excluded`) to `table`'s. */
const addCounts = (table: string, columns: readonly string[]) => columns.map((c) => `${c} = ${table}.${c} + excluded.${c}`).join(",\n    ");

/** Folds (bucket, notification_type, kind) rows into the rollup's columns; kind 'event' is a raw event. */
const ROLLUP_COUNTS = `${countsBy("kind")}, count(*) FILTER (WHERE kind = 'event')`;

/**
 * The events the headline counts (firsts, rollup, group stats, raw `events`):
 * all but the digest channel's, whose id is a digest's, not a notification's.
 */
export const headlineEvent = (alias?: string) => `${alias ? `${alias}.` : ""}channel IS DISTINCT FROM 'digest'`;
const HEADLINE_TYPES = EVENT_TYPES.map((t) => `'${t}'`).join(", ");

/**
 * Per channel, each (notification, channel) counts once per outcome (sent,
 * delivered, failed); a delivery on a channel proves a send on it, as in
 * the headline. `source` rows have notification_id, user_id, event_type,
 * channel and `ts`; `extra` is carried along.
 */
const CHANNEL_IMPLIED = (source: string, ts: string, extra?: string) => {
  const cols = `notification_id, channel, user_id, ${ts}${extra ? `, ${extra}` : ""}`;
  const outcomes = CHANNEL_OUTCOMES.map((o) => `'${o}'`).join(", ");
  return `SELECT ${cols}, event_type AS outcome FROM ${source} WHERE channel IS NOT NULL AND event_type IN (${outcomes})
    UNION ALL SELECT ${cols}, 'sent' FROM ${source} WHERE channel IS NOT NULL AND event_type = 'delivered'`;
};
const CHANNEL_COLUMNS = CHANNEL_OUTCOMES.join(", ");
const CHANNEL_COUNTS = CHANNEL_OUTCOMES.map((o) => `count(*) FILTER (WHERE outcome = '${o}')`).join(", ");

/**
 * The ingest's one statement: $1 notification ids, $2 user ids, $3 event
 * types, $4 timestamps, $5 metadata, $6 channels. Each row records the
 * inserting transaction (`xid`), which is how ROLL_UP knows whether it has
 * seen the row (migration 0016); nothing else is written at ingest.
 */
export const INSERT_EVENTS = `
INSERT INTO analytics_events (notification_id, user_id, event_type, timestamp, metadata, channel, xid)
SELECT t.*, pg_current_xact_id()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[], $6::text[])
  AS t(notification_id, user_id, event_type, ts, metadata, channel)`;

/**
 * The stored snapshot's bounds, read by a pass under LOCK_ROLLUPS (ROLL_UP's
 * $2 and $3), and whether it is ahead of this cluster's transaction ids:
 * rows and state restored by pg_dump into another cluster, whose new xids
 * would look already rolled up.
 */
export const ROLLUP_STATE = `
SELECT pg_snapshot_xmax(snapshot)::text AS xmax, ARRAY(SELECT pg_snapshot_xip(snapshot))::text[] AS xip,
       pg_snapshot_xmax(snapshot) > pg_snapshot_xmax(pg_current_snapshot()) AS ahead
FROM analytics_rollup_state`;

/** Held by a roll-up and by rebuildRollups for their whole transaction: one at a time, across instances. */
export const LOCK_ROLLUPS = "LOCK TABLE analytics_rollup_state IN EXCLUSIVE MODE";

/**
 * One roll-up pass, run after LOCK_ROLLUPS and ROLLUP_STATE in the same
 * transaction (so its snapshot, taken after the lock, sees the previous
 * pass's commit). $1: the most raw rows to fold in (whole transactions in
 * xid order, and at least the first whatever its size); $2 and $3: the stored snapshot's xmax and in-progress xids, as
 * ROLLUP_STATE read them (values, not a subquery, so the planner sees them
 * and takes analytics_events_xid_idx however large the table).
 *
 * - `pending`: the rows visible to this statement but not in the stored
 *   snapshot: xid >= its xmax, or one of its in-progress xids. Commit order
 *   does not matter: a row whose transaction was still open at the last pass
 *   is among its in-progress xids, whatever its `id`. Only up to `bound`:
 *   the first xid after the one of the ($1 + 1)-th row from the xmax (two
 *   probes of the xid index). That xid always qualifies as `cutoff` (more
 *   than $1 rows up to it, and it is not the first), so the cutoff, and so
 *   the pass, are those of the whole backlog, while a pass reads O($1) rows,
 *   not the whole backlog: small passes (PGlite) catch up in linear time.
 * - `cutoff`: the first transaction (xid order) that would take the pass
 *   beyond $1 rows, unless it is the first, and never below the stored
 *   xmax: the stored snapshot's in-progress transactions are always taken
 *   whole (a cut among them would store an xmax below transactions already
 *   rolled up, which the next pass would count again); `input` the rows below
 *   it; `target` the snapshot stored: the current one, or, when cut, one that
 *   sees exactly the transactions below the cutoff that the current one sees.
 * - `known`: each notification's type, group (broadcast id, else itself) and
 *   title, from `notifications`, else from the copy migration 0011 keeps of a
 *   deleted one, else from an earlier first of the same notification, else
 *   'unknown' (index lookups: LIMIT 1 keeps them per notification).
 * - `candidates`: each event, plus the ones it implies (see IMPLIED), the
 *   earliest per (notification, type), ties to the first stored: the row the
 *   rebuild's DISTINCT ON keeps, so both name the same user (with
 *   min(user_id) and min(ts) apart, two users' events of one notification in
 *   one pass named another: trackEvent takes any user for any notification);
 *   `firsts`: only a pass that inserts a (notification, type) counts it.
 * - `channel_firsts` and `channel_rollup`: the same per channel (CHANNEL_IMPLIED).
 * - Returns the rows folded in, whether more are waiting, and the
 *   notifications and users touched (cache invalidation).
 */
export const ROLL_UP = `
WITH state AS (SELECT snapshot AS prev, pg_current_snapshot() AS cur FROM analytics_rollup_state),
bound AS (
  SELECT (SELECT e.xid FROM analytics_events e WHERE e.xid > b.xid ORDER BY e.xid LIMIT 1) AS xid
  FROM (SELECT (SELECT e.xid FROM analytics_events e WHERE e.xid >= $2::xid8 ORDER BY e.xid OFFSET $1::bigint LIMIT 1) AS xid) b
),
pending AS MATERIALIZED (
  SELECT e.xid, e.id, e.notification_id, e.user_id, e.event_type, e.timestamp AS ts, e.channel FROM analytics_events e
  WHERE e.xid >= $2::xid8 AND e.xid <= (SELECT COALESCE(xid, '18446744073709551615'::xid8) FROM bound)
  UNION ALL
  SELECT e.xid, e.id, e.notification_id, e.user_id, e.event_type, e.timestamp, e.channel FROM analytics_events e
  WHERE e.xid = ANY ($3::xid8[])
),
cutoff AS (
  SELECT min(xid) AS xid FROM (
    SELECT xid, n, sum(n) OVER (ORDER BY xid) AS upto FROM (SELECT xid, count(*) AS n FROM pending GROUP BY xid) x
  ) w WHERE upto > $1 AND upto > n AND xid >= $2::xid8
),
input AS (SELECT p.* FROM pending p, cutoff c WHERE c.xid IS NULL OR p.xid < c.xid),
target AS (
  SELECT CASE WHEN c.xid IS NULL THEN s.cur ELSE (
    least(pg_snapshot_xmin(s.cur), c.xid)::text || ':' || c.xid::text || ':' ||
    COALESCE((SELECT string_agg(x::text, ',' ORDER BY x) FROM pg_snapshot_xip(s.cur) x WHERE x < c.xid), '')
  )::pg_snapshot END AS snapshot
  FROM state s, cutoff c
),
counted AS (SELECT * FROM input WHERE ${headlineEvent()}),
headline AS (SELECT * FROM counted WHERE event_type IN (${HEADLINE_TYPES})),
known AS (
  SELECT i.notification_id,
         COALESCE(n.type, d.notification_type, f.notification_type, 'unknown') AS notification_type,
         COALESCE(n.broadcast_id, n.id, d.group_id, f.group_id, i.notification_id) AS group_id,
         COALESCE(n.title, d.title) AS title
  FROM (SELECT DISTINCT notification_id FROM counted) i
  LEFT JOIN LATERAL (SELECT id, type, broadcast_id, title FROM notifications WHERE id = i.notification_id LIMIT 1) n ON true
  LEFT JOIN LATERAL (
    SELECT notification_type, group_id, title FROM analytics_deleted_notifications WHERE notification_id = i.notification_id LIMIT 1
  ) d ON true
  LEFT JOIN LATERAL (
    SELECT notification_type, group_id FROM analytics_firsts
    WHERE notification_id = i.notification_id AND notification_type <> 'unknown' LIMIT 1
  ) f ON true
),
candidates AS (
  SELECT DISTINCT ON (notification_id, event_type) notification_id, event_type, user_id, ts AS first_at
  FROM (${IMPLIED("headline", "ts", "id")}) x
  ORDER BY notification_id, event_type, ts, id
),
firsts AS (
  INSERT INTO analytics_firsts (notification_id, event_type, user_id, notification_type, group_id, first_at)
  SELECT c.notification_id, c.event_type, c.user_id, k.notification_type, k.group_id, c.first_at
  FROM candidates c JOIN known k USING (notification_id)
  ORDER BY c.notification_id, c.event_type
  ON CONFLICT (notification_id, event_type) DO NOTHING
  RETURNING notification_id, event_type, notification_type, group_id, first_at
),
rollup AS (
  INSERT INTO analytics_rollup (bucket, notification_type, ${COUNT_COLUMNS}, events)
  SELECT bucket, notification_type, ${ROLLUP_COUNTS}
  FROM (
    SELECT date_bin('15 minutes', first_at, ${EPOCH}) AS bucket, notification_type, event_type AS kind FROM firsts
    UNION ALL
    SELECT date_bin('15 minutes', i.ts, ${EPOCH}), k.notification_type, 'event'
    FROM counted i JOIN known k USING (notification_id)
  ) d
  GROUP BY 1, 2
  ORDER BY 1, 2
  ON CONFLICT (bucket, notification_type) DO UPDATE SET
    ${addCounts("analytics_rollup", [...EVENT_TYPES, "events"])}
),
groups AS (
  INSERT INTO analytics_group_stats (group_id, notification_type, title, broadcast, ${COUNT_COLUMNS})
  SELECT f.group_id, min(f.notification_type), min(k.title), bool_or(f.group_id <> f.notification_id), ${countsBy("f.event_type")}
  FROM firsts f JOIN known k USING (notification_id)
  GROUP BY f.group_id
  ORDER BY f.group_id
  ON CONFLICT (group_id) DO UPDATE SET
    title = COALESCE(analytics_group_stats.title, excluded.title),
    broadcast = analytics_group_stats.broadcast OR excluded.broadcast,
    ${addCounts("analytics_group_stats", EVENT_TYPES)}
),
channel_firsts AS (
  INSERT INTO analytics_channel_firsts (notification_id, channel, outcome, user_id, first_at)
  SELECT DISTINCT ON (notification_id, channel, outcome) notification_id, channel, outcome, user_id, ts
  FROM (${CHANNEL_IMPLIED("input", "ts", "id")}) x
  ORDER BY notification_id, channel, outcome, ts, id
  ON CONFLICT (notification_id, channel, outcome) DO NOTHING
  RETURNING channel, outcome, first_at
),
channel_rollup AS (
  INSERT INTO analytics_channel_rollup (bucket, channel, ${CHANNEL_COLUMNS})
  SELECT date_bin('15 minutes', first_at, ${EPOCH}), channel, ${CHANNEL_COUNTS}
  FROM channel_firsts
  GROUP BY 1, 2
  ORDER BY 1, 2
  ON CONFLICT (bucket, channel) DO UPDATE SET
    ${addCounts("analytics_channel_rollup", CHANNEL_OUTCOMES)}
),
folded AS (SELECT count(*)::int AS n FROM input),
saved AS (
  UPDATE analytics_rollup_state s SET snapshot = t.snapshot, rolled_at = now(), events = s.events + f.n
  FROM target t, folded f WHERE f.n > 0
)
SELECT f.n AS events,
       (SELECT xid IS NOT NULL FROM cutoff) AS more,
       COALESCE((SELECT array_agg(DISTINCT notification_id::text) FROM input), '{}') AS notifications,
       COALESCE((SELECT array_agg(DISTINCT user_id) FROM input), '{}') AS users
FROM folded f`;

/**
 * Whether rows were committed since the last roll-up (the two probes of
 * ROLL_UP's `pending`; no lock, no write). ORDER BY xid LIMIT 1 leaves the
 * planner only the xid index, whatever its estimates. A state ahead of the
 * cluster (see ROLLUP_STATE) counts as pending, so the pass reports it.
 */
export const ANY_PENDING = `
SELECT (SELECT xid FROM analytics_events WHERE xid >= (SELECT pg_snapshot_xmax(snapshot) FROM analytics_rollup_state) ORDER BY xid LIMIT 1) IS NOT NULL
    OR (SELECT xid FROM analytics_events WHERE xid = ANY (ARRAY(SELECT pg_snapshot_xip(snapshot) FROM analytics_rollup_state)) ORDER BY xid LIMIT 1) IS NOT NULL
    OR (SELECT pg_snapshot_xmax(snapshot) > pg_snapshot_xmax(pg_current_snapshot()) FROM analytics_rollup_state)
    AS pending`;

/**
 * A raw row of `alias` already in the rollups: written around the ingest
 * (no xid: bulk loads, before 0016) or visible in the last roll-up's
 * snapshot. Readers that add raw rows to rollup figures filter with it, so
 * every figure of one answer is as of the same roll-up.
 */
export const rolledUp = (alias: string) =>
  `(${alias}.xid IS NULL OR pg_visible_in_snapshot(${alias}.xid, (SELECT snapshot FROM analytics_rollup_state)))`;

/**
 * Recomputes every rollup from analytics_events (bulk loads, repairs); run by
 * rebuildRollups (rollups.ts) in one transaction with the rollup tables'
 * secondary indexes dropped. Each statement is one set-based pass, and each
 * inserts in its table's primary-key order, so the key index is appended to
 * rather than updated at random.
 */
export const REBUILD_ROLLUPS = [
  "TRUNCATE analytics_firsts, analytics_rollup, analytics_group_stats, analytics_channel_firsts, analytics_channel_rollup",
  // Every row this transaction's snapshot sees is counted below: the incremental roll-up goes on from it.
  "UPDATE analytics_rollup_state SET snapshot = pg_current_snapshot(), rolled_at = now()",
  `INSERT INTO analytics_firsts (notification_id, event_type, user_id, notification_type, group_id, first_at)
   SELECT DISTINCT ON (e.notification_id, e.event_type)
          e.notification_id, e.event_type, e.user_id, COALESCE(n.type, d.notification_type, 'unknown'),
          COALESCE(n.broadcast_id, d.group_id, e.notification_id), e.timestamp
   FROM (${IMPLIED(`(SELECT * FROM analytics_events WHERE ${headlineEvent()} AND event_type IN (${HEADLINE_TYPES})) h`, "timestamp", "id")}) e
   LEFT JOIN notifications n ON n.id = e.notification_id
   LEFT JOIN analytics_deleted_notifications d ON d.notification_id = e.notification_id
   ORDER BY e.notification_id, e.event_type, e.timestamp, e.id`,
  `INSERT INTO analytics_rollup (bucket, notification_type, ${COUNT_COLUMNS}, events)
   SELECT bucket, notification_type, ${ROLLUP_COUNTS}
   FROM (
     SELECT date_bin('15 minutes', first_at, ${EPOCH}) AS bucket, notification_type, event_type AS kind
     FROM analytics_firsts
     UNION ALL
     SELECT date_bin('15 minutes', e.timestamp, ${EPOCH}), COALESCE(n.type, d.notification_type, 'unknown'), 'event'
     FROM analytics_events e
     LEFT JOIN notifications n ON n.id = e.notification_id
     LEFT JOIN analytics_deleted_notifications d ON d.notification_id = e.notification_id
     WHERE ${headlineEvent("e")}
   ) d
   GROUP BY 1, 2
   ORDER BY 1, 2`,
  `INSERT INTO analytics_group_stats (group_id, notification_type, title, broadcast, ${COUNT_COLUMNS})
   SELECT f.group_id, min(f.notification_type), min(COALESCE(n.title, d.title)), bool_or(f.group_id <> f.notification_id), ${countsBy("f.event_type")}
   FROM analytics_firsts f
   LEFT JOIN notifications n ON n.id = f.notification_id
   LEFT JOIN analytics_deleted_notifications d ON d.notification_id = f.notification_id
   GROUP BY f.group_id
   ORDER BY f.group_id`,
  `INSERT INTO analytics_channel_firsts (notification_id, channel, outcome, user_id, first_at)
   SELECT DISTINCT ON (e.notification_id, e.channel, e.outcome) e.notification_id, e.channel, e.outcome, e.user_id, e.timestamp
   FROM (${CHANNEL_IMPLIED("analytics_events", "timestamp", "id")}) e
   ORDER BY e.notification_id, e.channel, e.outcome, e.timestamp, e.id`,
  `INSERT INTO analytics_channel_rollup (bucket, channel, ${CHANNEL_COLUMNS})
   SELECT date_bin('15 minutes', first_at, ${EPOCH}), channel, ${CHANNEL_COUNTS}
   FROM analytics_channel_firsts
   GROUP BY 1, 2
   ORDER BY 1, 2`,
];

/** The rollup tables' indexes that back no constraint: rebuildRollups drops them and recreates them from these definitions. */
export const ROLLUP_SECONDARY_INDEXES = `
SELECT i.indexname AS name, i.indexdef AS def FROM pg_indexes i
WHERE i.schemaname = current_schema()
  AND i.tablename IN ('analytics_firsts', 'analytics_rollup', 'analytics_group_stats', 'analytics_channel_firsts', 'analytics_channel_rollup')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.connamespace = current_schema()::regnamespace)
ORDER BY i.indexname`;
