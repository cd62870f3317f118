-- Issue 18, part 3: archive all in constant time, the way mark all read
-- works (migrations 0012 and 0015). Per user, inbox_state gains an archive
-- watermark: every in-app notification with seq <= archived_through_seq is
-- archived (archive all moves it: one row, whatever the inbox size), unless it
-- was unarchived afterwards (notifications.marked_unarchived, cleared by the
-- next archive all, which archives it explicitly). Archived state is
-- therefore: archived OR (in_app AND NOT marked_unarchived AND seq <=
-- archived_through_seq), which notification_is_archived() below spells once.
-- Rows above the watermark keep using the partial indexes whose predicate
-- says `archived = false`: the inbox reads them as a seq range above it, and
-- the few marked unarchived below it by their own small index.
ALTER TABLE inbox_state
  ADD COLUMN archived_through_seq bigint NOT NULL DEFAULT 0,
  ADD COLUMN archived_all_at timestamptz;
ALTER TABLE notifications ADD COLUMN marked_unarchived boolean NOT NULL DEFAULT false;

CREATE INDEX notifications_marked_unarchived_idx ON notifications (user_id, seq DESC) WHERE marked_unarchived;

CREATE FUNCTION notification_is_archived(n notifications) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT n.archived OR (n.in_app AND NOT n.marked_unarchived AND EXISTS (
    SELECT 1 FROM inbox_state s WHERE s.user_id = n.user_id AND n.seq <= s.archived_through_seq))
$$;

-- The counts now classify each changed row by both watermarks. The change
-- carries marked_unarchived; the apply compares each row with its user's
-- watermarks once the rows are locked (a later statement, a fresh snapshot:
-- a read-all or archive-all that committed while we waited is seen).
DROP FUNCTION inbox_state_apply(inbox_change[]);
DROP TYPE inbox_change;
CREATE TYPE inbox_change AS (user_id text, sign integer, in_app boolean, archived boolean, read boolean,
                             marked_unread boolean, marked_unarchived boolean, seq bigint);

-- The creation-vs-bulk race of migration 0015, for both watermarks: a row a
-- creation adds at or below a watermark that moved while the row was being
-- written (the bulk change did not see it, nor did the user) is returned
-- here, and the insert trigger marks it unread (late_unread) and/or
-- unarchived (late_unarchived), the exceptions the watermarks already know.
CREATE FUNCTION inbox_state_apply(changes inbox_change[], OUT late_unread bigint[], OUT late_unarchived bigint[]) LANGUAGE plpgsql AS $$
BEGIN
  late_unread := '{}';
  late_unarchived := '{}';
  IF COALESCE(cardinality(changes), 0) = 0 THEN
    RETURN;
  END IF;
  INSERT INTO inbox_state (user_id)
  SELECT DISTINCT c.user_id FROM unnest(changes) c ORDER BY 1
  ON CONFLICT (user_id) DO NOTHING;
  PERFORM 1 FROM inbox_state s WHERE s.user_id IN (SELECT c.user_id FROM unnest(changes) c) ORDER BY s.user_id FOR UPDATE;
  WITH c AS (
    SELECT c.user_id, c.sign, c.seq,
           c.read OR (NOT c.marked_unread AND c.seq <= s.read_through_seq) AS is_read,
           c.archived OR (NOT c.marked_unarchived AND c.seq <= s.archived_through_seq) AS is_archived,
           c.sign > 0 AND NOT c.read AND NOT c.marked_unread AND c.seq <= s.read_through_seq AS below_read,
           c.sign > 0 AND NOT c.archived AND NOT c.marked_unarchived AND c.seq <= s.archived_through_seq AS below_archive
      FROM unnest(changes) c JOIN inbox_state s ON s.user_id = c.user_id
     -- Over in-app rows only (what the inbox lists, and what the watermarks cover).
     WHERE c.in_app
  ), d AS (
    SELECT user_id,
           sum(sign) AS in_app,
           COALESCE(sum(sign) FILTER (WHERE is_archived), 0) AS archived,
           COALESCE(sum(sign) FILTER (WHERE NOT is_read AND NOT is_archived), 0) AS unread,
           COALESCE(sum(sign) FILTER (WHERE NOT is_read AND is_archived), 0) AS archived_unread
      FROM c GROUP BY user_id
  ), applied AS (
    UPDATE inbox_state s
       SET in_app_count = s.in_app_count + d.in_app,
           archived_count = s.archived_count + d.archived,
           unread_count = s.unread_count + d.unread,
           archived_unread_count = s.archived_unread_count + d.archived_unread
      FROM d
     WHERE s.user_id = d.user_id
  )
  SELECT COALESCE(array_agg(seq) FILTER (WHERE below_read), '{}'), COALESCE(array_agg(seq) FILTER (WHERE below_archive), '{}')
    INTO late_unread, late_unarchived
    FROM c;
END
$$;

CREATE OR REPLACE FUNCTION inbox_state_follow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  late record;
BEGIN
  SELECT * INTO late FROM inbox_state_apply(ARRAY(
    SELECT ROW(n.user_id, 1, n.in_app, n.archived, n.read, n.marked_unread, n.marked_unarchived, n.seq)::inbox_change FROM new_rows n));
  IF cardinality(late.late_unread) > 0 OR cardinality(late.late_unarchived) > 0 THEN
    UPDATE notifications
       SET marked_unread = marked_unread OR seq = ANY(late.late_unread),
           marked_unarchived = marked_unarchived OR seq = ANY(late.late_unarchived)
     WHERE seq = ANY(late.late_unread || late.late_unarchived);
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION inbox_state_follow_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM inbox_state_apply(ARRAY(
    SELECT ROW(x.user_id, x.sign, x.in_app, x.archived, x.read, x.marked_unread, x.marked_unarchived, x.seq)::inbox_change
      FROM old_rows o JOIN new_rows n ON n.id = o.id
     CROSS JOIN LATERAL (VALUES
       (o.user_id, -1, o.in_app, o.archived, o.read, o.marked_unread, o.marked_unarchived, o.seq),
       (n.user_id, 1, n.in_app, n.archived, n.read, n.marked_unread, n.marked_unarchived, n.seq)
     ) x(user_id, sign, in_app, archived, read, marked_unread, marked_unarchived, seq)
     WHERE (o.user_id, o.in_app, o.archived, o.read, o.marked_unread, o.marked_unarchived, o.seq)
           IS DISTINCT FROM (n.user_id, n.in_app, n.archived, n.read, n.marked_unread, n.marked_unarchived, n.seq)));
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION inbox_state_follow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM inbox_state_apply(ARRAY(
    SELECT ROW(o.user_id, -1, o.in_app, o.archived, o.read, o.marked_unread, o.marked_unarchived, o.seq)::inbox_change FROM old_rows o));
  RETURN NULL;
END
$$;
