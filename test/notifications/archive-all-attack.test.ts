/**
 * Adversarial tests of archive all (issue 18 part 3, migration 0017), beside
 * the property test: paging by cursor and by offset across both watermarks
 * for every read x archived filter, rows kept out of the app, another user,
 * and on PostgreSQL the races the property test does not force (a read-all
 * and an archive-all over rows marked both ways, an archive-all committing
 * while a list is being read). Each check is against a plain model of what
 * the user did.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NotificationService } from "../../src/notifications/index.js";
import {
  CLEAR_MARKED_UNARCHIVED,
  CLEAR_MARKED_UNREAD,
  LOCK_INBOX_STATE,
  MOVE_ARCHIVE_WATERMARK,
  MOVE_WATERMARK,
} from "../../src/notifications/sql.js";
import { usingPostgres } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { countsAndRows } from "../support/inbox-counts.js";
import { hold, waitingFor } from "../support/pg-locks.js";

let h: TestHerald;
let service: NotificationService;

beforeAll(async () => {
  h = await startTestHerald();
  service = h.herald.notifications;
});
afterAll(() => h?.stop());

interface Note {
  id: string;
  user: string;
  seq: number;
  inApp: boolean;
  read: boolean;
  archived: boolean;
}

const FILTERS = [undefined, true, false].flatMap((read) => [undefined, true, false].map((archived) => ({ read, archived })));

async function create(notes: Note[], user: string, type = "new_message"): Promise<Note> {
  const n = (await service.createAndSendNotification({ userId: user, type, title: "t", message: "m" }))!;
  const [row] = await h.database.query<{ in_app: boolean }>("SELECT in_app FROM notifications WHERE id = $1", [n.id]);
  const note = { id: n.id, user, seq: n.seq, inApp: row!.in_app, read: false, archived: false };
  notes.push(note);
  return note;
}

async function patch(note: Note, change: { read?: boolean; archived?: boolean }): Promise<void> {
  Object.assign(note, change);
  expect(await service.updateNotification(note.user, note.id, change)).toEqual({ read: note.read, archived: note.archived });
}

function expected(notes: Note[], user: string, filter: { read?: boolean | undefined; archived?: boolean | undefined }): Note[] {
  return notes
    .filter((n) => n.user === user && n.inApp)
    .filter((n) => (filter.read === undefined || n.read === filter.read) && (filter.archived === undefined || n.archived === filter.archived))
    .sort((a, b) => b.seq - a.seq);
}

/** Every filter paged by cursor and by offset (pages of 2) against the model: no row missing, repeated or with a wrong state. */
async function expectPagesMatchModel(notes: Note[], user: string): Promise<void> {
  expect(await service.getUnreadCount(user)).toBe(expected(notes, user, { read: false, archived: false }).length);
  for (const filter of FILTERS) {
    const want = expected(notes, user, filter).map((n) => ({ id: n.id, read: n.read, archived: n.archived }));
    const label = `${user} ${JSON.stringify(filter)}`;
    const byCursor: typeof want = [];
    let before: number | undefined;
    for (let pages = 0; pages < 50; pages++) {
      const page = await service.getNotifications(user, { ...filter, limit: 2, ...(before === undefined ? {} : { before }) });
      expect(page.total, label).toBe(want.length);
      byCursor.push(...page.notifications.map((n) => ({ id: n.id, read: n.read, archived: n.archived })));
      if (page.next === null) break;
      before = page.next;
    }
    expect(byCursor, `${label} by cursor`).toEqual(want);
    const byOffset: typeof want = [];
    for (let offset = 0; offset < want.length + 2; offset += 2) {
      const page = await service.getNotifications(user, { ...filter, limit: 2, offset });
      byOffset.push(...page.notifications.map((n) => ({ id: n.id, read: n.read, archived: n.archived })));
    }
    expect(byOffset, `${label} by offset`).toEqual(want);
  }
  for (const n of notes.filter((x) => x.user === user)) {
    const got = await service.getNotification(user, n.id);
    expect({ read: got?.read, archived: got?.archived }, `get ${n.id}`).toEqual({ read: n.read, archived: n.archived });
  }
}

