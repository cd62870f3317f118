-- Issue 19.7: analytics count every channel. Each sent, delivered or failed
-- event names its channel (in_app, email, push, sms, digest); the counts per
-- channel are kept beside the headline rollups of 0005, by the same roll-up
-- statement (src/analytics/sql.ts: ROLL_UP, since migration 0016) and rebuilt by
-- rebuildRollups. The headline tables are unchanged: a notification still
-- counts once per event type whatever the channels it went through.

ALTER TABLE analytics_events ADD COLUMN channel text;

-- Events recorded before: the channel was in the metadata ("websocket" is in_app).
UPDATE analytics_events
SET channel = CASE metadata->>'channel' WHEN 'websocket' THEN 'in_app' ELSE metadata->>'channel' END
WHERE event_type IN ('sent', 'delivered') AND metadata->>'channel' IN ('websocket', 'in_app', 'email', 'push', 'sms');

-- One row per (notification, channel, outcome), when it first happened. For
-- the digest channel the id is the digest's (a digest counts per e-mail).
-- A delivery on a channel proves a send on it, as in the headline.
CREATE TABLE analytics_channel_firsts (
  notification_id  uuid NOT NULL,
  channel          text NOT NULL,
  outcome          text NOT NULL,
  user_id          text NOT NULL,
  first_at         timestamptz NOT NULL,
  PRIMARY KEY (notification_id, channel, outcome)
);
CREATE INDEX analytics_channel_firsts_user_idx ON analytics_channel_firsts (user_id, first_at) INCLUDE (channel, outcome);
CREATE INDEX analytics_channel_firsts_time_idx ON analytics_channel_firsts (first_at);

-- Platform-wide counts per 15-minute UTC bucket and channel (as analytics_rollup).
CREATE TABLE analytics_channel_rollup (
  bucket     timestamptz NOT NULL,
  channel    text NOT NULL,
  sent       integer NOT NULL DEFAULT 0,
  delivered  integer NOT NULL DEFAULT 0,
  failed     integer NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, channel)
);

-- Backfill (same SQL as rebuildRollups).
INSERT INTO analytics_channel_firsts (notification_id, channel, outcome, user_id, first_at)
SELECT DISTINCT ON (e.notification_id, e.channel, e.outcome) e.notification_id, e.channel, e.outcome, e.user_id, e.timestamp
FROM (
  SELECT notification_id, channel, event_type AS outcome, user_id, timestamp, id FROM analytics_events
  WHERE channel IS NOT NULL AND event_type IN ('sent', 'delivered', 'failed')
  UNION ALL
  SELECT notification_id, channel, 'sent', user_id, timestamp, id FROM analytics_events
  WHERE channel IS NOT NULL AND event_type = 'delivered'
) e
ORDER BY e.notification_id, e.channel, e.outcome, e.timestamp, e.id;

INSERT INTO analytics_channel_rollup (bucket, channel, sent, delivered, failed)
SELECT date_bin('15 minutes', first_at, TIMESTAMPTZ '1970-01-01 00:00:00+00'), channel,
       count(*) FILTER (WHERE outcome = 'sent'), count(*) FILTER (WHERE outcome = 'delivered'), count(*) FILTER (WHERE outcome = 'failed')
FROM analytics_channel_firsts
GROUP BY 1, 2;
