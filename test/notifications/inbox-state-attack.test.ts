/**
 * Attacks on the inbox counts' triggers as migration 0021 rewrote them (one
 * INSERT .. ON CONFLICT DO UPDATE per creation, inbox_state_behind for rows
 * at or below a watermark). After any mix of writers, inbox_state must equal
 * a recount over the rows by notification_is_read() / notification_is_archived(),
 * every user holding rows must have an inbox_state row (the badge reads it,
 * none is zero), and no count may go negative.
 *
 * Writers mixed here: creation batches across users (any user order, in-app
 * on and off, rows created read or archived, 500 rows of one user), group
 * inserts over a user list (a broadcast's shape), read-all and archive-all as
 * Inbox.bulkChange runs them, PATCH (UPDATE_STATE) of rows below the
 * watermarks, delivery marks (counts must not move), deletes, a row moved to
 * another user or out of the app, and erasure. On PGlite one after another;
 * on PostgreSQL also concurrently (READ COMMITTED): no 40P01, nothing off.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Session } from "../../src/db/index.js";
import {
  CLEAR_MARKED_UNARCHIVED,
  CLEAR_MARKED_UNREAD,
  DELETE_OWN,
  LOCK_INBOX_STATE,
  MOVE_ARCHIVE_WATERMARK,
  MOVE_WATERMARK,
  UPDATE_STATE,
} from "../../src/notifications/sql.js";
import { eraseUserRows } from "../../src/users/erasure.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";
import { countsAndRows } from "../support/inbox-counts.js";
import { prng } from "../support/prng.js";
import { hold, waitingFor } from "../support/pg-locks.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await openTestDatabase({ poolSize: 12 });
});
afterAll(() => db?.cleanup());

interface Row {
  user: string;
  inApp?: boolean;
  read?: boolean;
  archived?: boolean;
}

/** One INSERT statement (one statement trigger) of rows in the given order. */
function createBatch(q: Pick<Session, "query">, rows: Row[]): Promise<unknown> {
  return q.query(
    `INSERT INTO notifications (user_id, type, priority, title, message, in_app, read, archived)
     SELECT u, 'new_message', 'normal', 't' || ord, 'm', i, r, a
       FROM unnest($1::text[], $2::boolean[], $3::boolean[], $4::boolean[]) WITH ORDINALITY AS b(u, i, r, a, ord)
      ORDER BY ord`,
    [rows.map((r) => r.user), rows.map((r) => r.inApp ?? true), rows.map((r) => r.read ?? false), rows.map((r) => r.archived ?? false)],
  );
}

/** A group insert / broadcast's shape: one INSERT .. SELECT over a recipient list. */
function groupInsert(users: string[], inApp: boolean): Promise<unknown> {
  return db.query(
    `INSERT INTO notifications (user_id, type, priority, title, message, in_app)
     SELECT u, 'platform_update', 'normal', 'g', 'm', $2 FROM unnest($1::text[]) AS u`,
    [users, inApp],
  );
}

/** Inbox.bulkChange, statement by statement. */
function bulk(user: string, archive: boolean): Promise<void> {
  return db.transaction(async (tx) => {
    await tx.query(archive ? CLEAR_MARKED_UNARCHIVED : CLEAR_MARKED_UNREAD, [user]);
    await tx.query(LOCK_INBOX_STATE, [user]);
    await tx.query(archive ? MOVE_ARCHIVE_WATERMARK : MOVE_WATERMARK, [user]);
  });
}

async function someRow(user: string, rnd: () => number): Promise<string | undefined> {
  const rows = await db.query<{ id: string }>("SELECT id FROM notifications WHERE user_id = $1 ORDER BY seq LIMIT 20", [user]);
  return rows[Math.floor(rnd() * rows.length)]?.id;
}

/** Every user's counts equal the recount; every user with rows has counts; none is negative. */
async function expectExact(users: string[]): Promise<void> {
  const all = await countsAndRows(db, users);
  for (const u of all) {
    expect(u.counts, u.userId).toEqual(u.rows);
    for (const n of u.counts) expect(n, u.userId).toBeGreaterThanOrEqual(0);
  }
  const orphans = await db.query<{ user_id: string }>(
    "SELECT DISTINCT n.user_id FROM notifications n WHERE n.user_id = ANY($1::text[]) AND n.in_app AND NOT EXISTS (SELECT 1 FROM inbox_state s WHERE s.user_id = n.user_id)",
    [users],
  );
  expect(orphans.map((o) => o.user_id), "users with in-app rows and no inbox_state row").toEqual([]);
}

