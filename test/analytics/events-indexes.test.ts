/**
 * The indexes of analytics_events (migration 0023). The ingest writes every
 * one of them for each event, so one that no statement reads is pure write
 * cost. Readers find raw events by notification, by user (and time), by time
 * or by the inserting transaction (the roll-up), and filter the event type
 * within those: an index led by event_type (the guide's, which 0023 dropped)
 * is never chosen.
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

describe("analytics_events indexes", () => {
  it("each is led by id, notification_id, user_id, timestamp or xid", async () => {
    const rows = await db.query<{ name: string; leading: string }>(
      `SELECT c.relname AS name, a.attname AS leading
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = 'analytics_events'::regclass
        ORDER BY c.relname`,
    );
    expect(rows.map((r) => r.name)).toContain("analytics_events_xid_idx");
    expect(rows.filter((r) => !["id", "notification_id", "user_id", "timestamp", "xid"].includes(r.leading))).toEqual([]);
  });
});
