-- Issue 17: write cost per analytics event. Every event the ingest stores
-- inserts into each index of analytics_events (two per notification
-- delivered in-app: sent and delivered), and analytics_events_type_idx,
-- on event_type alone (six values), is read by no statement: readers find
-- raw events by notification (getNotificationMetrics), by user and time
-- (erasure, the export of one user), by time (the export, the edges of a
-- range that the rollups' 15-minute buckets do not cover) or by xid (the
-- roll-up), and filter the type within those. test/db/indexes.test.ts
-- keeps it that way. Measured: bench/RESULTS.md, 2026-12-03.
DROP INDEX IF EXISTS analytics_events_type_idx;
