/**
 * Issue 18 through real HTTP: the keyset cursor (`?before=<seq>`, `next`)
 * beside the guide's limit/offset, totals from the maintained counts (and
 * capped with a type filter), and mark all read and archive all by
 * watermark: lists, filters, get by id, the badge and a later "mark unread" /
 * "unarchive" agree with them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TOTAL_CAP } from "../../src/notifications/index.js";
import type { Listed, NotificationDto } from "../support/bodies.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { api, expectProblem } from "./api.js";

let h: TestHerald;
let call: ReturnType<typeof api>;

beforeAll(async () => {
  h = await startTestHerald();
  call = api(h);
});
afterAll(() => h?.stop());

/** `count` notifications for `userId`, oldest first, types alternating new_message / payment_received. */
async function seed(userId: string, count: number): Promise<NotificationDto[]> {
  const out: NotificationDto[] = [];
  for (let i = 0; i < count; i++) {
    const type = i % 2 ? "payment_received" : "new_message";
    out.push((await h.herald.notifications.createAndSendNotification({ userId, type, title: `n${i}`, message: "m" }))!);
  }
  return out;
}

async function list(token: string, query: string): Promise<Listed> {
  const res = await call<Listed>("GET", `/api/notifications?${query}`, { token });
  expect(res.status).toBe(200);
  return res.body;
}

describe("paging by cursor", () => {
  it("walks the whole inbox newest first by `next`, each notification once, and the last page says next: null", async () => {
    const made = await seed("pages-walk", 23);
    const token = await h.tokenFor("pages-walk");
    const seen: number[] = [];
    let query = "limit=10";
    for (;;) {
      const page = await list(token, query);
      expect(page.total).toBe(23);
      seen.push(...page.notifications.map((n) => n.seq));
      if (page.next === null) break;
      expect(page.next).toBe(page.notifications.at(-1)!.seq);
      query = `limit=10&before=${page.next}`;
    }
    expect(seen).toEqual(made.map((n) => n.seq).reverse());
    // An exactly full last page: the next one is empty, not an error.
    const full = await list(token, `limit=3&before=${made[3]!.seq}`);
    expect(full.notifications.map((n) => n.title)).toEqual(["n2", "n1", "n0"]);
    expect(full.next).toBeNull();
  });

  it("combines the cursor with type and read filters, and keeps the guide's limit/offset", async () => {
    const made = await seed("pages-filter", 12);
    const token = await h.tokenFor("pages-filter");
    const payments = made.filter((n) => n.type === "payment_received").reverse();
    const first = await list(token, "limit=4&type=payment_received");
    expect(first.notifications.map((n) => n.id)).toEqual(payments.slice(0, 4).map((n) => n.id));
    expect(first.total).toBe(6);
    const second = await list(token, `limit=4&type=payment_received&before=${first.next}`);
    expect(second.notifications.map((n) => n.id)).toEqual(payments.slice(4).map((n) => n.id));
    expect(second.next).toBeNull();
    const byOffset = await list(token, "limit=5&offset=5");
    expect(byOffset.notifications.map((n) => n.id)).toEqual([...made].reverse().slice(5, 10).map((n) => n.id));
    // The guide's call, as written.
    const guide = await h.herald.notifications.getNotifications("pages-filter", { limit: 20, offset: 0, read: false, archived: false });
    expect(guide.notifications).toHaveLength(12);
    expect(guide.total).toBe(12);
  });

  it("refuses a bad cursor with a 400 problem", async () => {
    const token = await h.tokenFor("pages-bad");
    for (const before of ["0", "-3", "abc", "1.5"]) {
      expectProblem(await call("GET", `/api/notifications?before=${before}`, { token }), 400, "HERALD_VALIDATION");
    }
  });

  it("caps a type-filtered total at TOTAL_CAP and says so; without a type filter the total stays exact", async () => {
    await h.database.query(
      `INSERT INTO notifications (user_id, type, priority, title, message)
       SELECT 'pages-cap', 'platform_update', 'low', 't' || g, 'm' FROM generate_series(1, $1::int) g`,
      [TOTAL_CAP + 5],
    );
    const token = await h.tokenFor("pages-cap");
    const typed = await list(token, "limit=1&type=platform_update");
    expect(typed).toMatchObject({ total: TOTAL_CAP, totalCapped: true, unreadCount: TOTAL_CAP + 5 });
    expect((await list(token, "limit=1")).total).toBe(TOTAL_CAP + 5);
    expect((await list(token, "limit=1&type=new_message")).total).toBe(0);
  });
});

