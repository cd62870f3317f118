-- A notifications UPDATE's statement trigger (inbox_state_follow_update, 0017)
-- joins its transition tables by id. PL/pgSQL plans that statement once per
-- session and keeps the plan, sized for the transition tables of the first
-- UPDATE it ran for: after a delivery mark of a few rows, a nested loop. A
-- later UPDATE of many rows on the same connection (the sent marks of a
-- broadcast, a reconnect storm's acks) then compared every old row with every
-- new one: 20,000 rows after one-row UPDATEs took 44 s on PostgreSQL and 72 s
-- on PGlite (1.0 and 1.1 s with this), holding their row locks throughout
-- (bench/RESULTS.md; test/notifications/inbox-update-join.test.ts).
-- An UPDATE of more than 64 rows now plans its join anew (EXECUTE), for its
-- own rows; smaller ones keep the cached plan, cheap for a delivery mark (a
-- join-free form, grouping old and new rows, was measured 15-20% slower per
-- 16-row mark on PGlite). The SELECT is written twice on purpose (keep the
-- two identical): PL/pgSQL caches the plan of the static one, EXECUTE plans
-- its string each time; a function or view cannot read the transition tables.
CREATE OR REPLACE FUNCTION inbox_state_follow_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT count(*) FROM (SELECT 1 FROM new_rows LIMIT 65) n) <= 64 THEN
    PERFORM inbox_state_apply(ARRAY(
      SELECT ROW(x.user_id, x.sign, x.in_app, x.archived, x.read, x.marked_unread, x.marked_unarchived, x.seq)::inbox_change
        FROM old_rows o JOIN new_rows n ON n.id = o.id
       CROSS JOIN LATERAL (VALUES
         (o.user_id, -1, o.in_app, o.archived, o.read, o.marked_unread, o.marked_unarchived, o.seq),
         (n.user_id, 1, n.in_app, n.archived, n.read, n.marked_unread, n.marked_unarchived, n.seq)
       ) x(user_id, sign, in_app, archived, read, marked_unread, marked_unarchived, seq)
       WHERE (o.user_id, o.in_app, o.archived, o.read, o.marked_unread, o.marked_unarchived, o.seq)
             IS DISTINCT FROM (n.user_id, n.in_app, n.archived, n.read, n.marked_unread, n.marked_unarchived, n.seq)));
  ELSE
    EXECUTE $q$
      SELECT inbox_state_apply(ARRAY(
        SELECT ROW(x.user_id, x.sign, x.in_app, x.archived, x.read, x.marked_unread, x.marked_unarchived, x.seq)::inbox_change
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         CROSS JOIN LATERAL (VALUES
           (o.user_id, -1, o.in_app, o.archived, o.read, o.marked_unread, o.marked_unarchived, o.seq),
           (n.user_id, 1, n.in_app, n.archived, n.read, n.marked_unread, n.marked_unarchived, n.seq)
         ) x(user_id, sign, in_app, archived, read, marked_unread, marked_unarchived, seq)
         WHERE (o.user_id, o.in_app, o.archived, o.read, o.marked_unread, o.marked_unarchived, o.seq)
               IS DISTINCT FROM (n.user_id, n.in_app, n.archived, n.read, n.marked_unread, n.marked_unarchived, n.seq)))$q$;
  END IF;
  RETURN NULL;
END
$$;