/** The maintained counts of each user equal COUNT(*) over the rows as the watermarks make them. */
async function expectCountsMatchRows(users: string[]): Promise<void> {
  const all = await countsAndRows(h.database, users);
  expect(all.length).toBeGreaterThan(0);
  for (const u of all) expect(u.counts, u.userId).toEqual(u.rows);
}

describe("archive all, attacked", () => {
  it("an empty inbox and a second archive-all change nothing and answer 0", async () => {
    const user = "aa-empty";
    await h.herald.users.upsert({ id: user });
    expect(await service.archiveAll(user)).toBe(0);
    expect(await service.archiveAll(user)).toBe(0);
    const notes: Note[] = [];
    await create(notes, user);
    expect(await service.archiveAll(user)).toBe(1);
    expect(await service.archiveAll(user)).toBe(0);
    notes[0]!.archived = true;
    await expectPagesMatchModel(notes, user);
    await expectCountsMatchRows([user]);
  });

  it("rows kept out of the app are neither archived nor counted by an archive-all, and another user's inbox is untouched", async () => {
    const [off, other] = ["aa-in-app-off", "aa-bystander"];
    for (const id of [off, other]) await h.herald.users.upsert({ id });
    await service.preferences.update(off, { inAppEnabled: false });
    const notes: Note[] = [];
    for (let i = 0; i < 3; i++) await create(notes, off);
    for (let i = 0; i < 3; i++) await create(notes, other);
    expect(notes.filter((n) => n.user === off).every((n) => !n.inApp)).toBe(true);
    // Only rows kept out of the app: nothing to archive.
    expect(await service.archiveAll(off)).toBe(0);
    const critical = await create(notes, off, "security_alert");
    expect(critical.inApp).toBe(true);
    await patch(notes[3]!, { read: true });
    expect(await service.archiveAll(off)).toBe(1);
    critical.archived = true;
    const rows = await h.database.query<{ id: string; archived: boolean; marked: boolean }>(
      "SELECT id, notification_is_archived(n) AS archived, marked_unarchived AS marked FROM notifications n WHERE user_id = $1 AND NOT in_app",
      [off],
    );
    expect(rows.map((r) => ({ archived: r.archived, marked: r.marked }))).toEqual(rows.map(() => ({ archived: false, marked: false })));
    // A PATCH on a row kept out of the app below the watermark: its own state, no marked_unarchived.
    await patch(notes[0]!, { archived: true });
    await patch(notes[0]!, { archived: false });
    await expectPagesMatchModel(notes, off);
    await expectPagesMatchModel(notes, other);
    await expectCountsMatchRows([off, other]);
  });

  it("paging by cursor and by offset through every read x archived filter stays equal to the model across interleaved bulk and single changes", async () => {
    const [user, other] = ["aa-pages", "aa-pages-other"];
    for (const id of [user, other]) await h.herald.users.upsert({ id });
    const notes: Note[] = [];
    const step = async (): Promise<void> => {
      await expectPagesMatchModel(notes, user);
      await expectPagesMatchModel(notes, other);
      await expectCountsMatchRows([user, other]);
    };
    const mine = (): Note[] => notes.filter((n) => n.user === user);
    const archiveAll = async (): Promise<void> => {
      expect(await service.archiveAll(user)).toBe(mine().filter((n) => !n.archived).length);
      for (const n of mine()) n.archived = true;
    };
    const readAll = async (): Promise<void> => {
      expect(await service.markAllRead(user)).toBe(mine().filter((n) => !n.read).length);
      for (const n of mine()) n.read = true;
    };
    for (let i = 0; i < 6; i++) await create(notes, user);
    for (let i = 0; i < 2; i++) await create(notes, other);
    await patch(notes[1]!, { read: true });
    await patch(notes[2]!, { archived: true });
    await step();
    await archiveAll();
    await step();
    await patch(notes[3]!, { archived: false }); // below the archive watermark
    await patch(notes[4]!, { archived: false, read: true });
    await patch(notes[2]!, { archived: false }); // explicitly archived and below it
    await step();
    await readAll();
    await patch(notes[0]!, { read: false }); // below the read watermark, archived by the archive watermark
    await patch(notes[3]!, { read: false });
    for (let i = 0; i < 4; i++) await create(notes, user); // above both
    await patch(notes[9]!, { archived: true });
    await patch(notes[10]!, { read: true });
    await step();
    // Deleted: one archived by the watermark alone, one marked unarchived, one marked unread and archived.
    for (const n of [notes[5]!, notes[3]!, notes[0]!]) {
      expect(await service.deleteNotification(n.user, n.id)).toBe(true);
      notes.splice(notes.indexOf(n), 1);
    }
    await step();
    await archiveAll();
    await step();
    await patch(notes[1]!, { archived: false });
    await patch(notes[1]!, { archived: true });
    await patch(notes[1]!, { archived: false });
    await readAll();
    await create(notes, user);
    await step();
    await archiveAll();
    await archiveAll();
    await step();
  });

  it("archive-all records no archived event, a PATCH archive of a row it archived records none, and a real unarchive-archive records one", async () => {
    const user = "aa-analytics";
    await h.herald.users.upsert({ id: user });
    const notes: Note[] = [];
    for (let i = 0; i < 3; i++) await create(notes, user);
    expect(await service.archiveAll(user)).toBe(3);
    for (const n of notes) n.archived = true;
    await patch(notes[0]!, { archived: true }); // already archived by the watermark: no transition
    await patch(notes[1]!, { archived: false });
    await patch(notes[1]!, { archived: true });
    await h.herald.runtime.analytics.flush();
    const rows = await h.database.query<{ id: string; n: number }>(
      `SELECT notification_id AS id, count(*)::int AS n FROM analytics_events WHERE notification_id = ANY($1::uuid[]) AND event_type = 'archived' GROUP BY 1`,
      [notes.map((n) => n.id)],
    );
    expect(rows).toEqual([{ id: notes[1]!.id, n: 1 }]);
    await expectPagesMatchModel(notes, user);
  });
});


