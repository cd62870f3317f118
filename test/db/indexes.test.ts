/**
 * Indexes of the tables every creation writes. Each of their indexes is
 * written for every row, so one that no statement reads is pure write cost:
 * - notifications (migration 0019): each delivery mark writes them again (not
 *   a HOT update: it changes delivery_status, which
 *   notifications_undelivered_idx names). Every statement of Herald reads
 *   notifications by id, by seq or per user: an index led by anything else
 *   (the guide's bare `type` and `created_at`, which 0019 dropped) is never chosen.
 * - analytics_events (migration 0023): readers find raw events by
 *   notification, by user (and time), by time or by the inserting
 *   transaction (the roll-up), and filter the event type within those: an
 *   index led by event_type (the guide's, which 0023 dropped) is never chosen.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDatabase, openTestDatabase } from "../support/database.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  await db?.cleanup();
});

/** Each index of `table` with its first column. */
function leadingColumns(table: string): Promise<{ name: string; leading: string }[]> {
  return db.query(
    `SELECT c.relname AS name, a.attname AS leading
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = $1::regclass
      ORDER BY c.relname`,
    [table],
  );
}

describe("indexes of the write path", () => {
  it("each index of notifications is led by id, seq or user_id", async () => {
    const rows = await leadingColumns("notifications");
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.filter((r) => !["id", "seq", "user_id"].includes(r.leading))).toEqual([]);
  });

  it("each index of analytics_events is led by id, notification_id, user_id, timestamp or xid", async () => {
    const rows = await leadingColumns("analytics_events");
    expect(rows.map((r) => r.name)).toContain("analytics_events_xid_idx");
    expect(rows.filter((r) => !["id", "notification_id", "user_id", "timestamp", "xid"].includes(r.leading))).toEqual([]);
  });
});
