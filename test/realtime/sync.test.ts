/**
 * Offline sync without loss: what a client missed arrives once, in order,
 * then live messages follow with no gap and no duplicate across the switch.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { HeraldClient, type WebSocketConstructor } from "../../src/client/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";
import type { ServerMessage } from "../../src/protocol/index.js";
import { SyncReader } from "../../src/realtime/sync.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { LOUD, Probe, eventually, insertMany } from "./helpers.js";

let h: TestHerald;

beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(async () => {
  await h?.stop();
});

const create = (userId: string, title: string) =>
  h.herald.notifications.createAndSendNotification({ userId, type: "new_message", title, message: `${title} body` }) as Promise<NotificationDto>;

/** A `ws` WebSocket that remembers every socket it opened and every notification id each one received. */
function recordingWebSocket() {
  const sockets: Array<{ ws: WebSocket; ids: string[] }> = [];
  class Recording extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { perMessageDeflate: false });
      const entry = { ws: this as WebSocket, ids: [] as string[] };
      sockets.push(entry);
      this.on("message", (data) => {
        const m = JSON.parse(String(data)) as ServerMessage;
        if (m.type === "notification") entry.ids.push(m.notification.id);
        if (m.type === "sync") entry.ids.push(...m.notifications.map((n) => n.id));
      });
    }
  }
  return { sockets, Ctor: Recording as unknown as WebSocketConstructor };
}