describe.runIf(usingPostgres)("archive all, attacked on PostgreSQL (concurrent transactions)", () => {
  it("read-alls and archive-alls racing over rows marked both unread and unarchived, with PATCHes and creations, neither deadlock nor drift", async () => {
    const user = "aa-race-both";
    await h.herald.users.upsert({ id: user });
    const notes: Note[] = [];
    for (let i = 0; i < 30; i++) await create(notes, user);
    for (let round = 0; round < 5; round++) {
      await service.markAllRead(user);
      await service.archiveAll(user);
      // Every row taken back out of both watermarks: each bulk change's clear now has work on the same rows.
      await Promise.all(notes.map((n) => service.updateNotification(user, n.id, { read: false, archived: false })));
      const results = await Promise.allSettled([
        service.markAllRead(user),
        service.archiveAll(user),
        service.archiveAll(user),
        service.markAllRead(user),
        ...notes.slice(0, 10).map((n, i) => service.updateNotification(user, n.id, i % 2 ? { archived: false } : { read: false })),
        ...Array.from({ length: 5 }, () => service.createAndSendNotification({ userId: user, type: "new_message", title: "c", message: "m" })),
      ]);
      expect(results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      await expectCountsMatchRows([user]);
    }
  }, 60_000);

  // Found by this attack (list snapshot): Inbox.list reads the watermarks (INBOX_COUNTS) in one statement
  // and the page in another; a bulk change that commits between the two left the page built on the old
  // watermark while each row's state is computed with the new one: GET ?archived=false answered rows with
  // archived: true after an archive-all (and ?read=false rows with read: true after a read-all), with a
  // total the rows contradicted. list() now reads again when a row contradicts its filter.
  const bulkChanges = [
    { name: "an archive-all", filter: { archived: false }, stale: "archived", statements: [CLEAR_MARKED_UNARCHIVED, LOCK_INBOX_STATE, MOVE_ARCHIVE_WATERMARK] },
    { name: "a read-all", filter: { read: false }, stale: "read", statements: [CLEAR_MARKED_UNREAD, LOCK_INBOX_STATE, MOVE_WATERMARK] },
  ] as const;
  for (const bulk of bulkChanges) {
    it(`a list filtered ${JSON.stringify(bulk.filter)} never answers a row with ${bulk.stale}: true, even when ${bulk.name} commits while it is read`, async () => {
      const user = `aa-list-snapshot-${bulk.stale}`;
      await h.herald.users.upsert({ id: user });
      const notes: Note[] = [];
      for (let i = 0; i < 3; i++) await create(notes, user);

      const blocker = await hold(h.database);
      let listing: ReturnType<NotificationService["getNotifications"]> | undefined;
      try {
        // The bulk change's own statements in a transaction that also holds the table: the list's
        // counts (inbox_state) read the old watermark, its page (notifications) waits for the commit.
        await blocker.c.query("BEGIN");
        for (const statement of bulk.statements) await blocker.c.query(statement, [user]);
        await blocker.c.query("LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE");
        listing = service.getNotifications(user, bulk.filter);
        await waitingFor(h.database, blocker.c);
        await blocker.c.query("COMMIT");
      } finally {
        await blocker.c.query("ROLLBACK").catch(() => {});
        blocker.release();
        await blocker.done;
      }
      const page = await listing!;
      // Either view is honest (before: 3 rows; after: none), but not a mix.
      expect(page.notifications.filter((n) => n[bulk.stale])).toEqual([]);
      expect(page.notifications.length).toBe(page.total);
    });
  }

  // Found by this attack (erasure race): archiveAll (and markAllRead) took the inbox_state row with an
  // INSERT ... DO NOTHING, then locked it in a later statement; if the user's erasure deleted the row in
  // between, the lock found no row, MOVE_ARCHIVE_WATERMARK updated none and `moved!` was undefined: a
  // TypeError (a 500) instead of an answer. LOCK_INBOX_STATE is now one upsert that always returns the row.
  // Reached when the erasure locks the row without updating it: a user whose notifications are all kept out
  // of the app (the delete trigger's inbox_state_apply locks the row, has no in-app change to write, so an
  // ON CONFLICT DO NOTHING did not wait), or one with no notifications at all.
  it("an archive-all racing the erasure of a user whose notifications are all out of the app answers a count instead of throwing", async () => {
    const user = "aa-erased";
    await h.herald.users.upsert({ id: user });
    await service.preferences.update(user, { inAppEnabled: false });
    const notes: Note[] = [];
    await create(notes, user);
    expect(notes[0]!.inApp).toBe(false);

    const blocker = await hold(h.database);
    let archiving: Promise<number> | undefined;
    try {
      // The erasure's two steps on inbox_state (eraseUserRows): the row locked by the notifications' delete
      // trigger, later deleted with the user's other tables.
      await blocker.c.query("BEGIN");
      await blocker.c.query("DELETE FROM notifications WHERE user_id = $1", [user]);
      archiving = service.archiveAll(user);
      await waitingFor(h.database, blocker.c);
      await blocker.c.query("DELETE FROM inbox_state WHERE user_id = $1", [user]);
      await blocker.c.query("COMMIT");
    } finally {
      await blocker.c.query("ROLLBACK").catch(() => {});
      blocker.release();
      await blocker.done;
    }
    expect(await archiving!).toBe(0);
  });
});
