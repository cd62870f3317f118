/**
 * The inbox counts' UPDATE trigger (0012, 0017) joins the statement's old and
 * new rows by id. PL/pgSQL keeps one plan of that join per connection, sized
 * for the first UPDATE it ran for: after small UPDATEs (delivery marks) a
 * nested loop, so a large UPDATE on the same connection (a broadcast's sent
 * marks) compared every old row with every new one: 20,000 rows took 44 s on
 * PostgreSQL and 72 s on PGlite, where it stops every other query
 * (bench/RESULTS.md). Since 0022 an UPDATE of more than 64 rows plans its join
 * for its own rows (EXECUTE). Both paths must count exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { countsAndRows } from "../support/inbox-counts.js";
import { within } from "../support/within.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(() => db?.cleanup());

/** The delivery log's sent mark (src/realtime/delivery-log.ts MARK_SENT). */
const MARK_SENT = `
UPDATE notifications n SET delivery_status = 'sent', sent_at = $2, updated_at = $2
  FROM unnest($1::uuid[]) AS s(id)
 WHERE n.id = s.id AND n.delivery_status = 'pending'
RETURNING n.id`;

async function create(prefix: string, users: number, rows: number): Promise<string[]> {
  const created = await db.query<{ id: string }>(
    `INSERT INTO notifications (user_id, type, priority, title, message)
     SELECT $1 || (g % $2), 'new_message', 'normal', 'title', 'message' FROM generate_series(1, $3) g RETURNING id`,
    [prefix, users, rows],
  );
  return created.map((r) => r.id);
}

/**
 * The bound the 20,000-row UPDATE must finish within. Only time shows which plan the trigger's
 * cached join used (EXPLAIN does not reach into it): the quadratic one took 44 s on PostgreSQL
 * and 72 s on PGlite here, the sized one 1-3 s.
 */
const LARGE_UPDATE_BOUND_MS = 15_000;

describe("an UPDATE of many notifications after small ones on the same connection", () => {
  it("does not compare every old row with every new one (20,000 sent marks after six of one row)", async () => {
    const ids = await create("join-large-", 100, 20_006);
    await db.connection(async (conn) => {
      for (const id of ids.slice(0, 6)) expect(await conn.query(MARK_SENT, [[id], new Date()])).toHaveLength(1);
      const marked = await within(conn.query(MARK_SENT, [ids.slice(6), new Date()]), LARGE_UPDATE_BOUND_MS, "the 20,000-row UPDATE");
      expect(marked).toHaveLength(20_000);
    });
  }, 120_000);

  it("counts exactly through both plans: UPDATEs of 1, 64, 65 and 500 rows that read, archive and mark unread", async () => {
    const users = Array.from({ length: 7 }, (_, i) => `join-count-${i}`);
    const ids = await create("join-count-", users.length, 1_000);
    const read = "UPDATE notifications SET read = true, read_at = now() WHERE id = ANY($1::uuid[])";
    const archive = "UPDATE notifications SET archived = true WHERE id = ANY($1::uuid[])";
    const unread = "UPDATE notifications SET read = false, read_at = NULL WHERE id = ANY($1::uuid[])";
    await db.connection(async (conn) => {
      await conn.query(read, [ids.slice(0, 1)]);
      await conn.query(read, [ids.slice(1, 65)]);
      await conn.query(read, [ids.slice(65, 130)]);
      await conn.query(archive, [ids.slice(100, 600)]);
      await conn.query(unread, [ids.slice(50, 115)]);
      await conn.query(archive, [ids.slice(900, 901)]);
    });
    for (const u of await countsAndRows(db, users)) expect(u.counts, u.userId).toEqual(u.rows);
  }, 120_000);
});
