/**
 * The indexes of notifications (migrations 0019, 0020). Every creation writes
 * each of them, and so does every update that is not HOT, so one that no
 * statement reads is pure write cost. Every statement of Herald reads
 * notifications by id, by seq or per user: an index led by anything else (the
 * guide's bare `type` and `created_at`, which 0019 dropped) is never chosen.
 * And no index names a column the delivery marks change (delivery_status,
 * sent_at, delivered_at, updated_at): then each mark can be a HOT update,
 * writing no index at all (0020 moved notifications_undelivered_idx, whose
 * predicate named delivery_status, to the notifications_unacked table).
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

  it("none names a column the delivery marks change (key, expression or predicate), so a mark can be HOT", async () => {
    const rows = await db.query<{ definition: string }>(
      "SELECT pg_get_indexdef(indexrelid) AS definition FROM pg_index WHERE indrelid = 'notifications'::regclass ORDER BY 1",
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.map((r) => r.definition).filter((d) => /\b(delivery_status|sent_at|delivered_at|updated_at)\b/.test(d))).toEqual([]);
  });
});