describe("mark all read by watermark", () => {
  it("reads everything at once; a later mark-unread, new notifications and a second read-all agree in lists, filters and the badge", async () => {
    const made = await seed("pages-wm", 8);
    const token = await h.tokenFor("pages-wm");
    await call("PATCH", `/api/notifications/${made[1]!.id}`, { token, body: { archived: true } });
    expect((await call<{ updated: number }>("POST", "/api/notifications/read-all", { token })).body.updated).toBe(8);
    let page = await list(token, "limit=50");
    expect(page.unreadCount).toBe(0);
    expect(page.notifications.every((n) => n.read && n.readAt !== null)).toBe(true);
    expect((await list(token, "read=false")).notifications).toEqual([]);
    expect((await list(token, "read=true&archived=true")).total).toBe(1);

    // Below the watermark, marking unread sticks (and shows in the unread filter); above it, new ones are unread.
    await call("PATCH", `/api/notifications/${made[2]!.id}`, { token, body: { read: false } });
    const later = await seed("pages-wm", 2);
    page = await list(token, "read=false&limit=2");
    expect(page.notifications.map((n) => n.id)).toEqual([later[1]!.id, later[0]!.id]);
    expect(page).toMatchObject({ total: 3, unreadCount: 3 });
    const rest = await list(token, `read=false&limit=2&before=${page.next}`);
    expect(rest.notifications.map((n) => ({ id: n.id, read: n.read, readAt: n.readAt }))).toEqual([{ id: made[2]!.id, read: false, readAt: null }]);
    expect((await call<NotificationDto>("GET", `/api/notifications/${made[2]!.id}`, { token })).body.read).toBe(false);

    expect((await call<{ updated: number }>("POST", "/api/notifications/read-all", { token })).body.updated).toBe(3);
    page = await list(token, "limit=50");
    expect(page.unreadCount).toBe(0);
    expect(page.notifications.filter((n) => !n.read)).toEqual([]);
    expect((await call<{ updated: number }>("POST", "/api/notifications/read-all", { token })).body.updated).toBe(0);
    // Reading one the watermark already read changes nothing and records no `opened`.
    expect((await call<{ read: boolean }>("PATCH", `/api/notifications/${made[5]!.id}`, { token, body: { read: true } })).body).toMatchObject({ read: true });
    await h.herald.runtime.analytics.flush();
    const opened = await h.database.query("SELECT 1 FROM analytics_events WHERE user_id = 'pages-wm' AND event_type = 'opened'");
    expect(opened).toEqual([]);
  });
});

describe("archive all by watermark", () => {
  it("archives everything at once; a later unarchive, new notifications and a second archive-all agree in lists, filters, get and the badge, and record no archived events", async () => {
    const made = await seed("pages-awm", 8);
    const token = await h.tokenFor("pages-awm");
    await call("PATCH", `/api/notifications/${made[1]!.id}`, { token, body: { archived: true } });
    await call("PATCH", `/api/notifications/${made[3]!.id}`, { token, body: { read: true } });
    expect((await call<{ updated: number }>("POST", "/api/notifications/archive-all", { token })).body.updated).toBe(7);
    let page = await list(token, "limit=50");
    expect(page.unreadCount).toBe(0);
    expect(page.notifications.map((n) => n.archived)).toEqual(Array(8).fill(true));
    expect(await list(token, "archived=false")).toMatchObject({ notifications: [], total: 0, next: null });
    expect((await list(token, "archived=true&limit=50")).total).toBe(8);
    // Archiving keeps the read state: 7 unread, all of them archived now.
    expect((await list(token, "read=false&archived=true")).total).toBe(7);
    expect((await list(token, "read=false&archived=false")).total).toBe(0);
    expect((await call<NotificationDto>("GET", `/api/notifications/${made[2]!.id}`, { token })).body).toMatchObject({ archived: true, read: false });

    // Below the watermark, unarchiving sticks (in the not-archived lists and the badge); above it, new ones are not archived.
    const unarchived = await call<NotificationDto>("PATCH", `/api/notifications/${made[2]!.id}`, { token, body: { archived: false } });
    expect(unarchived.body).toMatchObject({ archived: false, read: false });
    const later = await seed("pages-awm", 2);
    page = await list(token, "archived=false&limit=2");
    expect(page.notifications.map((n) => n.id)).toEqual([later[1]!.id, later[0]!.id]);
    expect(page).toMatchObject({ total: 3, unreadCount: 3 });
    const rest = await list(token, `archived=false&limit=2&before=${page.next}`);
    expect(rest.notifications.map((n) => ({ id: n.id, archived: n.archived }))).toEqual([{ id: made[2]!.id, archived: false }]);
    expect((await list(token, "read=false&archived=false&limit=10")).notifications.map((n) => n.id)).toEqual([later[1]!.id, later[0]!.id, made[2]!.id]);
    expect((await list(token, "archived=true&limit=50")).total).toBe(7);

    expect((await call<{ updated: number }>("POST", "/api/notifications/archive-all", { token })).body.updated).toBe(3);
    page = await list(token, "archived=false");
    expect(page).toMatchObject({ notifications: [], total: 0, unreadCount: 0 });
    expect((await list(token, "archived=true&read=false&limit=50")).total).toBe(9);
    expect((await call<{ updated: number }>("POST", "/api/notifications/archive-all", { token })).body.updated).toBe(0);
    // Only the one archived by hand recorded `archived`; the archive-alls recorded none.
    await h.herald.runtime.analytics.flush();
    const archived = await h.database.query<{ notification_id: string }>(
      "SELECT notification_id FROM analytics_events WHERE user_id = 'pages-awm' AND event_type = 'archived'",
    );
    expect(archived.map((r) => r.notification_id)).toEqual([made[1]!.id]);
  });

  it("answers 401 without a token, and one user's archive-all leaves another's inbox as it was", async () => {
    expectProblem(await call("POST", "/api/notifications/archive-all"), 401, "HERALD_UNAUTHENTICATED");
    const [mine] = await seed("pages-arch-me", 1);
    const theirs = await seed("pages-arch-other", 2);
    const me = await h.tokenFor("pages-arch-me");
    const other = await h.tokenFor("pages-arch-other");
    expect((await call<{ updated: number }>("POST", "/api/notifications/archive-all", { token: me })).body).toEqual({ updated: 1 });
    expect((await call<NotificationDto>("GET", `/api/notifications/${mine!.id}`, { token: me })).body.archived).toBe(true);
    const untouched = await list(other, "archived=false");
    expect(untouched).toMatchObject({ total: 2, unreadCount: 2 });
    expect(untouched.notifications.map((n) => n.id)).toEqual([theirs[1]!.id, theirs[0]!.id]);
    const [state] = await h.database.query<{ wm: string | number }>("SELECT archived_through_seq AS wm FROM inbox_state WHERE user_id = 'pages-arch-other'");
    expect(Number(state?.wm ?? 0)).toBe(0);
  });
});
