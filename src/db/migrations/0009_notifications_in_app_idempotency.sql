-- Issue 16.2: the in-app decision is stored on the row. A notification the
-- user's inAppEnabled kept out of the app (in_app = false) stays for the
-- digest and the out-of-app channels but is never listed, counted or synced.
-- A constant default makes this a catalogue-only change on PostgreSQL 11+.
ALTER TABLE notifications ADD COLUMN in_app boolean NOT NULL DEFAULT true;
-- The inbox page, total and sync keep using notifications_user_seq_idx with in_app as a filter:
-- rows kept out of the app are rare, and a second (user_id, seq) index cost every creation a write.
-- The unread badge, replacing notifications_unread_idx (every count now filters in_app).
CREATE INDEX notifications_inbox_unread_idx ON notifications (user_id) WHERE in_app AND read = false AND archived = false;
DROP INDEX notifications_unread_idx;

-- Issue 16.13: idempotency keys outlive their notification, so a replay after
-- the user deleted it is recognised and never creates it again. Scope: the
-- recipient user (as before). request_hash binds the key to the content it
-- first created (NULL for keys carried over from notification rows: any
-- content matches). Kept for the retention stated in README (7 days).
CREATE TABLE idempotency_keys (
  user_id          text NOT NULL,
  key              text NOT NULL,
  notification_id  uuid NOT NULL,
  request_hash     text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
INSERT INTO idempotency_keys (user_id, key, notification_id, created_at)
  SELECT user_id, idempotency_key, id, created_at FROM notifications WHERE idempotency_key IS NOT NULL;
DROP INDEX notifications_idempotency_idx;
