/**
 * Issue 18: the read-all watermark race (migration 0015). A creation takes
 * its seq when its row is formed but counts itself, under the user's
 * inbox_state lock, only at the end of its statement. A read-all between the
 * two moves the watermark to the newest seq it can see, above the pending
 * row's; that row, committed afterwards, must still be unread: the user never
 * saw it. PostgreSQL only (PGlite is one connection: statements never
 * interleave there).
 *
 * The window is held open without sleeps: a first connection inserts a row
 * with an id (the primary key) and keeps its transaction open; a second
 * inserts the user's notification with the same id, so it has its seq and
 * waits on the key before its statement ends; a creation and a read-all run
 * meanwhile; the first connection rolls back, the second goes on and commits.
 *
 * Likewise a "mark unread" that has its snapshot while a read-all commits:
 * it must read the watermark the read-all left, not the one it saw. The same
 * two races against archive-all (migration 0017): a late creation stays
 * unarchived, and an unarchive read under the lock sticks.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { usingPostgres } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { countsAndRows } from "../support/inbox-counts.js";
import { hold, waitingFor } from "../support/pg-locks.js";

let h: TestHerald;

beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(() => h?.stop());

const INSERT = "INSERT INTO notifications (id, user_id, type, priority, title, message) VALUES ($1, $2, 'new_message', 'normal', $3, 'm') RETURNING seq";


/**
 * Creates a notification of `user` whose seq is taken before `bulkChange` runs but which commits after it
 * (the window of the header comment); returns its id and the watermark the bulk change left in `column`.
 */
async function createAcrossBulkChange(
  user: string,
  bulkChange: () => Promise<void>,
  column: "read_through_seq" | "archived_through_seq",
): Promise<{ id: string; watermark: number }> {
  const id = randomUUID();
  const blocker = await hold(h.database);
  const late = await hold(h.database);
  try {
    await blocker.c.query("BEGIN");
    await blocker.c.query(INSERT, [id, `${user}-someone-else`, "blocker"]);
    await late.c.query("BEGIN");
    // Takes its seq, then waits on the blocker's uncommitted id before its statement (and its trigger) ends.
    const pending = late.c.query<{ seq: string }>(INSERT, [id, user, "late"]);
    await waitingFor(h.database, blocker.c);
    await bulkChange();
    const [state] = await h.database.query<{ wm: string }>(`SELECT ${column} AS wm FROM inbox_state WHERE user_id = $1`, [user]);
    await blocker.c.query("ROLLBACK");
    const [row] = await pending;
    await late.c.query("COMMIT");
    // The window was real: the late row's seq is below the watermark the bulk change set.
    expect(Number(row!.seq)).toBeLessThan(Number(state!.wm));
    return { id, watermark: Number(state!.wm) };
  } finally {
    await blocker.c.query("ROLLBACK").catch(() => {});
    await late.c.query("ROLLBACK").catch(() => {});
    blocker.release();
    late.release();
    await Promise.all([blocker.done, late.done]);
  }
}

describe.runIf(usingPostgres)("read-all against a creation still in flight (PostgreSQL)", () => {
  it("a notification whose seq is below the new watermark but that commits after the read-all stays unread", async () => {
    const user = "race-late";
    const service = h.herald.notifications;
    await h.herald.users.upsert({ id: user });
    await service.createAndSendNotification({ userId: user, type: "new_message", title: "before", message: "m" });

    let newer: { seq: number } | null = null;
    const { id, watermark } = await createAcrossBulkChange(
      user,
      async () => {
        newer = await service.createAndSendNotification({ userId: user, type: "new_message", title: "newer", message: "m" });
        expect(await service.markAllRead(user)).toBe(2);
      },
      "read_through_seq",
    );
    expect(watermark).toBe(newer!.seq);

    const unread = await service.getNotifications(user, { read: false });
    expect(unread.notifications.map((n) => n.id)).toEqual([id]);
    expect(unread.notifications[0]!.read).toBe(false);
    expect(unread.total).toBe(1);
    expect(await service.getUnreadCount(user)).toBe(1);
    const [counted] = await h.database.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM notifications n WHERE user_id = $1 AND in_app AND NOT archived AND NOT notification_is_read(n)",
      [user],
    );
    expect(counted!.n).toBe(1);

    // The next read-all covers it like any other.
    expect(await service.markAllRead(user)).toBe(1);
    expect(await service.getUnreadCount(user)).toBe(0);
    expect((await service.getNotifications(user, { read: false })).total).toBe(0);
  });

  it("a notification marked unread while a read-all moves past it stays unread (the watermark is read under the inbox_state lock)", async () => {
    const user = "race-unread";
    const service = h.herald.notifications;
    await h.herald.users.upsert({ id: user });
    const n = (await service.createAndSendNotification({ userId: user, type: "new_message", title: "seen", message: "m" }))!;
    await service.updateNotification(user, n.id, { read: true });

    const blocker = await hold(h.database);
    let unread: Promise<unknown> | undefined;
    try {
      // Holds the notification's row lock: the mark-unread below has its snapshot, then waits for it.
      await blocker.c.query("BEGIN");
      await blocker.c.query("SELECT 1 FROM notifications WHERE id = $1 FOR UPDATE", [n.id]);
      unread = service.updateNotification(user, n.id, { read: false });
      await waitingFor(h.database, blocker.c);
      // A read-all commits meanwhile, its watermark past the notification (it does not need the row: it is not marked unread).
      await service.markAllRead(user);
      const [state] = await h.database.query<{ wm: string }>("SELECT read_through_seq AS wm FROM inbox_state WHERE user_id = $1", [user]);
      expect(Number(state!.wm)).toBeGreaterThanOrEqual(n.seq);
      await blocker.c.query("COMMIT");
      expect(await unread).toEqual({ read: false, archived: false });
    } finally {
      await blocker.c.query("ROLLBACK").catch(() => {});
      blocker.release();
      await blocker.done;
      await unread?.catch(() => {});
    }

    // The user's last word was "unread": the list, the row and the badge say so.
    expect((await service.getNotification(user, n.id))!.read).toBe(false);
    expect((await service.getNotifications(user, { read: false })).notifications.map((x) => x.id)).toEqual([n.id]);
    expect(await service.getUnreadCount(user)).toBe(1);
  });
});

