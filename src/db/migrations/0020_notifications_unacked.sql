-- Issue 17: delivery marks as HOT updates. notifications_undelivered_idx
-- (0001) named delivery_status in its predicate, so no delivery mark
-- (pending -> sent -> delivered, -> failed, failed -> sent) could be a HOT
-- update: each wrote a new entry into every index of notifications. What the
-- sync read from it (per user, by seq, what nobody has acknowledged: the
-- second branch of SYNC_BATCH, src/realtime/sync.ts) is now a side table, and
-- no index of notifications names a column a mark changes:
--  * notifications_unacked holds (user_id, seq) of exactly the rows with
--    in_app AND delivery_status IN ('pending', 'sent') (the sync reads only
--    in-app rows), kept so for every writer of notifications, present and
--    future, by statement-level triggers over the transition tables, in the
--    writer's own transaction, as inbox_state's are (0012);
--  * notifications gets fillfactor 85: room on each page for its rows' next
--    versions, so a mark soon after the creation can stay on the page (HOT).
-- Measured by bench/marks.ts (creation INSERTs of 16 and delivered marks of
-- 64, the two schemas' statements interleaved; median of 6 rounds of 4,096,
-- 0020 against every other migration): the share of HOT marks is what the
-- free room allows, as all rows of a page are marked by one statement at that
-- rate: 24% at fillfactor 85 (59% with creations of 4 and marks of 16). CPU
-- per notification, after / before: PostgreSQL 101% (94-126; the mark 95%,
-- the side table's insert +5% on the creation), PGlite 86% (74-97); WAL 99%.
-- A lower fillfactor buys more (PostgreSQL / PGlite CPU, WAL, HOT): 70: 99% /
-- 94%, 89%, 52%; 50: 90% / 86%, 73%, 93%; at the price of heap room that
-- VACUUM cannot give back to new rows (up to 2x at 50). PGlite runs no VACUUM:
-- there the side table keeps what it deletes (~80 bytes per notification
-- created, heap and index; the partial index cleaned itself on insert), and a
-- resume walks a user's deleted entries once, then skips them (killed items).

CREATE TABLE notifications_unacked (
  user_id  text NOT NULL,
  seq      bigint NOT NULL,
  PRIMARY KEY (user_id, seq)
);

-- No ON CONFLICT here: a new row's seq is new (notifications.seq is unique), so a conflict
-- would be a side row whose notification is gone, which the delete trigger prevents; its
-- speculative insertion cost ~5 us per creation on PostgreSQL.
CREATE FUNCTION notifications_unacked_follow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO notifications_unacked (user_id, seq)
  SELECT n.user_id, n.seq FROM new_rows n
   WHERE n.in_app AND n.delivery_status IN ('pending', 'sent');
  RETURN NULL;
END
$$;

-- An UPDATE: the keys that left the set (delivered, failed, in-app off) and those that entered
-- it (failed -> sent), found by counting each (user_id, seq) -1 in old_rows and +1 in new_rows
-- (a row whose key changed is a leave plus an enter; no Herald writer changes one). Only sums
-- that are not 0 remain: the usual UPDATE (a read, an archive, pending -> sent) changes nothing.
-- Not a join of old_rows to new_rows by id: a trigger's statements are planned once per
-- session, for the transition tables of the first statement that ran it, and after a one-row
-- UPDATE that plan was a nested loop, quadratic in the rows of every later statement (an
-- UPDATE of 20,000 rows took 37 s in inbox_state_follow_update, which joins so, and 68 s with
-- a second such join here; a grouping is linear whatever it was planned for).
-- The keys then go to the side table as arrays, parameters of its statements: planned for
-- any length (a generic plan counts 10 elements), those are index probes, where a join of the
-- transition table itself, planned after a first UPDATE of 5,000 rows, hashed the whole side
-- table for each later one-row mark (112 ms at 300,000 rows). An entering key that is somehow
-- there already is left as it is (ON CONFLICT DO NOTHING: rare, so cheap here).
CREATE FUNCTION notifications_unacked_follow_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  gone_users text[];
  gone_seqs bigint[];
  came_users text[];
  came_seqs bigint[];
BEGIN
  SELECT array_agg(d.user_id) FILTER (WHERE d.change < 0), array_agg(d.seq) FILTER (WHERE d.change < 0),
         array_agg(d.user_id) FILTER (WHERE d.change > 0), array_agg(d.seq) FILTER (WHERE d.change > 0)
    INTO gone_users, gone_seqs, came_users, came_seqs
    FROM (SELECT x.user_id, x.seq, sum(x.sign) AS change
            FROM (SELECT o.user_id, o.seq, -1 AS sign FROM old_rows o WHERE o.in_app AND o.delivery_status IN ('pending', 'sent')
                  UNION ALL
                  SELECT n.user_id, n.seq, 1 FROM new_rows n WHERE n.in_app AND n.delivery_status IN ('pending', 'sent')) x
           GROUP BY x.user_id, x.seq
          HAVING sum(x.sign) <> 0) d;
  IF gone_seqs IS NOT NULL THEN
    DELETE FROM notifications_unacked u
     USING unnest(gone_users, gone_seqs) AS g(user_id, seq)
     WHERE u.user_id = g.user_id AND u.seq = g.seq;
  END IF;
  IF came_seqs IS NOT NULL THEN
    INSERT INTO notifications_unacked (user_id, seq)
    SELECT * FROM unnest(came_users, came_seqs)
    ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION notifications_unacked_follow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  gone_users text[];
  gone_seqs bigint[];
BEGIN
  SELECT array_agg(o.user_id), array_agg(o.seq) INTO gone_users, gone_seqs
    FROM old_rows o WHERE o.in_app AND o.delivery_status IN ('pending', 'sent');
  IF gone_seqs IS NOT NULL THEN
    DELETE FROM notifications_unacked u
     USING unnest(gone_users, gone_seqs) AS g(user_id, seq)
     WHERE u.user_id = g.user_id AND u.seq = g.seq;
  END IF;
  RETURN NULL;
END
$$;

-- TRUNCATE has no transition table: everything goes (a DELETE, so a reader of the side table
-- never waits on, or deadlocks with, an ACCESS EXCLUSIVE lock).
CREATE FUNCTION notifications_unacked_follow_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM notifications_unacked;
  RETURN NULL;
END
$$;

CREATE TRIGGER notifications_unacked_insert AFTER INSERT ON notifications
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notifications_unacked_follow_insert();
CREATE TRIGGER notifications_unacked_update AFTER UPDATE ON notifications
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notifications_unacked_follow_update();
CREATE TRIGGER notifications_unacked_delete AFTER DELETE ON notifications
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION notifications_unacked_follow_delete();
CREATE TRIGGER notifications_unacked_truncate AFTER TRUNCATE ON notifications
  FOR EACH STATEMENT EXECUTE FUNCTION notifications_unacked_follow_truncate();

INSERT INTO notifications_unacked (user_id, seq)
SELECT user_id, seq FROM notifications WHERE in_app AND delivery_status IN ('pending', 'sent');

DROP INDEX notifications_undelivered_idx;
ALTER TABLE notifications SET (fillfactor = 85);
