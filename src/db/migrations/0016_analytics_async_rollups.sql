-- Issue 17: the ingest is one INSERT into analytics_events; the rollups of
-- 0005 and 0014 are maintained by a roll-up step that runs apart from it
-- (src/analytics/roller.ts, SQL in src/analytics/sql.ts: ROLL_UP).
--
-- Which raw rows are already rolled up is NOT a high-water mark over `id`: an
-- identity value is taken when a row is inserted, not when it commits, so a
-- transaction holding id 998 may commit after one holding id 1,000 was
-- rolled up. Instead each row records the inserting transaction's id (`xid`,
-- written by the ingest), and the state below keeps the snapshot of the last
-- roll-up: the rows rolled up are exactly those visible in that snapshot.
-- A roll-up reads the rows visible now but not in the stored snapshot (their
-- xid is >= its xmax or among its in-progress xids), folds them in and stores
-- its own snapshot, in one transaction, under an exclusive lock on the state
-- table: instances never roll the same row twice, and a process that dies
-- mid-roll-up leaves nothing behind (the next roll-up does the same work).

-- NULL for rows written before this migration (already in the rollups) and
-- for rows written around the ingest (bulk loads: rebuildRollups counts them).
ALTER TABLE analytics_events ADD COLUMN xid xid8;
CREATE INDEX analytics_events_xid_idx ON analytics_events (xid) WHERE xid IS NOT NULL;

-- One row. `snapshot`: the rows rolled up are those visible in it (a
-- roll-up limited to a batch stores a snapshot that sees only the
-- transactions it took). `rolled_at`: when the last roll-up that found
-- rows ran; `events`: raw rows rolled up so far (for observability).
CREATE TABLE analytics_rollup_state (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  snapshot   pg_snapshot NOT NULL,
  rolled_at  timestamptz NOT NULL DEFAULT now(),
  events     bigint NOT NULL DEFAULT 0
);
INSERT INTO analytics_rollup_state (snapshot) VALUES (pg_current_snapshot());
