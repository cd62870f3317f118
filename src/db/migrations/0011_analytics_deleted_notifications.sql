-- Issue 16.10 and 16.11: analytics must keep a notification's type, group and
-- title after the notification row is deleted, for events still waiting in an
-- ingest buffer (on this instance or another) and for rebuildRollups.
-- A rule, not a trigger (the migration runner of the time split files on
-- semicolons and could not take a function body): the copy is
-- written in the deleting statement's own transaction, so any reader sees
-- either the notification or its copy, never neither. The rule makes a DELETE
-- of notifications inside a WITH clause an error: delete with a plain statement.
CREATE TABLE analytics_deleted_notifications (
  notification_id    uuid PRIMARY KEY,
  notification_type  text NOT NULL,
  group_id           uuid NOT NULL,
  title              text
);

CREATE RULE analytics_keep_deleted_notification AS ON DELETE TO notifications
  DO ALSO INSERT INTO analytics_deleted_notifications (notification_id, notification_type, group_id, title)
  VALUES (OLD.id, OLD.type, COALESCE(OLD.broadcast_id, OLD.id), OLD.title)
  ON CONFLICT (notification_id) DO NOTHING;

-- Notifications deleted before this migration: what the ingest recorded.
INSERT INTO analytics_deleted_notifications (notification_id, notification_type, group_id, title)
SELECT DISTINCT ON (f.notification_id) f.notification_id, f.notification_type, f.group_id, g.title
FROM analytics_firsts f LEFT JOIN analytics_group_stats g ON g.group_id = f.group_id
WHERE f.notification_type <> 'unknown' AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.id = f.notification_id)
ORDER BY f.notification_id;

-- A group is a broadcast when it is not a notification's own id: stored, since
-- "no notification has this id" is also true of a deleted single notification.
ALTER TABLE analytics_group_stats ADD COLUMN broadcast boolean NOT NULL DEFAULT false;
UPDATE analytics_group_stats g SET broadcast = true
WHERE EXISTS (SELECT 1 FROM analytics_firsts f WHERE f.group_id = g.group_id AND f.notification_id <> f.group_id);
