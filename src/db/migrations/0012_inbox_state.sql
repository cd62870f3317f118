-- Issue 18: inboxes of any size. Per user, one inbox_state row holds
--  * the read watermark: every in-app notification with seq <= read_through_seq
--    is read (mark all read moves it: one row, whatever the inbox size), unless
--    it was marked unread afterwards (notifications.marked_unread);
--  * the counts the badge and list totals need, kept exactly in step with
--    every change of notifications by statement-level triggers, in the
--    changing statement's own transaction (creations, group inserts,
--    broadcasts, reads, archive, delete, and any writer still to come).
-- Read state is therefore: read OR (in_app AND NOT marked_unread AND seq <=
-- read_through_seq), which notification_is_read() below spells once for SQL
-- outside the inbox (digests, channel bundles).
ALTER TABLE notifications ADD COLUMN marked_unread boolean NOT NULL DEFAULT false;

CREATE TABLE inbox_state (
  user_id                text PRIMARY KEY,
  read_through_seq       bigint NOT NULL DEFAULT 0,
  read_all_at            timestamptz,
  -- Over in-app rows only (what the inbox lists).
  in_app_count           integer NOT NULL DEFAULT 0,
  archived_count         integer NOT NULL DEFAULT 0,
  -- Unread and not archived: the badge.
  unread_count           integer NOT NULL DEFAULT 0,
  archived_unread_count  integer NOT NULL DEFAULT 0
);

-- The unread list after a read-all: rows above the watermark by this index
-- (ordered, replacing the unordered notifications_inbox_unread_idx), rows
-- marked unread below it by the small marked index.
CREATE INDEX notifications_inbox_unread_seq_idx ON notifications (user_id, seq DESC) WHERE in_app AND read = false AND archived = false;
DROP INDEX notifications_inbox_unread_idx;
CREATE INDEX notifications_marked_unread_idx ON notifications (user_id, seq DESC) WHERE marked_unread;

CREATE FUNCTION notification_is_read(n notifications) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT n.read OR (n.in_app AND NOT n.marked_unread AND EXISTS (
    SELECT 1 FROM inbox_state s WHERE s.user_id = n.user_id AND n.seq <= s.read_through_seq))
$$;

-- When a watermark made it read: the read-all's time (read_at stays NULL on the row).
CREATE FUNCTION notification_read_at(n notifications) RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT COALESCE(n.read_at, CASE WHEN n.read THEN NULL ELSE (
    SELECT s.read_all_at FROM inbox_state s
     WHERE s.user_id = n.user_id AND n.in_app AND NOT n.marked_unread AND n.seq <= s.read_through_seq) END)
$$;

-- One changed row as the counts see it: +1 for its new state, -1 for its old one.
CREATE TYPE inbox_change AS (user_id text, sign integer, in_app boolean, archived boolean, read boolean, marked_unread boolean, seq bigint);

-- Applies a statement's changes to the counts. The rows are locked in user
-- order first (concurrent multi-user statements, broadcasts and group
-- inserts, cannot deadlock on them), and only then are the watermarks read,
-- by a later statement with a fresh snapshot: a read-all that committed while
-- we waited is seen, so a row at or below its new watermark counts as read.
CREATE FUNCTION inbox_state_apply(changes inbox_change[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF COALESCE(cardinality(changes), 0) = 0 THEN
    RETURN;
  END IF;
  INSERT INTO inbox_state (user_id)
  SELECT DISTINCT c.user_id FROM unnest(changes) c ORDER BY 1
  ON CONFLICT (user_id) DO NOTHING;
  PERFORM 1 FROM inbox_state s WHERE s.user_id IN (SELECT c.user_id FROM unnest(changes) c) ORDER BY s.user_id FOR UPDATE;
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
   WHERE s.user_id = d.user_id;
END
$$;

CREATE FUNCTION inbox_state_follow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM inbox_state_apply(ARRAY(
    SELECT ROW(n.user_id, 1, n.in_app, n.archived, n.read, n.marked_unread, n.seq)::inbox_change FROM new_rows n));
  RETURN NULL;
END
$$;

-- Every UPDATE of notifications fires it (transition tables cannot have a
-- column list); rows whose counted columns did not change (delivery status,
-- the usual update) are dropped before anything is locked.
CREATE FUNCTION inbox_state_follow_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM inbox_state_apply(ARRAY(
    SELECT ROW(x.user_id, x.sign, x.in_app, x.archived, x.read, x.marked_unread, x.seq)::inbox_change
      FROM old_rows o JOIN new_rows n ON n.id = o.id
     CROSS JOIN LATERAL (VALUES
       (o.user_id, -1, o.in_app, o.archived, o.read, o.marked_unread, o.seq),
       (n.user_id, 1, n.in_app, n.archived, n.read, n.marked_unread, n.seq)
     ) x(user_id, sign, in_app, archived, read, marked_unread, seq)
     WHERE (o.user_id, o.in_app, o.archived, o.read, o.marked_unread, o.seq)
           IS DISTINCT FROM (n.user_id, n.in_app, n.archived, n.read, n.marked_unread, n.seq)));
  RETURN NULL;
END
$$;

CREATE FUNCTION inbox_state_follow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM inbox_state_apply(ARRAY(
    SELECT ROW(o.user_id, -1, o.in_app, o.archived, o.read, o.marked_unread, o.seq)::inbox_change FROM old_rows o));
  RETURN NULL;
END
$$;

CREATE TRIGGER notifications_inbox_insert AFTER INSERT ON notifications
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION inbox_state_follow_insert();
CREATE TRIGGER notifications_inbox_update AFTER UPDATE ON notifications
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION inbox_state_follow_update();
CREATE TRIGGER notifications_inbox_delete AFTER DELETE ON notifications
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION inbox_state_follow_delete();

-- The counts of existing inboxes (no watermark yet: unread is the read column).
INSERT INTO inbox_state (user_id, in_app_count, archived_count, unread_count, archived_unread_count)
SELECT user_id,
       count(*) FILTER (WHERE in_app),
       count(*) FILTER (WHERE in_app AND archived),
       count(*) FILTER (WHERE in_app AND NOT read AND NOT archived),
       count(*) FILTER (WHERE in_app AND NOT read AND archived)
  FROM notifications
 GROUP BY user_id;
