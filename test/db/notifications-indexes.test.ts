/**
 * The indexes of notifications (migration 0019). Every creation writes each
 * of them, and so does each delivery mark (not a HOT update: it changes
 * delivery_status, which notifications_undelivered_idx names), so one that no
 * statement reads is pure write cost. Every statement of Herald reads
 * notifications by id, by seq or per user: an index led by anything else (the
 * guide's bare `type` and `created_at`, which 0019 dropped) is never chosen.
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

describe("notifications indexes", () => {
  it("each is led by id, seq or user_id", async () => {
    const rows = await db.query<{ name: string; leading: string }>(
      `SELECT c.relname AS name, a.attname AS leading
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = 'notifications'::regclass
        ORDER BY c.relname`,
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.filter((r) => !["id", "seq", "user_id"].includes(r.leading))).toEqual([]);
  });
});
