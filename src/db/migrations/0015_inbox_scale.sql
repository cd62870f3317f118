-- Issue 18: a type-filtered inbox page and its capped total by index, at any
-- table size. Without it both walked the user's rows (or, as PGlite's planner
-- chose at 2M rows, the whole table by a sequential scan: its pages are read
-- through a small ring buffer, from the file again on every request) to find
-- the type's newest ones; with it they read one index range, newest first.
CREATE INDEX notifications_inbox_type_idx ON notifications (user_id, type, seq DESC) WHERE in_app;

-- Issue 18: the read-all race. A creation takes its seq when its row is
-- formed, but counts itself (and locks the user's inbox_state row) only at
-- the end of its statement. A read-all that ran in between (its lock free,
-- the row not yet visible to it) moved the watermark to the newest seq it
-- could see, above that row's: the row committed after the read-all would
-- then be read by the watermark without the user having seen it. Now the
-- creation, once it holds the lock, finds its unread rows at or below the
-- watermark (a read-all committed while they were being written) and marks
-- them unread explicitly (marked_unread, the exception the watermark already
-- knows: unread whatever the watermark, cleared by the next read-all); that
-- update counts itself through notifications_inbox_update like any other.
-- inbox_state_apply returns those seqs: the unread seqs it added that are at
-- or below their user's watermark, which it already compares under the lock
-- (no second pass over the statement's rows). Only the insert trigger uses
-- them: a row an update brings back below the watermark is read by it.
DROP FUNCTION inbox_state_apply(inbox_change[]);
CREATE FUNCTION inbox_state_apply(changes inbox_change[]) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
  late bigint[];
BEGIN
  IF COALESCE(cardinality(changes), 0) = 0 THEN
    RETURN '{}';
  END IF;
  INSERT INTO inbox_state (user_id)
  SELECT DISTINCT c.user_id FROM unnest(changes) c ORDER BY 1
  ON CONFLICT (user_id) DO NOTHING;
  PERFORM 1 FROM inbox_state s WHERE s.user_id IN (SELECT c.user_id FROM unnest(changes) c) ORDER BY s.user_id FOR UPDATE;
  WITH applied AS (
    UPDATE inbox_state s
       SET in_app_count = s.in_app_count + d.in_app,
           archived_count = s.archived_count + d.archived,
           unread_count = s.unread_count + d.pinned
             + (SELECT count(*) FROM unnest(d.plus) x WHERE x > s.read_through_seq)
             - (SELECT count(*) FROM unnest(d.minus) x WHERE x > s.read_through_seq),
           archived_unread_count = s.archived_unread_count + d.archived_pinned
             + (SELECT count(*) FROM unnest(d.archived_plus) x WHERE x > s.read_through_seq)
             - (SELECT count(*) FROM unnest(d.archived_minus) x WHERE x > s.read_through_seq)
      FROM (
        SELECT c.user_id,
               COALESCE(sum(c.sign) FILTER (WHERE c.in_app), 0) AS in_app,
               COALESCE(sum(c.sign) FILTER (WHERE c.in_app AND c.archived), 0) AS archived,
               -- Marked unread: unread whatever the watermark.
               COALESCE(sum(c.sign) FILTER (WHERE c.in_app AND NOT c.read AND c.marked_unread AND NOT c.archived), 0) AS pinned,
               COALESCE(sum(c.sign) FILTER (WHERE c.in_app AND NOT c.read AND c.marked_unread AND c.archived), 0) AS archived_pinned,
               -- Otherwise unread only above the watermark: their seqs, compared under the lock.
               array_agg(c.seq) FILTER (WHERE c.sign > 0 AND c.in_app AND NOT c.read AND NOT c.marked_unread AND NOT c.archived) AS plus,
               array_agg(c.seq) FILTER (WHERE c.sign < 0 AND c.in_app AND NOT c.read AND NOT c.marked_unread AND NOT c.archived) AS minus,
               array_agg(c.seq) FILTER (WHERE c.sign > 0 AND c.in_app AND NOT c.read AND NOT c.marked_unread AND c.archived) AS archived_plus,
               array_agg(c.seq) FILTER (WHERE c.sign < 0 AND c.in_app AND NOT c.read AND NOT c.marked_unread AND c.archived) AS archived_minus
          FROM unnest(changes) c
         GROUP BY c.user_id
      ) d
     WHERE s.user_id = d.user_id
    RETURNING ARRAY(SELECT x FROM unnest(d.plus || d.archived_plus) x WHERE x <= s.read_through_seq) AS late
  )
  SELECT COALESCE(array_agg(x), '{}') INTO late FROM applied, unnest(applied.late) x;
  RETURN late;
END
$$;

CREATE OR REPLACE FUNCTION inbox_state_follow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  late bigint[];
BEGIN
  late := inbox_state_apply(ARRAY(
    SELECT ROW(n.user_id, 1, n.in_app, n.archived, n.read, n.marked_unread, n.seq)::inbox_change FROM new_rows n));
  IF cardinality(late) > 0 THEN
    UPDATE notifications SET marked_unread = true WHERE seq = ANY(late);
  END IF;
  RETURN NULL;
END
$$;
