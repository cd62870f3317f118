-- Herald schema, version 1: the guide's seven tables plus the user directory
-- and browser push subscriptions. Column names are snake_case; queries alias
-- them to the guide's camelCase fields (e.g. NOTIFICATION_COLUMNS).

CREATE TABLE users (
  id          text PRIMARY KEY,
  email       text,
  phone       text,
  name        text,
  timezone    text NOT NULL DEFAULT 'UTC',
  locale      text NOT NULL DEFAULT 'en',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Monotonic position used as the sync cursor (order of creation).
  seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  user_id          text NOT NULL,
  type             text NOT NULL,
  priority         text NOT NULL,
  title            text NOT NULL,
  message          text NOT NULL,
  description      text,
  icon             text,
  action_url       text,
  action_label     text,
  read             boolean NOT NULL DEFAULT false,
  archived         boolean NOT NULL DEFAULT false,
  delivery_status  text NOT NULL DEFAULT 'pending',
  sent_at          timestamptz,
  delivered_at     timestamptz,
  read_at          timestamptz,
  related_id       text,
  data             jsonb,
  idempotency_key  text,
  broadcast_id     uuid,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
-- Guide indexes (userId, type, createdAt); the inbox page and sync read
-- (user_id, seq), the badge reads the partial unread index.
CREATE INDEX notifications_user_seq_idx ON notifications (user_id, seq DESC);
CREATE INDEX notifications_type_idx ON notifications (type);
CREATE INDEX notifications_created_at_idx ON notifications (created_at);
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE read = false AND archived = false;
CREATE INDEX notifications_undelivered_idx ON notifications (user_id, seq) WHERE delivery_status IN ('pending', 'sent');
CREATE UNIQUE INDEX notifications_idempotency_idx ON notifications (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE notification_preferences (
  id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id                    text NOT NULL UNIQUE,
  in_app_enabled             boolean NOT NULL DEFAULT true,
  email_enabled              boolean NOT NULL DEFAULT true,
  browser_push_enabled       boolean NOT NULL DEFAULT false,
  sms_enabled                boolean NOT NULL DEFAULT false,
  new_message_enabled        boolean NOT NULL DEFAULT true,
  booking_request_enabled    boolean NOT NULL DEFAULT true,
  booking_confirmed_enabled  boolean NOT NULL DEFAULT true,
  payment_received_enabled   boolean NOT NULL DEFAULT true,
  platform_update_enabled    boolean NOT NULL DEFAULT true,
  security_alert_enabled     boolean NOT NULL DEFAULT true,
  quiet_hours_enabled        boolean NOT NULL DEFAULT false,
  quiet_hours_start          text NOT NULL DEFAULT '22:00',
  quiet_hours_end            text NOT NULL DEFAULT '08:00',
  frequency                  text NOT NULL DEFAULT 'immediate',
  sound_enabled              boolean NOT NULL DEFAULT true,
  sound_volume               integer NOT NULL DEFAULT 70,
  desktop_notifications      boolean NOT NULL DEFAULT true,
  email_digest_enabled       boolean NOT NULL DEFAULT true,
  email_digest_frequency     text NOT NULL DEFAULT 'daily',
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE websocket_sessions (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id            text NOT NULL,
  instance_id        text NOT NULL,
  ip                 text,
  user_agent         text,
  connected_at       timestamptz NOT NULL DEFAULT now(),
  disconnected_at    timestamptz,
  disconnect_code    integer,
  disconnect_reason  text
);
CREATE INDEX websocket_sessions_user_idx ON websocket_sessions (user_id, connected_at DESC);
CREATE INDEX websocket_sessions_open_idx ON websocket_sessions (instance_id) WHERE disconnected_at IS NULL;

CREATE TABLE analytics_events (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  notification_id  uuid NOT NULL,
  user_id          text NOT NULL,
  event_type       text NOT NULL,
  timestamp        timestamptz NOT NULL DEFAULT now(),
  metadata         jsonb
);
CREATE INDEX analytics_events_notification_idx ON analytics_events (notification_id, event_type);
CREATE INDEX analytics_events_user_idx ON analytics_events (user_id, timestamp);
CREATE INDEX analytics_events_type_idx ON analytics_events (event_type);
CREATE INDEX analytics_events_timestamp_idx ON analytics_events (timestamp);

CREATE TABLE email_digests (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id             text NOT NULL,
  frequency           text NOT NULL,
  status              text NOT NULL DEFAULT 'pending',
  -- The window this digest covers ends at scheduled_for; (user, frequency,
  -- scheduled_for) is the exactly-once claim.
  scheduled_for       timestamptz NOT NULL,
  window_start        timestamptz,
  sent_at             timestamptz,
  email_address       text NOT NULL,
  subject             text,
  html_content        text,
  text_content        text,
  notification_count  integer NOT NULL DEFAULT 0,
  attempts            integer NOT NULL DEFAULT 0,
  next_attempt_at     timestamptz,
  lease_until         timestamptz,
  last_error          text,
  message_id          text,
  is_test             boolean NOT NULL DEFAULT false,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX email_digests_claim_idx ON email_digests (user_id, frequency, scheduled_for) WHERE is_test = false;
CREATE INDEX email_digests_user_idx ON email_digests (user_id, created_at DESC);
CREATE INDEX email_digests_due_idx ON email_digests (next_attempt_at) WHERE status = 'pending';

CREATE TABLE notification_queue (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  notification_id  uuid NOT NULL,
  user_id          text NOT NULL,
  channel          text NOT NULL,
  status           text NOT NULL DEFAULT 'pending',
  attempts         integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL DEFAULT 5,
  next_retry_at    timestamptz NOT NULL DEFAULT now(),
  locked_until     timestamptz,
  locked_by        text,
  last_error       text,
  payload          jsonb,
  sent_at          timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX notification_queue_once_idx ON notification_queue (notification_id, channel);
CREATE INDEX notification_queue_due_idx ON notification_queue (next_retry_at) WHERE status IN ('pending', 'processing');

CREATE TABLE notification_templates (
  id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  key                     text NOT NULL UNIQUE,
  type                    text NOT NULL,
  priority                text,
  title_template          text NOT NULL,
  message_template        text NOT NULL,
  description_template    text,
  icon                    text,
  action_url_template     text,
  action_label_template   text,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE push_subscriptions (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     text NOT NULL,
  endpoint    text NOT NULL UNIQUE,
  p256dh      text NOT NULL,
  auth        text NOT NULL,
  user_agent  text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_subscriptions_user_idx ON push_subscriptions (user_id);