function countIds(ids: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

describe("sync", () => {
  it("a read on one connection sends notification_updated and a fresh unread_count to the user's other connection", async () => {
    const token = await h.tokenFor("u-devices");
    const phone = await Probe.open(h.wsUrl, token);
    const laptop = await Probe.open(h.wsUrl, token);
    await Promise.all([phone.next("sync"), laptop.next("sync")]);
    const n = await create("u-devices", "read me");
    await laptop.next("notification", (m) => m.notification.id === n.id);
    phone.send({ type: "read", id: n.id });
    const updated = await laptop.next("notification_updated", (m) => m.id === n.id);
    expect(updated).toMatchObject({ read: true, archived: false, deleted: false });
    await laptop.next("unread_count", (m) => m.count === 0);
    expect(phone.of("error")).toEqual([]);
    await Promise.all([phone.close(), laptop.close()]);
  });

  it("a client sync {cursor} returns every notification after the cursor (acknowledged or not) that this socket has not carried yet", async () => {
    const [carried] = await insertMany(h.database, "u-cursor", 1);
    const probe = await Probe.open(h.wsUrl, await h.tokenFor("u-cursor"));
    expect((await probe.next("sync")).notifications.map((n) => n.id)).toEqual([carried!.id]);
    // Rows whose live push this socket never got (written without publishing).
    const [d, e, f] = await insertMany(h.database, "u-cursor", 3);
    probe.send({ type: "ack", id: e!.id });
    await probe.roundTrip();
    await h.herald.realtime.flushDeliveryLog();
    expect((await h.database.query<{ s: string }>("SELECT delivery_status AS s FROM notifications WHERE id = $1", [e!.id]))[0]?.s).toBe("delivered");
    probe.send({ type: "sync", cursor: d!.seq });
    const page = await probe.next("sync", (m) => m.cursor === f!.seq);
    // e was acknowledged, but a cursor resumes per device (delivery rule 4): acks never hide what follows it.
    expect(page.notifications.map((n) => n.id)).toEqual([e!.id, f!.id]);
    probe.send({ type: "sync", cursor: 0 });
    const again = await probe.next("sync", (m) => probe.of("sync").indexOf(m) === 2);
    // Without a cursor: the unacknowledged; d is new to this socket, `carried` and f were already sent on it.
    expect(again.notifications.map((n) => n.id)).toEqual([d!.id]);
    await probe.close();
  });

  it("syncs asked in one turn are answered by one statement, each with its own badge, page, cursor and truncation", async () => {
    const many = await insertMany(h.database, "u-batch-a", 5);
    const one = await insertMany(h.database, "u-batch-b", 1);
    const statements: string[] = [];
    const counting = {
      query: <T,>(text: string, params?: unknown[]) => {
        statements.push(text);
        return h.database.query<T>(text, params);
      },
    };
    const reader = new SyncReader(counting, 3);
    const [a, aAfter, b, empty] = await Promise.all([
      reader.read("u-batch-a", 0, true),
      reader.read("u-batch-a", many[3]!.seq, false),
      reader.read("u-batch-b", 0, true),
      reader.read("u-batch-nobody", 7, true),
    ]);
    expect(statements).toHaveLength(1);
    expect(a.count).toBe(5);
    expect(a.page.notifications.map((n) => n.id)).toEqual(many.slice(0, 3).map((n) => n.id));
    expect(a.page).toMatchObject({ cursor: many[2]!.seq, truncated: true });
    expect(aAfter.count).toBeUndefined();
    expect(aAfter.page.notifications.map((n) => n.id)).toEqual([many[4]!.id]);
    // A complete page resumes after the newest seq of all (one[0], inserted last), so a device always has a cursor.
    expect(aAfter.page).toMatchObject({ cursor: one[0]!.seq, truncated: false });
    expect(b.count).toBe(1);
    expect(b.page.notifications).toEqual([one[0]]);
    expect(empty).toEqual({ count: 0, page: { notifications: [], cursor: Math.max(7, one[0]!.seq), truncated: false } });
  });

  it("a sync page's read and readAt are the inbox's (notification_is_read/notification_read_at), row by row, across a read-all", async () => {
    const user = "u-sync-read";
    const before = await insertMany(h.database, user, 4);
    expect(await h.herald.notifications.markRead(user, before[0]!.id)).toBe(true);
    expect(await h.herald.notifications.markAllRead(user)).toBeGreaterThan(0);
    // Marked unread below the watermark, then two newer than it.
    await h.database.query("UPDATE notifications SET marked_unread = true WHERE id = $1", [before[2]!.id]);
    await insertMany(h.database, user, 2);
    const expected = await h.database.query<{ id: string; read: boolean; readAt: Date | null }>(
      `SELECT id, notification_is_read(notifications) AS read, notification_read_at(notifications) AS "readAt" FROM notifications WHERE user_id = $1 ORDER BY seq`,
      [user],
    );
    const { page } = await new SyncReader(h.database, 50).read(user, 0, true);
    expect(page.notifications.map((n) => ({ id: n.id, read: n.read, readAt: n.readAt }))).toEqual(
      expected.map((r) => ({ id: r.id, read: r.read, readAt: r.readAt === null ? null : new Date(r.readAt).toISOString() })),
    );
    // Every case is there: read by hand, read by the watermark (with the read-all's time), marked unread, newer unread.
    expect(new Set(page.notifications.map((n) => `${n.read}/${n.readAt === null ? "-" : n.id === before[0]!.id ? "own" : "all"}`))).toEqual(
      new Set(["true/own", "true/all", "false/-"]),
    );
    expect(page.notifications.find((n) => n.id === before[2]!.id)).toMatchObject({ read: false, readAt: null });
  });

  it("a device back after an archive-all on another device gets what it missed with archived as the inbox has it (notification_is_archived), and a badge of only the unarchived", async () => {
    const user = "u-sync-archive";
    const token = await h.tokenFor(user);
    const device = await Probe.open(h.wsUrl, token);
    const { cursor } = await device.next("sync");
    await device.close();
    // While it is offline: three created, one archived by hand, everything archived elsewhere, one taken back out, one more created.
    const missed = [await create(user, "m1"), await create(user, "m2"), await create(user, "m3")];
    const service = h.herald.notifications;
    expect(await service.archive(user, missed[0]!.id)).toBe(true);
    expect(await service.archiveAll(user)).toBe(2);
    expect(await service.updateNotification(user, missed[2]!.id, { archived: false })).toEqual({ read: false, archived: false });
    const after = await create(user, "after");

    const back = await Probe.open(h.wsUrl, token, { cursor });
    const [page, badge] = await Promise.all([back.next("sync"), back.next("unread_count")]);
    expect(page.notifications.map((n) => [n.title, n.archived])).toEqual([
      ["m1", true],
      ["m2", true],
      ["m3", false],
      ["after", false],
    ]);
    const expected = await h.database.query<{ id: string; archived: boolean }>(
      "SELECT id, notification_is_archived(notifications) AS archived FROM notifications WHERE user_id = $1 ORDER BY seq",
      [user],
    );
    expect(page.notifications.map((n) => ({ id: n.id, archived: n.archived }))).toEqual(expected);
    expect(page.notifications.map((n) => n.id)).toEqual([...missed, after].map((n) => n.id));
    expect(badge.count).toBe(2);
    await back.close();
  });

  it("a client offline while notifications were created receives each one exactly once, in order, on reconnect", async () => {
    const { sockets, Ctor } = recordingWebSocket();
    const client = new HeraldClient({ url: h.wsUrl, token: await h.tokenFor("u-offline"), WebSocket: Ctor, initialDelayMs: 20, maxDelayMs: 100 });
    const seen: NotificationDto[] = [];
    client.on("notification", (n) => seen.push(n));
    client.connect();
    await client.once("sync");
    const live = await create("u-offline", "while online");
    await eventually(() => seen.length, (n) => n === 1);
    // Drop the connection without a goodbye, create while offline, let the client come back.
    const reconnected = client.once("sync");
    client.on("state", (s) => s === "reconnecting" && undefined);
    sockets[0]!.ws.terminate();
    const missed = [await create("u-offline", "missed 1"), await create("u-offline", "missed 2"), await create("u-offline", "missed 3")];
    await reconnected;
    await eventually(() => seen.length, (n) => n === 4);
    expect(seen.map((n) => n.id)).toEqual([live.id, ...missed.map((n) => n.id)]);
    expect(sockets.length).toBe(2);
    client.close();
  });

  it("a reconnect in the middle of a burst of 1,000 delivers each notification once to the client and at most once per connection", async () => {
    const { sockets, Ctor } = recordingWebSocket();
    const client = new HeraldClient({ url: h.wsUrl, token: await h.tokenFor("u-burst"), WebSocket: Ctor, initialDelayMs: 10, maxDelayMs: 50 });
    const seen = new Map<string, number>();
    client.on("notification", (n) => {
      seen.set(n.id, (seen.get(n.id) ?? 0) + 1);
      // Cut the first connection abruptly in the middle of the burst (frames in flight are lost).
      if (seen.size === 300) sockets[0]!.ws.terminate();
    });
    client.connect();
    await client.once("sync");

    // Rows are written in small batches and each is published as the service would after its insert.
    const created: string[] = [];
    const burst = (async () => {
      for (let i = 0; i < 1000; i += 20) {
        const batch = await insertMany(h.database, "u-burst", 20);
        for (const n of batch) {
          created.push(n.id);
          await h.herald.realtime.publishNotification(n, LOUD);
        }
      }
    })();
    await burst;

    await eventually(() => seen.size, (n) => n === 1000, 20_000);
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    expect(sockets[0]!.ids.length).toBeLessThan(1000);
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
    expect(new Set(seen.keys())).toEqual(new Set(created));
    for (const s of sockets) {
      const dup = [...countIds(s.ids)].filter(([, c]) => c > 1);
      expect(dup).toEqual([]);
    }
    // Every ack reached the database: nothing is left to sync.
    await eventually(
      () => h.database.query<{ n: number }>("SELECT count(*)::int AS n FROM notifications WHERE user_id = 'u-burst' AND delivery_status = 'delivered'"),
      (r) => r[0]!.n === 1000,
      20_000,
    );
    client.close();
  });

  it("more unacknowledged notifications than one sync page arrive truncated, then page by page, each once", async () => {
    const rows = await insertMany(h.database, "u-pages", 1200);
    const client = new HeraldClient({ url: h.wsUrl, token: await h.tokenFor("u-pages"), WebSocket: WebSocket as unknown as WebSocketConstructor });
    const seen: string[] = [];
    const pages: Array<{ count: number; truncated: boolean }> = [];
    let resets = 0;
    client.on("notification", (n) => seen.push(n.id));
    client.on("sync", (list, info) => pages.push({ count: list.length, truncated: info.truncated }));
    client.on("reset", () => resets++);
    client.connect();
    await eventually(() => seen.length, (n) => n === 1200, 15_000);
    expect(seen).toEqual(rows.map((r) => r.id));
    expect(pages).toEqual([
      { count: 500, truncated: true },
      { count: 500, truncated: true },
      { count: 200, truncated: false },
    ]);
    expect(resets).toBe(2);
    client.close();
  });

  it("live notifications created while a connection's sync query runs are neither lost nor duplicated", async () => {
    await insertMany(h.database, "u-switch", 300);
    const token = await h.tokenFor("u-switch");
    // Publish while the connection is syncing: the live frames must be held and deduplicated.
    const opening = Probe.open(h.wsUrl, token);
    const during = await Promise.all([create("u-switch", "during 1"), create("u-switch", "during 2")]);
    const probe = await opening;
    const sync = await probe.next("sync");
    const after = await create("u-switch", "after");
    await probe.next("notification", (m) => m.notification.id === after.id);
    const all = [...sync.notifications.map((n) => n.id), ...probe.of("notification").map((m) => m.notification.id)];
    for (const n of [...during, after]) expect(all.filter((id) => id === n.id)).toHaveLength(1);
    expect(all).toHaveLength(303);
    await probe.close();
  });

  it("the SDK reports connecting, open, reconnecting, open, closed and does not reconnect after close()", async () => {
    const { sockets, Ctor } = recordingWebSocket();
    const client = new HeraldClient({ url: `${h.wsUrl}/ws`, getToken: () => h.tokenFor("u-states"), WebSocket: Ctor, initialDelayMs: 10, maxDelayMs: 20 });
    const states: string[] = [];
    client.on("state", (s) => states.push(s));
    client.connect();
    await client.once("sync");
    sockets[0]!.ws.terminate();
    await client.once("sync");
    client.close();
    expect(states).toEqual(["connecting", "open", "reconnecting", "open", "closed"]);
    await eventually(() => sockets[1]!.ws.readyState, (s) => s === WebSocket.CLOSED);
    expect(sockets).toHaveLength(2);
    expect(client.state).toBe("closed");
  });
});