/** One random operation of any writer on `users`. */
async function randomOp(users: string[], rnd: () => number, starting: (op: number) => void = () => {}, skip: number[] = []): Promise<string> {
  const pick = () => users[Math.floor(rnd() * users.length)]!;
  const k = Math.floor(rnd() * 12);
  if (skip.includes(k)) return "skipped";
  starting(k);
  const user = pick();
  switch (k) {
    case 0:
    case 1: {
      const rows = Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => ({
        user: pick(),
        inApp: rnd() < 0.85,
        read: rnd() < 0.1,
        archived: rnd() < 0.1,
      }));
      await createBatch(db, rows);
      return "create";
    }
    case 2:
      await groupInsert([...users].sort(() => rnd() - 0.5).slice(0, 3), rnd() < 0.8);
      return "group";
    case 3:
      await bulk(user, false);
      return "read-all";
    case 4:
      await bulk(user, true);
      return "archive-all";
    case 5:
    case 6: {
      const id = await someRow(user, rnd);
      if (!id) return "none";
      const read = rnd() < 0.5 ? (rnd() < 0.5) : null;
      const archived = read === null || rnd() < 0.5 ? rnd() < 0.5 : null;
      await db.query(UPDATE_STATE, [id, user, read, archived]);
      return "patch";
    }
    case 7: {
      const id = await someRow(user, rnd);
      if (id) await db.query(DELETE_OWN, [id, user]);
      return "delete";
    }
    case 8:
      // A delivery mark: the counts must not move (the trigger drops the row before locking).
      await db.query("UPDATE notifications SET delivery_status = 'delivered', updated_at = now() WHERE user_id = $1 AND delivery_status = 'pending'", [user]);
      return "delivered";
    case 9: {
      // No Herald writer does these, but the triggers promise every writer: a row moved to another user or out of / into the app.
      const id = await someRow(user, rnd);
      if (!id) return "none";
      if (rnd() < 0.5) await db.query("UPDATE notifications SET user_id = $2 WHERE id = $1", [id, pick()]);
      else await db.query("UPDATE notifications SET in_app = NOT in_app WHERE id = $1", [id]);
      return "move";
    }
    case 10:
      if (rnd() < 0.3) {
        await db.transaction((tx) => eraseUserRows(tx, user));
        return "erase";
      }
      await createBatch(db, [{ user }, { user, inApp: false }, { user }]);
      return "create";
    default:
      // Several statements in one transaction: a creation after a bulk change of the same user, a PATCH between.
      await db.transaction(async (tx) => {
        await createBatch(tx, [{ user }, { user: pick() }]);
        await tx.query(CLEAR_MARKED_UNREAD, [user]);
        await tx.query(LOCK_INBOX_STATE, [user]);
        await tx.query(MOVE_WATERMARK, [user]);
        await createBatch(tx, [{ user: pick() }, { user }]);
      });
      return "tx";
  }
}

describe("inbox counts after any sequence of writers", () => {
  it("equal the recount after every step of a random sequence (5 users, 300 steps)", async () => {
    const users = ["sq-a", "sq-b", "sq-c", "sq-d", "sq-e"];
    const rnd = prng(21);
    for (let step = 0; step < 300; step++) {
      const op = await randomOp(users, rnd);
      try {
        await expectExact(users);
      } catch (err) {
        throw new Error(`after step ${step} (${op}): ${(err as Error).message}`);
      }
    }
    // 300 steps of a few statements each: 27 s on PGlite beside a CI run, over vitest's default bound.
  }, 180_000);

  it("a batch of 500 rows of one user mixing in-app off, read and archived rows, below and above both watermarks", async () => {
    const user = "big-one";
    const [{ top }] = (await db.query<{ top: string }>("SELECT COALESCE(max(seq), 0) AS top FROM notifications")) as [{ top: string }];
    // Watermarks of an empty inbox ahead of the seqs the batch will take (as a bulk change that raced it would
    // leave them), each exactly equal to one of the new seqs.
    await db.query("INSERT INTO inbox_state (user_id, read_through_seq, archived_through_seq) VALUES ($1, $2::bigint + 250, $2::bigint + 100)", [user, top]);
    const rows: Row[] = Array.from({ length: 500 }, (_, i) => ({ user, inApp: i % 7 !== 0, read: i % 11 === 0, archived: i % 13 === 0 }));
    // Another user before and after it in the same statement (the lock order is by user, not by row).
    await createBatch(db, [{ user: "big-other" }, ...rows, { user: "big-aaa" }]);
    await expectExact([user, "big-other", "big-aaa"]);
    const [marks] = await db.query<{ unread: number; unarchived: number }>(
      "SELECT count(*) FILTER (WHERE marked_unread)::int AS unread, count(*) FILTER (WHERE marked_unarchived)::int AS unarchived FROM notifications WHERE user_id = $1 AND seq > $2",
      [user, top],
    );
    // Seqs top+1 .. top+502 (big-other first): rows at or below each watermark that were in-app and not created read / archived.
    let unread = 0;
    let unarchived = 0;
    rows.forEach((r, i) => {
      const seq = i + 2;
      if (r.inApp && !r.read && seq <= 250) unread++;
      if (r.inApp && !r.archived && seq <= 100) unarchived++;
    });
    expect(marks).toEqual({ unread, unarchived });
    // Both bulk changes then cover everything; the counts follow.
    await bulk(user, false);
    await bulk(user, true);
    await expectExact([user]);
  });

  it("a delivery mark changes no count and writes no inbox_state version", async () => {
    const user = "dm-one";
    await createBatch(db, [{ user }, { user }, { user, inApp: false }]);
    const before = await db.query<{ x: string }>("SELECT xmin::text AS x FROM inbox_state WHERE user_id = $1", [user]);
    await db.query("UPDATE notifications SET delivery_status = 'sent' WHERE user_id = $1", [user]);
    await db.query("UPDATE notifications SET delivery_status = 'delivered' WHERE user_id = $1", [user]);
    expect(await db.query<{ x: string }>("SELECT xmin::text AS x FROM inbox_state WHERE user_id = $1", [user])).toEqual(before);
    await expectExact([user]);
  });
});

