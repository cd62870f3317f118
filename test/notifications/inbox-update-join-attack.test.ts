/**
 * Attacks on migration 0022 (the inbox counts' UPDATE trigger plans its
 * old/new join anew, by EXECUTE, for an UPDATE of over 64 rows): after every
 * UPDATE of 1-1,500 rows that changes read, archived, marked_unread,
 * marked_unarchived, in_app or the user, on rows above and below read-all /
 * archive-all watermarks, on one connection whose static plan was made first
 * by small UPDATEs, inbox_state equals the recount. The insert trigger's own
 * UPDATE of late rows (a creation at or below a watermark) goes through the
 * EXECUTE path when over 64 rows. On PostgreSQL, several connections run
 * large UPDATEs of disjoint rows of the same users, with read-alls and
 * archive-alls between them: no deadlock, no drift.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection, Session } from "../../src/db/index.js";
import {
  CLEAR_MARKED_UNARCHIVED,
  CLEAR_MARKED_UNREAD,
  LOCK_INBOX_STATE,
  MOVE_ARCHIVE_WATERMARK,
  MOVE_WATERMARK,
} from "../../src/notifications/sql.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";
import { countsAndRows } from "../support/inbox-counts.js";
import { prng } from "../support/prng.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await openTestDatabase({ poolSize: 8 });
});
afterAll(() => db?.cleanup());

async function create(q: Pick<Session, "query">, users: string[], rows: number): Promise<void> {
  await q.query(
    `INSERT INTO notifications (user_id, type, priority, title, message)
     SELECT ($1::text[])[1 + g % cardinality($1::text[])], 'new_message', 'normal', 't', 'm' FROM generate_series(1, $2) g`,
    [users, rows],
  );
}

/** Inbox.bulkChange, statement by statement: a read-all or an archive-all. */
function bulk(q: Pick<Connection, "transaction">, user: string, archive: boolean): Promise<void> {
  return q.transaction(async (tx) => {
    await tx.query(archive ? CLEAR_MARKED_UNARCHIVED : CLEAR_MARKED_UNREAD, [user]);
    await tx.query(LOCK_INBOX_STATE, [user]);
    await tx.query(archive ? MOVE_ARCHIVE_WATERMARK : MOVE_WATERMARK, [user]);
  });
}

/**
 * One UPDATE of `size` random rows of `users` (taken from `from`, disjoint
 * per caller), each column flipped with its own chance per row: the hash of
 * the row's id and the step picks, so the statement is one of many shapes.
 */
async function randomUpdate(q: Pick<Session, "query">, users: string[], size: number, step: number, rnd: () => number): Promise<number> {
  const flip = (bit: number, p: number) => (rnd() < p ? `(hashtext(id::text || '${step}') >> ${bit}) & 3 = 0` : "false");
  const moveTo = users[Math.floor(rnd() * users.length)]!;
  const rows = await q.query(
    `UPDATE notifications SET
        read = read <> (${flip(0, 0.9)}),
        archived = archived <> (${flip(2, 0.6)}),
        marked_unread = CASE WHEN ${flip(4, 0.5)} THEN NOT read AND NOT marked_unread ELSE marked_unread END,
        marked_unarchived = CASE WHEN ${flip(6, 0.5)} THEN NOT archived AND NOT marked_unarchived ELSE marked_unarchived END,
        in_app = in_app <> (${flip(8, 0.2)}),
        user_id = CASE WHEN ${flip(10, 0.1)} THEN $3 ELSE user_id END
      WHERE id IN (SELECT id FROM notifications WHERE user_id = ANY($1::text[]) ORDER BY hashtext(id::text || $4) LIMIT $2)
      RETURNING id`,
    [users, size, moveTo, String(step)],
  );
  return rows.length;
}

async function expectExact(users: string[], what: string): Promise<void> {
  for (const u of await countsAndRows(db, users)) {
    expect(u.counts, `${u.userId} after ${what}`).toEqual(u.rows);
    for (const n of u.counts) expect(n, `${u.userId} after ${what}`).toBeGreaterThanOrEqual(0);
  }
}

const SIZES = [1, 3, 63, 64, 65, 66, 130, 1_000, 1_500];