/** The maintained counts of `user` beside COUNT(*) over the rows, as the watermarks make them. */
async function countsOf(user: string): Promise<{ counts: number[]; rows: number[] }> {
  const [u] = await countsAndRows(h.database, [user]);
  return u!;
}

describe.runIf(usingPostgres)("archive-all against a creation still in flight (PostgreSQL)", () => {
  it("a notification whose seq is below the new archive watermark but that commits after the archive-all stays unarchived, with exact counts", async () => {
    const user = "race-archive-late";
    const service = h.herald.notifications;
    await h.herald.users.upsert({ id: user });
    await service.createAndSendNotification({ userId: user, type: "new_message", title: "before", message: "m" });

    let newer: { seq: number } | null = null;
    const { id, watermark } = await createAcrossBulkChange(
      user,
      async () => {
        newer = await service.createAndSendNotification({ userId: user, type: "new_message", title: "newer", message: "m" });
        expect(await service.archiveAll(user)).toBe(2);
      },
      "archived_through_seq",
    );
    expect(watermark).toBe(newer!.seq);

    const inbox = await service.getNotifications(user, { archived: false });
    expect(inbox.notifications.map((n) => ({ id: n.id, archived: n.archived }))).toEqual([{ id, archived: false }]);
    expect(inbox.total).toBe(1);
    expect((await service.getNotification(user, id))!.archived).toBe(false);
    expect(await service.getUnreadCount(user)).toBe(1);
    const { counts, rows } = await countsOf(user);
    expect(counts).toEqual(rows);
    expect(counts).toEqual([3, 2, 1, 2]);

    // The next archive-all covers it like any other.
    expect(await service.archiveAll(user)).toBe(1);
    expect(await service.getUnreadCount(user)).toBe(0);
    expect((await service.getNotifications(user, { archived: false })).total).toBe(0);
    expect((await countsOf(user)).counts).toEqual([3, 3, 0, 3]);
  });

  it("a notification unarchived while an archive-all moves past it stays unarchived (the watermark is read under the inbox_state lock)", async () => {
    const user = "race-unarchive";
    const service = h.herald.notifications;
    await h.herald.users.upsert({ id: user });
    const n = (await service.createAndSendNotification({ userId: user, type: "new_message", title: "kept", message: "m" }))!;
    await service.updateNotification(user, n.id, { archived: true });

    const blocker = await hold(h.database);
    let unarchive: Promise<unknown> | undefined;
    try {
      // Holds the notification's row lock: the unarchive below has its snapshot, then waits for it.
      await blocker.c.query("BEGIN");
      await blocker.c.query("SELECT 1 FROM notifications WHERE id = $1 FOR UPDATE", [n.id]);
      unarchive = service.updateNotification(user, n.id, { archived: false });
      await waitingFor(h.database, blocker.c);
      // An archive-all commits meanwhile, its watermark past the notification (it does not need the row: it is not marked unarchived).
      expect(await service.archiveAll(user)).toBe(0);
      const [state] = await h.database.query<{ wm: string }>("SELECT archived_through_seq AS wm FROM inbox_state WHERE user_id = $1", [user]);
      expect(Number(state!.wm)).toBeGreaterThanOrEqual(n.seq);
      await blocker.c.query("COMMIT");
      expect(await unarchive).toEqual({ read: false, archived: false });
    } finally {
      await blocker.c.query("ROLLBACK").catch(() => {});
      blocker.release();
      await blocker.done;
      await unarchive?.catch(() => {});
    }

    // The user's last word was "unarchive": the list, the row, the badge and the counts say so.
    expect((await service.getNotification(user, n.id))!.archived).toBe(false);
    expect((await service.getNotifications(user, { archived: false })).notifications.map((x) => x.id)).toEqual([n.id]);
    expect(await service.getUnreadCount(user)).toBe(1);
    const { counts, rows } = await countsOf(user);
    expect(counts).toEqual(rows);
  });
});
