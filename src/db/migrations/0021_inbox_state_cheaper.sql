-- Issue 17: the inbox counts (0012, 0015, 0017) for less work per creation.
-- A creation's statement trigger was a quarter of all PGlite time per
-- created-and-delivered notification: 0.65-1.45 ms per batch of ~5 rows in
-- inbox_state_apply, which built an inbox_change[] from the transition table,
-- unnested it three times and ran three statements (create the inbox_state
-- rows, lock them in user order, then classify every row by the watermarks
-- read under the lock, update, collect the late rows): each statement a fixed
-- executor start in WebAssembly, the classification a join per row.
--
-- Now one statement does the common case: INSERT ... SELECT ... ORDER BY
-- user_id ON CONFLICT (user_id) DO UPDATE creates each missing inbox_state
-- row and locks each existing one in user order (concurrent multi-user
-- statements still cannot deadlock on them), and adds per-user counts that
-- assume every row is above both watermarks: then a row's state is its own
-- columns. The DO UPDATE evaluates its SET against the row it locked, in
-- READ COMMITTED the newest version (one that changed while we waited is
-- locked and read anew), so RETURNING gives the watermarks under the lock, as
-- the separate later statement did. A new row at or below one of them (the
-- read-all / archive-all race of 0015 and 0017), or an old row a read,
-- archive or delete changes below them (through inbox_state_apply), is the
-- uncommon case: only when some locked watermark reaches the statement's lowest
-- seq does a second statement, inbox_state_behind, correct the counts for the
-- rows at or below their user's watermarks (by the difference between their
-- state by the watermarks and by their columns) and return the late seqs,
-- which the insert trigger marks unread / unarchived as before. The insert
-- trigger reads new_rows directly (no array). The update trigger is
-- unchanged: a delivery mark still builds an empty array and returns at once.
-- Measured by bench/inbox-trigger.ts (CPU per created notification in us,
-- median of 5 interleaved rounds of 3,000 rows; "off" is the INSERT with the
-- inbox trigger disabled; PostgreSQL 15's is the backend's CPU):
--   batch     PGlite old / new / off       PostgreSQL old / new / off
--       1       1039 /  413 / 278             802 / 472 / 397
--       5        256 /  105 /  76             217 / 120 /  97
--      16         76 /   58 /  55              87 /  77 /  61
-- The trigger's own share (minus off) fell to 0.15-0.18 of 0017's on PGlite,
-- 0.18-0.19 on PostgreSQL for batches of 1 and 5 (0.63 for 16).

-- Corrects the counts for the rows of `changes` at or below one of their
-- user's watermarks (read under the lock the caller holds on every user of
-- `changes`), which inbox_state_apply or the insert trigger counted by the
-- rows' own columns, and returns the seqs an addition put at or below a
-- watermark without being marked (0017). A row above both watermarks needs
-- no correction: the caller may pass more rows than need one.
CREATE FUNCTION inbox_state_behind(changes inbox_change[], OUT late_unread bigint[], OUT late_unarchived bigint[]) LANGUAGE plpgsql AS $$
BEGIN
  WITH c AS (
    SELECT c.user_id, c.sign, c.seq, c.read, c.archived,
           c.read OR (NOT c.marked_unread AND c.seq <= s.read_through_seq) AS is_read,
           c.archived OR (NOT c.marked_unarchived AND c.seq <= s.archived_through_seq) AS is_archived,
           c.sign > 0 AND NOT c.read AND NOT c.marked_unread AND c.seq <= s.read_through_seq AS below_read,
           c.sign > 0 AND NOT c.archived AND NOT c.marked_unarchived AND c.seq <= s.archived_through_seq AS below_archive
      FROM unnest(changes) c JOIN inbox_state s ON s.user_id = c.user_id
     WHERE c.in_app AND c.seq <= GREATEST(s.read_through_seq, s.archived_through_seq)
  ), d AS (
    SELECT user_id,
           sum(sign * (is_archived::int - archived::int)) AS archived,
           sum(sign * ((NOT is_read AND NOT is_archived)::int - (NOT read AND NOT archived)::int)) AS unread,
           sum(sign * ((NOT is_read AND is_archived)::int - (NOT read AND archived)::int)) AS archived_unread
      FROM c GROUP BY user_id
  ), applied AS (
    UPDATE inbox_state s
       SET archived_count = s.archived_count + d.archived,
           unread_count = s.unread_count + d.unread,
           archived_unread_count = s.archived_unread_count + d.archived_unread
      FROM d
     WHERE s.user_id = d.user_id AND (d.archived, d.unread, d.archived_unread) <> (0, 0, 0)
  )
  SELECT COALESCE(array_agg(seq) FILTER (WHERE below_read), '{}'), COALESCE(array_agg(seq) FILTER (WHERE below_archive), '{}')
    INTO late_unread, late_unarchived
    FROM c;
