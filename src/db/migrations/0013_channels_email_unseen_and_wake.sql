-- E-mail of normal and low priority under frequency 'immediate' waits to be
-- seen in-app ('unseen', the default: docs/delivery.md, rule 3) or goes at
-- once ('always', Herald's behaviour before this migration).
ALTER TABLE notification_preferences
  ADD COLUMN email_immediate text NOT NULL DEFAULT 'unseen' CHECK (email_immediate IN ('unseen', 'always'));

-- Wakes the delivery workers of every instance (LISTEN herald_queue) when a
-- statement queues sends that are due now, instead of leaving them to the
-- next poll. NOTIFY is delivered at commit, once per transaction, and only
-- wakes: the table stays the truth, and the poll remains the safety net.
-- The margin allows for the application's clock being ahead of the database's.
CREATE FUNCTION herald_queue_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM queued WHERE status = 'pending' AND next_retry_at <= clock_timestamp() + interval '5 seconds') THEN
    PERFORM pg_notify('herald_queue', '');
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER notification_queue_wake AFTER INSERT ON notification_queue
  REFERENCING NEW TABLE AS queued FOR EACH STATEMENT EXECUTE FUNCTION herald_queue_wake();
