-- Per-device sync (SPEC 6.4): the highest seq each (user, device) has
-- acknowledged, so a device that reconnects without a cursor resumes from its
-- own acks and an ack from another device never hides a notification from it.
-- Rows are few per user: the realtime server keeps the most recently used
-- devices of a user and deletes the rest when it adds one.
CREATE TABLE device_cursors (
  user_id     text NOT NULL,
  device_id   text NOT NULL,
  acked_seq   bigint NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, device_id)
);