END
$$;

CREATE OR REPLACE FUNCTION inbox_state_apply(changes inbox_change[], OUT late_unread bigint[], OUT late_unarchived bigint[]) LANGUAGE plpgsql AS $$
DECLARE
  top bigint;
BEGIN
  late_unread := '{}';
  late_unarchived := '{}';
  IF COALESCE(cardinality(changes), 0) = 0 THEN
    RETURN;
  END IF;
  WITH locked AS (
    INSERT INTO inbox_state AS s (user_id, in_app_count, archived_count, unread_count, archived_unread_count)
    SELECT c.user_id,
           COALESCE(sum(c.sign) FILTER (WHERE c.in_app), 0),
           COALESCE(sum(c.sign) FILTER (WHERE c.in_app AND c.archived), 0),
           COALESCE(sum(c.sign) FILTER (WHERE c.in_app AND NOT c.read AND NOT c.archived), 0),
           COALESCE(sum(c.sign) FILTER (WHERE c.in_app AND NOT c.read AND c.archived), 0)
      FROM unnest(changes) c
     GROUP BY c.user_id
     ORDER BY c.user_id
    ON CONFLICT (user_id) DO UPDATE
       SET in_app_count = s.in_app_count + EXCLUDED.in_app_count,
           archived_count = s.archived_count + EXCLUDED.archived_count,
           unread_count = s.unread_count + EXCLUDED.unread_count,
           archived_unread_count = s.archived_unread_count + EXCLUDED.archived_unread_count
    RETURNING s.user_id, GREATEST(s.read_through_seq, s.archived_through_seq) AS watermark
  )
  SELECT max(watermark) INTO top
    FROM locked
   WHERE watermark >= (SELECT min(c.seq) FROM unnest(changes) c WHERE c.in_app);
  IF top IS NOT NULL THEN
    SELECT * INTO late_unread, late_unarchived
      FROM inbox_state_behind(ARRAY(SELECT c FROM unnest(changes) c WHERE c.in_app AND c.seq <= top));
  END IF;
END
$$;

-- A creation's rows are counted straight from the transition table; a user
-- with no in-app row among them gets its inbox_state row (as before) and the
-- lock, but no new row version.
CREATE OR REPLACE FUNCTION inbox_state_follow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  top bigint;
  late record;
BEGIN
  WITH locked AS (
    INSERT INTO inbox_state AS s (user_id, in_app_count, archived_count, unread_count, archived_unread_count)
    SELECT n.user_id,
           count(*) FILTER (WHERE n.in_app),
           count(*) FILTER (WHERE n.in_app AND n.archived),
           count(*) FILTER (WHERE n.in_app AND NOT n.read AND NOT n.archived),
           count(*) FILTER (WHERE n.in_app AND NOT n.read AND n.archived)
      FROM new_rows n
     GROUP BY n.user_id
     ORDER BY n.user_id
    ON CONFLICT (user_id) DO UPDATE
       SET in_app_count = s.in_app_count + EXCLUDED.in_app_count,
           archived_count = s.archived_count + EXCLUDED.archived_count,
           unread_count = s.unread_count + EXCLUDED.unread_count,
           archived_unread_count = s.archived_unread_count + EXCLUDED.archived_unread_count
     WHERE EXCLUDED.in_app_count > 0
    RETURNING s.user_id, GREATEST(s.read_through_seq, s.archived_through_seq) AS watermark
  )
  SELECT max(watermark) INTO top
    FROM locked
   WHERE watermark >= (SELECT min(n.seq) FROM new_rows n WHERE n.in_app);
  IF top IS NOT NULL THEN
    SELECT * INTO late FROM inbox_state_behind(ARRAY(
      SELECT ROW(n.user_id, 1, n.in_app, n.archived, n.read, n.marked_unread, n.marked_unarchived, n.seq)::inbox_change
        FROM new_rows n WHERE n.in_app AND n.seq <= top));
    IF cardinality(late.late_unread) > 0 OR cardinality(late.late_unarchived) > 0 THEN
      UPDATE notifications
         SET marked_unread = marked_unread OR seq = ANY(late.late_unread),
             marked_unarchived = marked_unarchived OR seq = ANY(late.late_unarchived)
       WHERE seq = ANY(late.late_unread || late.late_unarchived);
    END IF;
  END IF;
  RETURN NULL;
END
$$;
