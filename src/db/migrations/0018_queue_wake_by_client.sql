-- Issue 17: NOTIFY serializes commits. At commit, a transaction that sent a
-- NOTIFY takes a database-wide lock until its commit record is flushed, so
-- two notifying transactions never share a WAL flush: under load every
-- group-committed creation batch (whose high-priority e-mail is due now)
-- waited for the previous batch's fsync (wait event Lock/object in
-- pg_stat_activity, 13% of the batch INSERT's time). A session that wakes
-- the workers itself after its commit (the creation batch writer's
-- connections: src/notifications/group-insert.ts) says so with
-- herald.queue_wake = 'client', and its statements notify nobody; every
-- other session is woken by this trigger as before. The payload names the
-- schema the row was queued in (schemas sharing one database hear each
-- other's wakes; the workers ignore it).
CREATE OR REPLACE FUNCTION herald_queue_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('herald.queue_wake', true) IS DISTINCT FROM 'client'
     AND EXISTS (SELECT 1 FROM queued WHERE status = 'pending' AND next_retry_at <= clock_timestamp() + interval '5 seconds') THEN
    PERFORM pg_notify('herald_queue', current_schema());
  END IF;
  RETURN NULL;
END
$$;