describe(`inbox counts through 0022's two plans (${usingPostgres ? "postgres" : "pglite"})`, () => {
  it("stay exact after random UPDATEs of 1 to 1,500 rows across read-all and archive-all watermarks, on one connection", async () => {
    const users = Array.from({ length: 5 }, (_, i) => `uj-a-${i}`);
    await create(db, users, 2_500);
    const rnd = prng(22);
    await db.connection(async (conn) => {
      // Small UPDATEs first: the static plan is made for them.
      for (let i = 0; i < 6; i++) await randomUpdate(conn, users, 1, -i, rnd);
      for (let step = 0; step < 60; step++) {
        const r = rnd();
        let what: string;
        if (r < 0.12) {
          const user = users[Math.floor(rnd() * users.length)]!;
          const archive = rnd() < 0.5;
          await bulk(conn, user, archive);
          what = `${archive ? "archive-all" : "read-all"} of ${user}`;
        } else if (r < 0.2) {
          await create(conn, users, 40 + Math.floor(rnd() * 200));
          what = "a creation";
        } else {
          const size = SIZES[Math.floor(rnd() * SIZES.length)]!;
          const n = await randomUpdate(conn, users, size, step, rnd);
          what = `an UPDATE of ${n} rows (step ${step})`;
        }
        await expectExact(users, what);
      }
    });
  }, 300_000);

  it("stay exact when a creation of over 64 rows lands below both watermarks (the insert trigger's own UPDATE of its late rows, planned by EXECUTE)", async () => {
    const users = ["uj-late-0", "uj-late-1"];
    await db.connection(async (conn) => {
      await create(conn, users, 10);
      for (const u of users) {
        await bulk(conn, u, false);
        await bulk(conn, u, true);
      }
      // A read-all and an archive-all that moved past seqs still to be used: the race of 0015 and 0017, made wide.
      await conn.query(
        `UPDATE inbox_state SET read_through_seq = (SELECT max(seq) FROM notifications) + 5000,
                                archived_through_seq = (SELECT max(seq) FROM notifications) + 5000 WHERE user_id = ANY($1::text[])`,
        [users],
      );
      for (const rows of [3, 200, 1_000]) {
        await create(conn, users, rows);
        await expectExact(users, `a late creation of ${rows} rows`);
        const [late] = await conn.query<{ unread: number; unarchived: number }>(
          "SELECT count(*) FILTER (WHERE NOT marked_unread)::int AS unread, count(*) FILTER (WHERE NOT marked_unarchived)::int AS unarchived FROM notifications WHERE user_id = ANY($1::text[]) AND seq > (SELECT min(seq) + 9 FROM notifications WHERE user_id = ANY($1::text[]))",
          [users],
        );
        expect(late, "every late row is marked unread and unarchived").toEqual({ unread: 0, unarchived: 0 });
      }
      // And the large UPDATEs over those late rows, both ways.
      await conn.query("UPDATE notifications SET read = true, marked_unread = false WHERE user_id = ANY($1::text[])", [users]);
      await expectExact(users, "all read");
      await conn.query("UPDATE notifications SET archived = true, marked_unarchived = false WHERE user_id = ANY($1::text[])", [users]);
      await expectExact(users, "all archived");
      await conn.query("UPDATE notifications SET read = false, archived = false WHERE user_id = ANY($1::text[])", [users]);
      await expectExact(users, "all unread and unarchived again (below both watermarks)");
    });
  }, 300_000);

  it.runIf(usingPostgres)("stay exact with large UPDATEs of disjoint rows of the same users from several connections, beside read-alls (no deadlock)", async () => {
    const users = Array.from({ length: 6 }, (_, i) => `uj-c-${i}`);
    await create(db, users, 12_000);
    const ids = (await db.query<{ id: string }>("SELECT id FROM notifications WHERE user_id = ANY($1::text[]) ORDER BY seq", [users])).map((r) => r.id);
    const writers = 5;
    await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        db.connection(async (conn) => {
          const rnd = prng(100 + w);
          const mine = ids.filter((_, i) => i % writers === w);
          // The static plan first, then large ones of this writer's rows only.
          await conn.query("UPDATE notifications SET read = NOT read WHERE id = $1", [mine[0]]);
          for (let step = 0; step < 12; step++) {
            if (w === 0 && step % 3 === 0) {
              await bulk(conn, users[step % users.length]!, step % 2 === 0);
              continue;
            }
            const size = [65, 300, 1_500][step % 3]!;
            const start = Math.floor(rnd() * Math.max(1, mine.length - size));
            await conn.query(
              `UPDATE notifications SET read = NOT read, archived = archived <> ((hashtext(id::text) & 1) = 0),
                      marked_unread = false, marked_unarchived = false
                WHERE id = ANY($1::uuid[])`,
              [mine.slice(start, start + size)],
            );
          }
        }),
      ),
    );
    await expectExact(users, "the concurrent writers");
  }, 300_000);
});
