-- Out-of-app channels (issue 8). Members of an hourly bundle wait as 'held'
-- rows and are gathered by (user, channel) when their bundle row is sent.
CREATE INDEX notification_queue_held_idx ON notification_queue (user_id, channel) WHERE status = 'held';
-- GET /api/admin/queue filters by status, most recently changed first.
CREATE INDEX notification_queue_status_idx ON notification_queue (status, updated_at DESC);
