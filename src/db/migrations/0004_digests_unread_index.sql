-- A digest reads one user's unread, unarchived notifications in a time range,
-- newest first; without this the planner walks the created_at index across
-- every user's notifications of the window.
CREATE INDEX notifications_digest_idx ON notifications (user_id, created_at DESC, seq DESC) WHERE read = false AND archived = false;
