/**
 * Issue 18: the per-user counts (inbox_state, migration 0012) are kept, not
 * counted, and must never drift. Any interleaving of creations (in-app and
 * kept out of the app), reads, unreads, read-all, archive, unarchive,
 * archive-all, delete and broadcasts leaves, after every step, each user's
 * maintained counts equal to COUNT(*) over the rows, and each row's read and
 * archived state (as the watermarks make them), get by id, the badge and
 * every list filter's total and rows equal to a plain model of what the user
 * did (unarchive and mark unread below a watermark included). On PostgreSQL,
 * concurrent writers (creations, broadcasts, read-alls, archive-alls, reads,
 * unarchives) for one user leave the counts equal to COUNT(*) too.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NotificationService } from "../../src/notifications/index.js";
import { usingPostgres } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { countsAndRows } from "../support/inbox-counts.js";

let h: TestHerald;
let service: NotificationService;

const USERS = ["pc-0", "pc-1", "pc-2"];
// pc-2 switched in-app off: its new_message rows are stored with in_app false (never listed or counted), its security_alert rows in-app.
const TYPES = ["new_message", "security_alert"] as const;

interface Note {
  user: string;
  seq: number;
  type: string;
  inApp: boolean;
  read: boolean;
  archived: boolean;
}

type Op =
  | { op: "create"; user: number; type: number }
  | { op: "broadcast"; type: number }
  | { op: "read" | "unread" | "archive" | "unarchive" | "delete"; target: number }
  | { op: "readAll"; user: number }
  | { op: "archiveAll"; user: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("create" as const), user: fc.nat(2), type: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("broadcast" as const), type: fc.nat(1) }) },
  {
    weight: 5,
    arbitrary: fc.record({ op: fc.constantFrom("read" as const, "unread" as const, "archive" as const, "unarchive" as const, "delete" as const), target: fc.nat() }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("readAll" as const), user: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("archiveAll" as const), user: fc.nat(2) }) },
  // More of the exceptions below a watermark (a bulk change, then one row taken back out of it).
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("unread" as const, "unarchive" as const), target: fc.nat() }) },
);

/** Every list filter the inbox has (read x archived, and a type with the center's default and unread filters). */
const FILTERS: { read?: boolean; archived?: boolean; type?: string }[] = [
  ...[undefined, true, false].flatMap((read) =>
    [undefined, true, false].map((archived) => ({ ...(read === undefined ? {} : { read }), ...(archived === undefined ? {} : { archived }) })),
  ),
  { archived: false, type: TYPES[0] },
  { read: false, archived: false, type: TYPES[1] },
];

beforeAll(async () => {
  h = await startTestHerald();
  service = h.herald.notifications;
});
afterAll(() => h?.stop());

async function reset(): Promise<void> {
  await h.database.query("DELETE FROM notifications");
  for (const id of USERS) await h.herald.users.upsert({ id });
  await service.preferences.update("pc-2", { inAppEnabled: false });
}

/** The maintained counts against COUNT(*) over the rows, for every user (both from the database). */
async function expectCountsMatchRows(): Promise<void> {
  for (const u of await countsAndRows(h.database)) expect(u.counts, u.userId).toEqual(u.rows);
}

/** Every row's read and archived state, get by id, each badge and every list filter's total and rows against the model. */
async function expectModel(notes: Map<string, Note>): Promise<void> {
  const rows = await h.database.query<{ id: string; read: boolean; archived: boolean }>(
    "SELECT id, notification_is_read(n) AS read, notification_is_archived(n) AS archived FROM notifications n",
  );
  expect(new Map(rows.map((r) => [r.id, { read: r.read, archived: r.archived }]))).toEqual(
    new Map([...notes].map(([id, n]) => [id, { read: n.read, archived: n.archived }])),
  );
  for (const [id, n] of notes) {
    const got = await service.getNotification(n.user, id);
    expect({ read: got?.read, archived: got?.archived }, `get ${id}`).toEqual({ read: n.read, archived: n.archived });
  }
  for (const user of USERS) {
    const mine = [...notes].filter(([, n]) => n.user === user && n.inApp).sort(([, a], [, b]) => b.seq - a.seq);
    expect(await service.getUnreadCount(user)).toBe(mine.filter(([, n]) => !n.read && !n.archived).length);
    for (const filter of FILTERS) {
      const expected = mine
        .filter(([, n]) => (filter.read === undefined || n.read === filter.read) && (filter.archived === undefined || n.archived === filter.archived) && (filter.type === undefined || n.type === filter.type))
        .map(([id]) => id);
      const page = await service.getNotifications(user, { ...filter, limit: 100 });
      expect({ total: page.total, ids: page.notifications.map((n) => n.id) }, `${user} ${JSON.stringify(filter)}`).toEqual({ total: expected.length, ids: expected.slice(0, 100) });
    }
  }
}

