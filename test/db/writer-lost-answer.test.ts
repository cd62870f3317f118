/**
 * A creation whose commit's answer is lost (the connection cut after COMMIT,
 * before the reply) is retried with the same id (fddbcdf: also when written
 * alone). Without an idempotency key the retry meets its own id (23505) and
 * answers SELECT_OWN. With a key, the key's ON CONFLICT skipped the row without
 * an error, so the retry answered "key taken" and the service answered the
 * caller's own new notification as a replay (idempotent-replayed, no live
 * push): found by helper-77's attack, 2026-12-02. The batcher now looks for
 * its own row whenever a keyed creation finds its key taken.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/index.js";
import { NotificationInsertBatcher, type PendingInsert } from "../../src/notifications/group-insert.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";
import { dropAfterCommitProxy } from "../support/pg-proxy.js";
import { startTestHerald } from "../support/herald.js";
import { Probe } from "../realtime/helpers.js";

let db: TestDatabase;
beforeAll(async () => {
  if (usingPostgres) db = await openTestDatabase({ poolSize: 2 });
});
afterAll(() => db?.cleanup());

let sequence = 0;
const uniqueTitle = (prefix: string) => `${prefix}-${++sequence}-${Date.now()}`;
function item(title: string, idempotencyKey: string | null): PendingInsert {
  const now = new Date();
  return {
    params: ["asr-1", "new_message", "high", title, "m", null, null, null, null, null, null, idempotencyKey, true, null],
    sends: { channels: ["email"], dueAt: [now], payloads: [JSON.stringify({ mode: "single", inApp: true })] },
    now,
    keyCutoff: new Date(now.getTime() - 86_400_000),
  };
}

describe.runIf(usingPostgres)("a creation whose commit's answer is lost", () => {
  it.each([
    ["without an idempotency key", null],
    ["with an idempotency key", "key"],
  ])("%s: stored once and answered with its own row", async (_name, keyed) => {
    const [{ schema }] = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const proxy = await dropAfterCommitProxy(process.env.DATABASE_URL!, "INSERT INTO idempotency_keys AS ik");
    const viaProxy = await openDatabase({ url: proxy.url, schema, poolSize: 2 });
    try {
      const batcher = new NotificationInsertBatcher(viaProxy, { maxAttempts: 5 });
      proxy.arm(); // no warm-up: the first creation's Parse carries the statement's text
      const title = uniqueTitle(keyed ? "keyed" : "plain");
      const answer = await batcher.insert(item(title, keyed && `${keyed}-${title}`));
      expect(proxy.dropped()).toBe(1);
      const stored = await db.query<{ id: string; title: string }>("SELECT id, title FROM notifications WHERE title = $1", [title]);
      expect(stored.map((r) => r.title)).toEqual([title]);
      // The batcher's contract: undefined means "the key was already taken" (by someone else).
      expect(answer?.id).toBe(stored[0]!.id);
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });

  it("a batch of keyed creations whose answer is lost (the older row-by-row retry): each caller answered with its own row", async () => {
    const [{ schema }] = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const proxy = await dropAfterCommitProxy(process.env.DATABASE_URL!, "INSERT INTO idempotency_keys AS ik");
    const viaProxy = await openDatabase({ url: proxy.url, schema, poolSize: 2 });
    try {
      const batcher = new NotificationInsertBatcher(viaProxy, { maxAttempts: 5 });
      proxy.arm();
      const titles = Array.from({ length: 4 }, () => uniqueTitle("kbatch"));
      const answers = await Promise.all(titles.map((t) => batcher.insert(item(t, `key-${t}`))));
      expect(proxy.dropped()).toBe(1);
      const stored = await db.query<{ title: string }>("SELECT title FROM notifications WHERE title LIKE 'kbatch-%' ORDER BY title");
      expect(stored.map((r) => r.title)).toEqual([...titles].sort());
      expect(answers.map((a) => a?.title)).toEqual(titles);
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });

  it("over HTTP with an idempotency key: a 201 that is not marked replayed, and the user's open socket gets the live push", async () => {
    const [{ schema }] = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const proxy = await dropAfterCommitProxy(process.env.DATABASE_URL!, "INSERT INTO idempotency_keys AS ik");
    const viaProxy = await openDatabase({ url: proxy.url, schema, poolSize: 4 });
    const shared = Object.assign(viaProxy, { label: "postgres", cleanup: () => viaProxy.close() });
    const h = await startTestHerald({ sharedDatabase: shared });
    let probe: Probe | undefined;
    try {
      const userId = "asr-http";
      probe = await Probe.open(h.wsUrl, await h.tokenFor(userId));
      proxy.arm();
      const res = await fetch(`${h.baseUrl}/api/notifications`, {
        method: "POST",
        headers: { authorization: `Bearer ${h.adminToken}`, "content-type": "application/json" },
        body: JSON.stringify({ userId, type: "system", priority: "high", title: "Paid", message: "m", idempotencyKey: "order-lost" }),
      });
      const body = (await res.json()) as { notification: { id: string } };
      expect(proxy.dropped()).toBe(1);
      expect(await db.query("SELECT id FROM notifications WHERE user_id = $1", [userId])).toEqual([{ id: body.notification.id }]);
      const pushed = await Promise.race([
        probe.next("notification").then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_000)),
      ]);
      expect({ status: res.status, replayed: res.headers.get("idempotent-replayed"), pushed }).toEqual({ status: 201, replayed: null, pushed: true });
    } finally {
      probe?.ws.close();
      await h.stop();
      await viaProxy.close();
      await proxy.close();
    }
  }, 30_000);
});
