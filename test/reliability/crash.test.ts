/**
 * kill -9 of the server in the middle of a burst of REST creations, on
 * embedded PGlite (DATA_DIR) and on PostgreSQL: every creation answered 2xx
 * was durable before the answer (it is there after the restart), and each
 * online user's client, reconnecting on its own, shows each notification
 * exactly once (the SDK de-duplicates by id; re-sent frames are counted as
 * wire duplicates).
 */
import { afterAll, describe, expect, it } from "vitest";
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
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("keeps every 2xx creation and delivers each id once to reconnecting clients", async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const env: Record<string, string> = { DATA_DIR: dir.dir };
    if (storage === "postgres") {
      const db = await scratchDatabase(process.env.DATABASE_URL!);
      cleanups.push(db.drop);
      env.DATABASE_URL = db.url;
    }
    let node: HeraldNode = await startNode(env);
    cleanups.push(() => stopNode(node));
    const admin = await adminToken();
    const tokens = new Map<string, string>();
    for (const u of USERS) tokens.set(u, await providerToken(u));

    const clients: TrackedUser[] = ONLINE.map((u) => trackUser(node.wsUrl, u, tokens.get(u)!));
    cleanups.push(() => clients.forEach((c) => c.client.close()));
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
          const a = await call(node.baseUrl, "POST", "/api/notifications", {
            token: admin,
            body: { userId, type: "new_message", title: `burst ${i}`, message: `message ${i}` },
          });
          if (a.status === 201) {
            accepted.set(a.body.notification.id, userId);
            answered += 1;
            if (answered === KILL_AFTER) killed ??= kill9(node);
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
    fault("kill9");
    expect(answered).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(unanswered).toBeGreaterThan(0); // the kill really landed mid-burst

    node = await startNode(node.env, node.port);

    // Durable before answered: every 2xx id is stored.
    const stored = new Map<string, string[]>();
    for (const u of USERS) stored.set(u, await allIds(node.baseUrl, tokens.get(u)!));
    const storedIds = new Set([...stored.values()].flat());
    const lost = [...accepted.keys()].filter((id) => !storedIds.has(id));

    // The online users' clients reconnect by themselves and catch up: each stored id shown once.
    const missing = () => clients.flatMap((c) => stored.get(c.userId)!.filter((id) => !c.shown.has(id)));
    await eventually(() => missing().length === 0, 30_000, "clients to catch up").catch(() => undefined);
    // A notification created after the restart still arrives live.
    for (const c of clients) {
      const a = await call(node.baseUrl, "POST", "/api/notifications", {
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
});
