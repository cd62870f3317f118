/**
 * The SQL that writes analytics: one statement per flush that appends the raw
 * events AND maintains the rollups of migration 0005, so readers never need
 * the raw table for metrics. Keep in step with rebuildRollups (rollups.ts)
 * and the backfill in 0005_analytics_rollups.sql.
 */

import { EVENT_TYPES } from "./events.js";

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
 * $1 notification ids, $2 user ids, $3 event types, $4 timestamps, $5 metadata.
 *
 * - `known`: each notification's type, group (broadcast id, else itself) and
 *   title, from `notifications`, else from the copy migration 0011 keeps of a
 *   deleted one, else from an earlier first of the same notification, else
 *   'unknown'. The copy is written by the DELETE itself, so events still
 *   buffered when their notification goes keep its real type.
 * - `candidates`: each event, plus the ones it implies (see IMPLIED).
 * - `firsts`: ON CONFLICT DO NOTHING makes "counted once" race-free between
 *   instances: only the flush that inserts a (notification, type) counts it.
 * - Rows are inserted in key order so concurrent flushes cannot deadlock.
 */
export const FLUSH_EVENTS = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[])
    AS t(notification_id, user_id, event_type, ts, metadata)
),
inserted AS (
  INSERT INTO analytics_events (notification_id, user_id, event_type, timestamp, metadata)
  SELECT notification_id, user_id, event_type, ts, metadata FROM input
),
known AS (
  SELECT i.notification_id,
         COALESCE(n.type, d.notification_type, f.notification_type, 'unknown') AS notification_type,
         COALESCE(n.broadcast_id, n.id, d.group_id, f.group_id, i.notification_id) AS group_id,
         COALESCE(n.title, d.title) AS title
  FROM (SELECT DISTINCT notification_id FROM input) i
  LEFT JOIN notifications n ON n.id = i.notification_id
  LEFT JOIN analytics_deleted_notifications d ON d.notification_id = i.notification_id
  LEFT JOIN LATERAL (
    SELECT notification_type, group_id FROM analytics_firsts
    WHERE notification_id = i.notification_id AND notification_type <> 'unknown' LIMIT 1
  ) f ON true
),
candidates AS (
  SELECT notification_id, event_type, min(user_id) AS user_id, min(ts) AS first_at
  FROM (${IMPLIED("input", "ts")}) x GROUP BY notification_id, event_type
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
    FROM input i JOIN known k USING (notification_id)
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
)
SELECT count(*)::int AS firsts FROM firsts`;

/**
 * Recomputes every rollup from analytics_events (bulk loads, repairs); run by
 * rebuildRollups (rollups.ts) in one transaction with the rollup tables'
 * secondary indexes dropped. Each statement is one set-based pass, and each
 * inserts in its table's primary-key order, so the key index is appended to
 * rather than updated at random.
 */
export const REBUILD_ROLLUPS = [
  "TRUNCATE analytics_firsts, analytics_rollup, analytics_group_stats",
  `INSERT INTO analytics_firsts (notification_id, event_type, user_id, notification_type, group_id, first_at)
   SELECT DISTINCT ON (e.notification_id, e.event_type)
          e.notification_id, e.event_type, e.user_id, COALESCE(n.type, d.notification_type, 'unknown'),
          COALESCE(n.broadcast_id, d.group_id, e.notification_id), e.timestamp
   FROM (${IMPLIED("analytics_events", "timestamp", "id")}) e
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
];

/** The rollup tables' indexes that back no constraint: rebuildRollups drops them and recreates them from these definitions. */
export const ROLLUP_SECONDARY_INDEXES = `
SELECT i.indexname AS name, i.indexdef AS def FROM pg_indexes i
WHERE i.schemaname = current_schema() AND i.tablename IN ('analytics_firsts', 'analytics_rollup', 'analytics_group_stats')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.connamespace = current_schema()::regnamespace)
ORDER BY i.indexname`;
