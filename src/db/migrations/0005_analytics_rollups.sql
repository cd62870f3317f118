-- Analytics rollups, maintained by the roll-up pass (src/analytics/roller.ts;
-- SQL in src/analytics/sql.ts: ROLL_UP, since migration 0016; before it, the
-- ingest's flush statement) so metric queries never scan the raw
-- events table. Definition kept by all three: a notification counts ONCE per
-- event type, at its first recorded event of that type (SPEC section 8).

-- One row per (notification, event type): when it first happened, with the
-- notification's type and group (broadcast id, else its own id) copied in so
-- per-user and by-type metrics need no join and survive deleted notifications.
CREATE TABLE analytics_firsts (
  notification_id    uuid NOT NULL,
  event_type         text NOT NULL,
  user_id            text NOT NULL,
  notification_type  text NOT NULL,
  group_id           uuid NOT NULL,
  first_at           timestamptz NOT NULL,
  PRIMARY KEY (notification_id, event_type)
);
CREATE INDEX analytics_firsts_user_idx ON analytics_firsts (user_id, first_at) INCLUDE (event_type, notification_type);
CREATE INDEX analytics_firsts_time_idx ON analytics_firsts (first_at);

-- Platform-wide counts per 15-minute UTC bucket and notification type. Every
-- real time zone offset is a multiple of 15 minutes, so a bucket never
-- straddles a local day, week or month boundary: trends in any zone are sums
-- of these rows. One column per event type (distinct notifications, i.e.
-- firsts) keeps the table six times shorter than a row per event type;
-- `events` counts raw events of every type.
CREATE TABLE analytics_rollup (
  bucket             timestamptz NOT NULL,
  notification_type  text NOT NULL,
  sent               integer NOT NULL DEFAULT 0,
  delivered          integer NOT NULL DEFAULT 0,
  opened             integer NOT NULL DEFAULT 0,
  clicked            integer NOT NULL DEFAULT 0,
  archived           integer NOT NULL DEFAULT 0,
  deleted            integer NOT NULL DEFAULT 0,
  events             integer NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, notification_type)
);

-- Per group (a broadcast, or a single notification) distinct counts: what
-- "top notifications" ranks. The delivered index lets a minimum sample skip
-- the long tail of single-recipient groups.
CREATE TABLE analytics_group_stats (
  group_id           uuid PRIMARY KEY,
  notification_type  text NOT NULL,
  title              text,
  sent               integer NOT NULL DEFAULT 0,
  delivered          integer NOT NULL DEFAULT 0,
  opened             integer NOT NULL DEFAULT 0,
  clicked            integer NOT NULL DEFAULT 0,
  archived           integer NOT NULL DEFAULT 0,
  deleted            integer NOT NULL DEFAULT 0
);
CREATE INDEX analytics_group_stats_delivered_idx ON analytics_group_stats (delivered);

-- Backfill from events recorded before this migration (same SQL as
-- src/analytics/rollups.ts: rebuildRollups).
INSERT INTO analytics_firsts (notification_id, event_type, user_id, notification_type, group_id, first_at)
SELECT DISTINCT ON (e.notification_id, e.event_type)
       e.notification_id, e.event_type, e.user_id, COALESCE(n.type, 'unknown'), COALESCE(n.broadcast_id, e.notification_id), e.timestamp
FROM analytics_events e LEFT JOIN notifications n ON n.id = e.notification_id
ORDER BY e.notification_id, e.event_type, e.timestamp, e.id;

INSERT INTO analytics_rollup (bucket, notification_type, sent, delivered, opened, clicked, archived, deleted, events)
SELECT bucket, notification_type,
       count(*) FILTER (WHERE kind = 'sent'), count(*) FILTER (WHERE kind = 'delivered'),
       count(*) FILTER (WHERE kind = 'opened'), count(*) FILTER (WHERE kind = 'clicked'),
       count(*) FILTER (WHERE kind = 'archived'), count(*) FILTER (WHERE kind = 'deleted'),
       count(*) FILTER (WHERE kind = 'event')
FROM (
  SELECT date_bin('15 minutes', first_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket, notification_type, event_type AS kind
  FROM analytics_firsts
  UNION ALL
  SELECT date_bin('15 minutes', e.timestamp, TIMESTAMPTZ '1970-01-01 00:00:00+00'), COALESCE(n.type, 'unknown'), 'event'
  FROM analytics_events e LEFT JOIN notifications n ON n.id = e.notification_id
) d
GROUP BY 1, 2;

INSERT INTO analytics_group_stats (group_id, notification_type, title, sent, delivered, opened, clicked, archived, deleted)
SELECT f.group_id, min(f.notification_type), min(n.title),
       count(*) FILTER (WHERE f.event_type = 'sent'), count(*) FILTER (WHERE f.event_type = 'delivered'),
       count(*) FILTER (WHERE f.event_type = 'opened'), count(*) FILTER (WHERE f.event_type = 'clicked'),
       count(*) FILTER (WHERE f.event_type = 'archived'), count(*) FILTER (WHERE f.event_type = 'deleted')
FROM analytics_firsts f LEFT JOIN notifications n ON n.id = f.notification_id
GROUP BY f.group_id;