describe.runIf(usingPostgres)("inbox counts under concurrent writers (PostgreSQL)", () => {
  it("8 connections of random writers: no deadlock, counts exact", async () => {
    const users = Array.from({ length: 6 }, (_, i) => `cc-${i}`);
    const errors: string[] = [];
    const worker = async (w: number) => {
      const rnd = prng(1000 + w);
      let last = -1;
      for (let step = 0; step < 120; step++) {
        // Without erasures (their race is the test below) and multi-statement transactions (10 and 11: one that
        // locks users across statements in no order can deadlock with another, whatever the trigger does).
        await randomOp(
          users,
          rnd,
          (op) => {
            last = op;
          },
          [10, 11],
        ).catch((err: { code?: string; message: string }) => {
          errors.push(`op ${last}: ${err.code ?? ""} ${err.message}`);
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    await expectExact(users);
    expect(errors).toEqual([]);
  });

  it("a multi-user creation whose seqs a read-all and an archive-all moved past while it was written: late rows marked, counts exact", async () => {
    const users = ["lt-a", "lt-b", "lt-c"];
    for (const u of users) await createBatch(db, [{ user: u }]);
    const blocker = await hold(db);
    let pending: Promise<unknown> | undefined;
    try {
      // Holds lt-c's inbox_state row: the batch has its seqs and counted lt-a, lt-b, then waits on lt-c.
      await blocker.c.query("BEGIN");
      await blocker.c.query("SELECT 1 FROM inbox_state WHERE user_id = 'lt-c' FOR UPDATE");
      pending = createBatch(db, [{ user: "lt-c" }, { user: "lt-c", inApp: false }, { user: "lt-c", archived: true }, { user: "lt-a" }]);
      await waitingFor(db, blocker.c);
      // Newer rows of lt-c commit; the blocker's transaction then moves both watermarks past them (as bulk changes would).
      await createBatch(db, [{ user: "lt-b" }]);
      await blocker.c.query(
        "UPDATE inbox_state SET read_through_seq = (SELECT max(seq) FROM notifications) + 1, archived_through_seq = (SELECT max(seq) FROM notifications) + 1, unread_count = 0, archived_count = in_app_count, archived_unread_count = 0 WHERE user_id = 'lt-c'",
      );
      await blocker.c.query("COMMIT");
      await pending;
    } finally {
      await blocker.c.query("ROLLBACK").catch(() => {});
      blocker.release();
      await blocker.done;
      await pending?.catch(() => {});
    }
    await expectExact(users);
    const late = await db.query<{ in_app: boolean; archived: boolean; marked_unread: boolean; marked_unarchived: boolean }>(
      "SELECT in_app, archived, marked_unread, marked_unarchived FROM notifications WHERE user_id = 'lt-c' ORDER BY seq DESC LIMIT 3",
    );
    // Newest first: the archived in-app row (unread, not unarchived), the out-of-app one (nothing), the plain one (both).
    expect(late.reverse()).toEqual([
      { in_app: true, archived: false, marked_unread: true, marked_unarchived: true },
      { in_app: false, archived: false, marked_unread: false, marked_unarchived: false },
      { in_app: true, archived: true, marked_unread: true, marked_unarchived: false },
    ]);
  });

  // Failed before the erasure, after its DELETE, locked the user's inbox_state row and deleted again (before 0021 too): its DELETE FROM
  // notifications had a snapshot without the open creation's row; its trigger then waited for the creation's
  // inbox_state lock, and the erasure deleted the inbox_state row (counting the creation) while the row survived.
  // The badge read 0 beside an unread row, and the next creation started a row of counts without it.
  it("an erasure while a creation of the user that already counted itself is still open leaves no uncounted row", async () => {
    const user = "er-one";
    await createBatch(db, [{ user }, { user }]);
    const creator = await hold(db);
    let erasure: Promise<unknown> | undefined;
    try {
      // A creation whose statement trigger ran (inbox_state locked and counted) and whose transaction has not ended.
      await creator.c.query("BEGIN");
      await createBatch(creator.c, [{ user }]);
      erasure = db.transaction((tx) => eraseUserRows(tx, user));
      await waitingFor(db, creator.c);
      await creator.c.query("COMMIT");
      await erasure;
    } finally {
      await creator.c.query("ROLLBACK").catch(() => {});
      creator.release();
      await creator.done;
      await erasure?.catch(() => {});
    }
    // Either the erasure took the row with the rest, or (created before the erasure ended) it is counted.
    await expectExact([user]);
  });
});