async function apply(op: Op, notes: Map<string, Note>): Promise<void> {
  if (op.op === "create") {
    const user = USERS[op.user]!;
    const n = (await service.createAndSendNotification({ userId: user, type: TYPES[op.type]!, title: "t", message: "m" }))!;
    const [row] = await h.database.query<{ in_app: boolean }>("SELECT in_app FROM notifications WHERE id = $1", [n.id]);
    notes.set(n.id, { user, seq: n.seq, type: n.type, inApp: row!.in_app, read: false, archived: false });
  } else if (op.op === "broadcast") {
    const { broadcastId } = await service.broadcast({ type: TYPES[op.type]!, title: "b", message: "m" });
    const rows = await h.database.query<{ id: string; user_id: string; seq: string | number; in_app: boolean }>(
      "SELECT id, user_id, seq, in_app FROM notifications WHERE broadcast_id = $1",
      [broadcastId],
    );
    for (const r of rows) notes.set(r.id, { user: r.user_id, seq: Number(r.seq), type: TYPES[op.type]!, inApp: r.in_app, read: false, archived: false });
  } else if (op.op === "readAll") {
    const user = USERS[op.user]!;
    const mine = [...notes.values()].filter((n) => n.user === user && n.inApp);
    expect(await service.markAllRead(user)).toBe(mine.filter((n) => !n.read).length);
    for (const n of mine) n.read = true;
  } else if (op.op === "archiveAll") {
    const user = USERS[op.user]!;
    const mine = [...notes.values()].filter((n) => n.user === user && n.inApp);
    expect(await service.archiveAll(user)).toBe(mine.filter((n) => !n.archived).length);
    for (const n of mine) n.archived = true;
  } else if (notes.size > 0) {
    const id = [...notes.keys()][op.target % notes.size]!;
    const note = notes.get(id)!;
    if (op.op === "delete") {
      expect(await service.deleteNotification(note.user, id)).toBe(true);
      notes.delete(id);
      return;
    }
    const change = { read: { read: true }, unread: { read: false }, archive: { archived: true }, unarchive: { archived: false } }[op.op];
    expect(await service.updateNotification(note.user, id, change)).toEqual({ read: change.read ?? note.read, archived: change.archived ?? note.archived });
    Object.assign(note, change);
  }
}

describe("inbox counts (property)", () => {
  it("any interleaving of creations, reads, unreads, read-all, archive, unarchive, archive-all, delete and broadcasts keeps the counts equal to COUNT(*) and every list, get and badge equal to the model after every step", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 30, size: "max" }), async (ops) => {
        await reset();
        await expectCountsMatchRows();
        const notes = new Map<string, Note>();
        for (const op of ops) {
          await apply(op, notes);
          await expectCountsMatchRows();
          await expectModel(notes);
        }
      }),
      { numRuns: usingPostgres ? 12 : 8 },
    );
  }, 240_000);

  it.runIf(usingPostgres)("concurrent creations, broadcasts, reads, read-alls, archive-alls and unarchives for one user keep the counts equal to COUNT(*) (PostgreSQL)", async () => {
    await reset();
    const user = "pc-0";
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) => service.createAndSendNotification({ userId: user, type: "new_message", title: `seed ${i}`, message: "m" })),
    );
    const ids = created.map((n) => n!.id);
    await Promise.all([
      ...Array.from({ length: 60 }, (_, i) => service.createAndSendNotification({ userId: user, type: "new_message", title: `c ${i}`, message: "m" })),
      ...Array.from({ length: 6 }, () => service.markAllRead(user)),
      ...Array.from({ length: 4 }, () => service.archiveAll(user)),
      ...Array.from({ length: 3 }, () => service.broadcast({ type: "new_message", title: "b", message: "m" })),
      ...ids.map((id, i) => service.updateNotification(user, id, [{ read: false }, { archived: true }, { archived: false }, { read: false, archived: false }][i % 4]!)),
      ...ids.slice(0, 5).map((id) => service.deleteNotification(user, id)),
    ]);
    await expectCountsMatchRows();
  }, 60_000);
});
