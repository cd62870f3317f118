-- Issue 17: write cost per delivered notification. Every creation inserts
-- into each index of notifications, and each delivery mark (not HOT: it
-- changes delivery_status, which notifications_undelivered_idx's predicate
-- names) inserts into each index again. No statement of Herald reads these
-- two: every read of notifications is by id, by seq, or per user, where
-- (user_id, ...) indexes serve the type filter (notifications_inbox_type_idx)
-- and the digests' time range (notifications_digest_idx); EXPLAIN ANALYZE of
-- those reads at 300,000 rows of one user gives the same plans without them.
-- Measured per delivered notification (1,000 users x 100 rows, creations of
-- 16, each batch's delivered mark four batches later): PGlite WAL 2,015 ->
-- 1,732 bytes; CPU, the two schemas' rounds interleaved, PostgreSQL 270 ->
-- 258 us, PGlite 423-447 -> 413-425 us (the delivered mark 6-10% less).
DROP INDEX notifications_type_idx;
DROP INDEX notifications_created_at_idx;
