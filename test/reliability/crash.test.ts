/**
 * kill -9 of the server in the middle of a burst of REST creations, on
 * embedded PGlite (DATA_DIR) and on PostgreSQL: every creation answered 2xx
 * was durable before the answer (it is there after the restart), and each
 * online user's client, reconnecting on its own, shows each notification
 * exactly once (the SDK de-duplicates by id; re-sent frames are counted as
 * wire duplicates).
 */
import { afterAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/index.js";
import type { BroadcastResult, Created, Listed } from "../support/bodies.js";
import { fault, record } from "./support/figures.js";
import { type HeraldNode, adminToken, eventually, kill9, providerToken, scratchDatabase, startNode, stopNode, tempDir } from "./support/processes.js";
import { allIds, call } from "./support/rest.js";
import { type TrackedUser, trackUser } from "./support/tracking-client.js";

const USERS = Array.from({ length: 8 }, (_, i) => `crash-user-${i}`);
const ONLINE = USERS.slice(0, 4);
const BURST = 360;
const KILL_AFTER = 120;
const CONCURRENCY = 12;

const storages: ("pglite" | "postgres")[] = process.env.DATABASE_URL ? ["pglite", "postgres"] : ["pglite"];

describe.each(storages)("kill -9 during a burst of creations on %s", (storage) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  let node: HeraldNode | undefined;
  let pgUrl: string | undefined;
  let dataDir = "";
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("keeps every 2xx creation and delivers each id once to reconnecting clients", async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    dataDir = dir.dir;
    const env: Record<string, string> = { DATA_DIR: dir.dir };
    if (storage === "postgres") {
      const db = await scratchDatabase(process.env.DATABASE_URL!);
      cleanups.push(db.drop);
      env.DATABASE_URL = pgUrl = db.url;
    }
    node = await startNode(env);
    cleanups.push(() => stopNode(node));
    const admin = await adminToken();
    const tokens = new Map<string, string>();
    for (const u of USERS) tokens.set(u, await providerToken(u));

    const clients: TrackedUser[] = ONLINE.map((u) => trackUser(node!.wsUrl, u, tokens.get(u)!));
    cleanups.push(() => {
      for (const c of clients) c.client.close();
    });
    await eventually(() => clients.every((c) => c.client.state === "open"), 20_000, "clients open");

    // The burst: creations in flight from several concurrent senders; the server dies under them.
    const accepted = new Map<string, string>(); // id -> userId
    let answered = 0;
    let unanswered = 0;
    let killed: Promise<void> | undefined;
    let next = 0;
    const sender = async () => {
      while (next < BURST) {
        const i = next++;
        const userId = USERS[i % USERS.length]!;
        try {
          const a = await call<Created>(node!.baseUrl, "POST", "/api/notifications", {
            token: admin,
            body: { userId, type: "new_message", title: `burst ${i}`, message: `message ${i}` },
          });
          if (a.status === 201) {
            accepted.set(a.body.notification.id, userId);
            answered += 1;
            if (answered === KILL_AFTER) killed ??= kill9(node!);
          } else if (a.status >= 500) {
            throw new Error(`creation answered ${a.status}: ${a.text}`);
          }
        } catch (err) {
          if (err instanceof Error && err.message.startsWith("creation answered")) throw err;
          unanswered += 1; // connection refused or reset: the caller does not know, nothing promised
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, sender));
    await killed;
    node = node!;
    fault("kill9");
    expect(answered).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(unanswered).toBeGreaterThan(0); // the kill really landed mid-burst

    node = await startNode(node.env, node.port);
    const live = node;

    // Durable before answered: every 2xx id is stored.
    const stored = new Map<string, string[]>();
    for (const u of USERS) stored.set(u, await allIds(live.baseUrl, tokens.get(u)!));
    const storedIds = new Set([...stored.values()].flat());
    const lost = [...accepted.keys()].filter((id) => !storedIds.has(id));

    // The online users' clients reconnect by themselves and catch up: each stored id shown once.
    const missing = () => clients.flatMap((c) => stored.get(c.userId)!.filter((id) => !c.shown.has(id)));
    await eventually(() => missing().length === 0, 30_000, "clients to catch up").catch(() => undefined);
    // A notification created after the restart still arrives live.
    for (const c of clients) {
      const a = await call<Created>(live.baseUrl, "POST", "/api/notifications", {
        token: admin,
        body: { userId: c.userId, type: "new_message", title: "after restart", message: "m" },
      });
      expect(a.status).toBe(201);
      stored.get(c.userId)!.push(a.body.notification.id);
    }
    await eventually(() => missing().length === 0, 30_000, "post-restart notifications").catch(() => undefined);

    const userDuplicates = clients.reduce((a, c) => a + c.userDuplicates(), 0);
    const wireDuplicates = clients.reduce((a, c) => a + c.wireDuplicates(), 0);
    const notDelivered = missing().length;
    record({ checked: accepted.size + clients.length, lost: lost.length + notDelivered, userDuplicates, wireDuplicates });
    expect(lost).toEqual([]);
    expect(notDelivered).toBe(0);
    expect(userDuplicates).toBe(0);
  });

  it("a broadcast interrupted by kill -9 is all or nothing; answered broadcasts reach every user once", async () => {
    expect(node).toBeDefined();
    const admin = await adminToken();
    // 1,000 users in the directory; 4 of them online through the SDK.
    const directory = Array.from({ length: 1000 }, (_, i) => `bc-user-${i}`);
    let k = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (k < directory.length) {
          const u = directory[k++]!;
          const a = await call(node!.baseUrl, "PUT", `/api/users/${u}`, { token: admin, body: { name: u } });
          if (a.status !== 200) throw new Error(`PUT /api/users answered ${a.status}`);
        }
      }),
    );
    const tokens = new Map(await Promise.all(directory.slice(0, 4).map(async (u) => [u, await providerToken(u)] as const)));
    const clients = [...tokens].map(([u, t]) => trackUser(node!.wsUrl, u, t));
    cleanups.push(() => {
      for (const c of clients) c.client.close();
    });
    await eventually(() => clients.every((c) => c.client.state === "open"), 20_000, "clients open");

    // Broadcasts one after another; the third is cut by kill -9 while in flight.
    const answered: string[] = []; // titles of broadcasts answered 201
    for (let b = 0; b < 3; b++) {
      const title = `broadcast ${b}`;
      // Rejections are handled at once: the one cut by the kill fails while we are still killing.
      const pending = call<BroadcastResult>(node!.baseUrl, "POST", "/api/notifications/broadcast", { token: admin, body: { type: "platform_update", title, message: "m" } }).then(
        (a) => a,
        (err: Error) => err,
      );
      if (b === 2) {
        await new Promise((r) => setTimeout(r, 5)); // in flight: the INSERT ... SELECT is running or about to
        await kill9(node!);
        fault("kill9");
        const a = await pending;
        if (!(a instanceof Error) && a.status === 201) answered.push(title);
      } else {
        const a = await pending;
        if (a instanceof Error) throw a;
        expect(a.status).toBe(201);
        expect(a.body.count).toBeGreaterThanOrEqual(directory.length);
        answered.push(title);
      }
    }
    node = await startNode(node!.env, node!.port);

    // Each online user shows each answered broadcast exactly once (by title: one row per user per broadcast).
    const titlesOf = (c: TrackedUser) => [...c.shown.keys()];
    const byTitle = async (c: TrackedUser) => {
      const a = await call<Listed>(node!.baseUrl, "GET", "/api/notifications?limit=100&type=platform_update", { token: tokens.get(c.userId)! });
      return new Map(a.body.notifications.map((n) => [n.id, n.title]));
    };
    const stored = new Map(await Promise.all(clients.map(async (c) => [c.userId, await byTitle(c)] as const)));
    await eventually(() => clients.every((c) => [...stored.get(c.userId)!.keys()].every((id) => c.shown.has(id))), 30_000, "broadcasts shown").catch(() => undefined);
    let lost = 0;
    for (const c of clients) {
      const titles = [...stored.get(c.userId)!.values()];
      for (const t of answered) if (titles.filter((x) => x === t).length !== 1) lost += 1;
      lost += [...stored.get(c.userId)!.keys()].filter((id) => !c.shown.has(id)).length;
      expect(titlesOf(c).length).toBe(stored.get(c.userId)!.size);
    }
    const userDuplicates = clients.reduce((a, c) => a + c.userDuplicates(), 0);
    record({ checked: answered.length * clients.length, lost, userDuplicates, wireDuplicates: clients.reduce((a, c) => a + c.wireDuplicates(), 0) });
    expect(lost).toBe(0);
    expect(userDuplicates).toBe(0);

    // All or nothing in the database: every broadcast has a row for every user, or none.
    await stopNode(node);
    const db: Database = pgUrl ? await openDatabase({ url: pgUrl, poolSize: 2 }) : await openDatabase({ dataDir });
    try {
      const rows = await db.query<{ title: string; n: number }>("SELECT title, count(*)::int AS n FROM notifications WHERE type = 'platform_update' GROUP BY title");
      const users = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM users"))[0]!.n;
      for (const r of rows) expect(r.n, r.title).toBe(users);
      for (const t of answered) expect(rows.map((r) => r.title)).toContain(t);
    } finally {
      await db.close();
    }
  });
});
