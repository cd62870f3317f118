/**
 * The inbox counts' creation trigger (migration 0021) on multi-user batches:
 * its common case counts rows by their own columns in one statement, and only
 * users whose locked watermarks reach some of the new seqs take the exact
 * path. A batch mixing both (read and archive watermarks above some of the
 * new seqs, as a read-all or archive-all racing the creation leaves them; a
 * user without an inbox_state row; a row kept out of the app; a row created
 * read) must leave the counts equal to COUNT(*) and the late rows marked as
 * exceptions. On PostgreSQL, concurrent creations for overlapping users, in
 * opposite orders, with read-alls among them, must neither deadlock nor
 * drift; and a creation whose trigger waited on the inbox_state row while
 * watermarks moved past its seq must count by the watermarks it then locked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";
import { countsAndRows } from "../support/inbox-counts.js";
import { hold, waitingFor } from "../support/pg-locks.js";
import { CLEAR_MARKED_UNREAD, LOCK_INBOX_STATE, MOVE_WATERMARK } from "../../src/notifications/sql.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(() => db?.cleanup());

async function expectCountsExact(users: string[]): Promise<void> {
  const all = await countsAndRows(db, users);
  expect(all.map((u) => u.userId)).toEqual([...users].sort());
  for (const u of all) expect(u.counts, u.userId).toEqual(u.rows);
}

describe("a creation batch across users with watermarks above some of its seqs", () => {
  it("counts every row exactly and marks only the unread / unarchived rows at or below a watermark", async () => {
    const users = ["tb-read", "tb-archive", "tb-both", "tb-fresh", "tb-plain", "tb-out"];
    // Users with an inbox already (their inbox_state row, watermarks at 0).
    for (const u of ["tb-plain", "tb-out"]) {
      await db.query("INSERT INTO notifications (user_id, type, priority, title, message) VALUES ($1, 'new_message', 'normal', 'old', 'm')", [u]);
    }
    const [{ top }] = (await db.query<{ top: string }>("SELECT max(seq) AS top FROM notifications")) as [{ top: string }];
    const s = Number(top);
    // The batch below takes seqs s+1 .. s+12 in its order; these watermarks (of empty inboxes: no count changes)
    // cover part of it, as a read-all or archive-all that moved past the batch's seqs while it was written.
    await db.query(
      `INSERT INTO inbox_state (user_id, read_through_seq, archived_through_seq)
       VALUES ('tb-read', $1::bigint + 7, 0), ('tb-archive', 0, $1::bigint + 8), ('tb-both', $1::bigint + 3, $1::bigint + 12)`,
      [s],
    );
    const rows = await db.query<{ seq: string }>(
      `INSERT INTO notifications (user_id, type, priority, title, message, in_app, read)
       SELECT u, 'new_message', 'normal', 't' || ord, 'm', u <> 'tb-out', ord = 7
         FROM unnest($1::text[]) WITH ORDINALITY AS b(u, ord)
        ORDER BY ord
       RETURNING user_id, seq`,
      [["tb-plain", "tb-both", "tb-read", "tb-archive", "tb-fresh", "tb-out", "tb-read", "tb-both", "tb-archive", "tb-read", "tb-plain", "tb-both"]],
    );
    expect(rows.map((r) => Number(r.seq) - s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    await expectCountsExact(users);

    const marks = await db.query<{ seq: string; marked_unread: boolean; marked_unarchived: boolean }>(
      "SELECT seq, marked_unread, marked_unarchived FROM notifications WHERE seq > $1 AND (marked_unread OR marked_unarchived) ORDER BY seq",
      [s],
    );
    // tb-read: 3 is late (unread), 7 was created read (nothing to mark), 10 is above. tb-archive: 4 is late, 9 above.
    // tb-both: 2 is below both watermarks, 8 and 12 below the archive one only. Nobody else's row is marked.
    expect(marks.map((m) => [Number(m.seq) - s, m.marked_unread, m.marked_unarchived])).toEqual([
      [2, true, true],
      [3, true, false],
      [4, false, true],
      [8, false, true],
      [12, false, true],
    ]);
    const [badge] = await db.query<{ unread: number; archived: number }>(
      "SELECT unread_count AS unread, archived_count AS archived FROM inbox_state WHERE user_id = 'tb-read'",
    );
    // The late row and the one above the watermark are unread; the one created read is not.
    expect(badge).toEqual({ unread: 2, archived: 0 });
  });
});

describe.runIf(usingPostgres)("concurrent creations for overlapping users (PostgreSQL)", () => {
  it("opposite orders and read-alls among them neither deadlock nor leave the counts off", async () => {
    const users = Array.from({ length: 6 }, (_, i) => `tb-c${i}`);
    const insert = (order: string[]) =>
      db.query(
        `INSERT INTO notifications (user_id, type, priority, title, message)
         SELECT u, 'new_message', 'normal', 't', 'm' FROM unnest($1::text[]) WITH ORDINALITY AS b(u, ord) ORDER BY ord`,
        [order],
      );
    // The read-all of Inbox.markAllRead, statement by statement.
    const readAll = (u: string) =>
      db.transaction(async (tx) => {
        await tx.query(CLEAR_MARKED_UNREAD, [u]);
        await tx.query(LOCK_INBOX_STATE, [u]);
        await tx.query(MOVE_WATERMARK, [u]);
      });
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      work.push(insert(i % 2 === 0 ? users : [...users].reverse()));
      if (i % 5 === 0) work.push(readAll(users[i % users.length]!));
    }
    await Promise.all(work);
    await expectCountsExact(users);
  });

  it("a creation that waited on the inbox_state row counts by the watermarks committed meanwhile, not by its snapshot's", async () => {
    const user = "tb-waited";
    await db.query("INSERT INTO inbox_state (user_id) VALUES ($1)", [user]);
    const blocker = await hold(db);
    let created: Promise<{ seq: string }[]> | undefined;
    try {
      // A bulk change in flight: it holds the row; the creation's statement has its snapshot, then waits on it.
      await blocker.c.query("BEGIN");
      await blocker.c.query(
        "UPDATE inbox_state SET read_through_seq = 9000000000000000000, archived_through_seq = 9000000000000000000 WHERE user_id = $1",
        [user],
      );
      created = db.query<{ seq: string }>(
        "INSERT INTO notifications (user_id, type, priority, title, message) VALUES ($1, 'new_message', 'normal', 't', 'm') RETURNING seq",
        [user],
      );
      await waitingFor(db, blocker.c);
      await blocker.c.query("COMMIT");
      await created;
    } finally {
      await blocker.c.query("ROLLBACK").catch(() => {});
      blocker.release();
      await blocker.done;
      await created?.catch(() => {});
    }
    // Its seq is below both watermarks it found under the lock: marked as the exception to each, and counted so.
    const [row] = await db.query<{ marked_unread: boolean; marked_unarchived: boolean }>(
      "SELECT marked_unread, marked_unarchived FROM notifications WHERE user_id = $1",
      [user],
    );
    expect(row).toEqual({ marked_unread: true, marked_unarchived: true });
    await expectCountsExact([user]);
    const [state] = await db.query<{ unread: number }>("SELECT unread_count AS unread FROM inbox_state WHERE user_id = $1", [user]);
    expect(state!.unread).toBe(1);
  });
});
