/**
 * Attacks on the creation write path of issue 17 (commits 7c22c03, 68f2b60):
 * batches on connections of their own (Database.openWriter), the queue
 * trigger silenced for those sessions and one coalesced wake sent after the
 * commit. Each test states what a caller or a delivery worker is promised and
 * breaks the writer's surroundings (killed backends, a busy pool, a bad row,
 * a later migration) to check it still holds.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NotificationRow, openDatabase } from "../../src/db/index.js";
import { NotificationInsertBatcher, type PendingInsert } from "../../src/notifications/group-insert.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";
import { dropAfterCommitProxy } from "../support/pg-proxy.js";

const CHANNEL = "herald_queue";
/** The bound for an immediate out-of-app send to start (p99), far above a wake's normal latency. */
const WAKE_BOUND_MS = 300;

let db: TestDatabase;
beforeAll(async () => {
  // A small pool, so that a few slow statements (analytics, backlog reads) fill it.
  db = await openTestDatabase({ poolSize: 2 });
});
afterAll(() => db?.cleanup());

let sequence = 0;
function item(title: string, overrides: { data?: string | null; idempotencyKey?: string | null; userId?: string } = {}): PendingInsert {
  const now = new Date();
  return {
    params: [overrides.userId ?? "wa-1", "new_message", "high", title, "m", null, null, null, null, null, overrides.data ?? null, overrides.idempotencyKey ?? null, true, null],
    sends: { channels: ["email"], dueAt: [now], payloads: [JSON.stringify({ mode: "single", inApp: true })] },
    now,
    keyCutoff: new Date(now.getTime() - 86_400_000),
  };
}
const uniqueTitle = (prefix: string) => `${prefix}-${++sequence}-${Date.now()}`;

async function storedTitles(prefix: string): Promise<string[]> {
  const rows = await db.query<{ title: string }>("SELECT title FROM notifications WHERE title LIKE $1 ORDER BY title", [`${prefix}-%`]);
  return rows.map((r) => r.title);
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe("a batch with a bad row or a shared idempotency key", () => {
  it("one row that breaks the statement fails alone: the others are stored and each caller is told its own outcome", async () => {
    const batcher = new NotificationInsertBatcher(db, { maxAttempts: 5 });
    const titles = Array.from({ length: 6 }, () => uniqueTitle("bad"));
    const settled = await Promise.allSettled(titles.map((t, i) => batcher.insert(item(t, { data: i === 3 ? "{not json" : null }))));
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
    const fulfilledTitles = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value!.title] : []));
    expect(fulfilledTitles).toEqual(titles.filter((_, i) => i !== 3));
    expect(await storedTitles("bad")).toEqual([...fulfilledTitles].sort());
  });

  it("two creations with one idempotency key in one batch store one row; one caller gets it, the other is told the key was taken", async () => {
    const batcher = new NotificationInsertBatcher(db, { maxAttempts: 5 });
    const key = `k-${Date.now()}`;
    const a = uniqueTitle("idem");
    const b = uniqueTitle("idem");
    const [first, second] = await Promise.all([batcher.insert(item(a, { idempotencyKey: key })), batcher.insert(item(b, { idempotencyKey: key }))]);
    const stored = await storedTitles("idem");
    expect(stored).toHaveLength(1);
    const answers = [first, second].filter((r): r is NotificationRow => r !== undefined);
    expect(answers.map((r) => r.title)).toEqual(stored);
  });
});

describe.runIf(usingPostgres)("writer connections under attack (PostgreSQL)", () => {
  it("writer backends terminated while idle: the next creations are stored and answered", async () => {
    const batcher = new NotificationInsertBatcher(db, { maxAttempts: 5 });
    await batcher.insert(item(uniqueTitle("idle")));
    // The writer's backends are the ones whose session has herald.queue_wake set: find them by their last statement
    // (the batch, or the wake after it), among this file's own (application_name): killing another file's idle
    // backend races with that file's next statement on it (CI, 2026-12-02: archive-all-attack failed so).
    const killed = await admin(async (c) => {
      const rows = await c.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND state = 'idle' AND (query LIKE '%INSERT INTO idempotency_keys AS ik%' OR query LIKE 'SELECT pg_notify($1, current_schema())') AND pid <> pg_backend_pid()",
        [db.schema],
      );
      for (const r of rows.rows) await c.query("SELECT pg_terminate_backend($1)", [r.pid]);
      return rows.rows.length;
    });
    expect(killed).toBeGreaterThan(0);
    const titles = Array.from({ length: 4 }, () => uniqueTitle("idle"));
    const rows = await Promise.all(titles.map((t) => batcher.insert(item(t))));
    expect(rows.map((r) => r!.title)).toEqual(titles);
    expect(await storedTitles("idle")).toHaveLength(5);
  });

  it("writer backends terminated mid-batch: every creation answered as stored is stored, once, and nothing answered as failed is", async () => {
    const batcher = new NotificationInsertBatcher(db, { maxAttempts: 5 });
    await batcher.insert(item(uniqueTitle("warm")));
    const [{ oid }] = (await db.query<{ oid: number }>("SELECT 'notifications'::regclass::oid AS oid")) as [{ oid: number }];
    const locker = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await locker.connect();
    try {
      await locker.query("BEGIN");
      const [{ schema }] = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
      await locker.query(`LOCK TABLE "${schema}".notifications IN ACCESS EXCLUSIVE MODE`);
      const titles = Array.from({ length: 8 }, () => uniqueTitle("mid"));
      const settling = Promise.allSettled(titles.map((t) => batcher.insert(item(t))));
      // Wait until the writer's statements block on the lock, then kill those backends.
      await expect
        .poll(async () => (await locker.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE relation = $1 AND NOT granted", [oid])).rows[0]!.n, { timeout: 5_000 })
        .toBeGreaterThan(0);
      const terminated = await locker.query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE relation = $1 AND NOT granted", [oid]);
      expect(terminated.rowCount).toBeGreaterThan(0);
      await locker.query("COMMIT");
      const settled = await settling;
      const answeredStored = settled.flatMap((s) => (s.status === "fulfilled" && s.value ? [s.value.title] : []));
      const stored = await storedTitles("mid");
      expect(stored).toEqual([...answeredStored].sort());
      // The writer still works afterwards.
      const after = uniqueTitle("mid");
      expect((await batcher.insert(item(after)))!.title).toBe(after);
    } finally {
      await locker.end().catch(() => undefined);
    }
  });

  // Found in CI (2026-12-02): a creation written alone (a batch of one) failed with the error of a backend
  // terminated under it, where a batch of several retried each row on a new connection.
  it("a creation written alone whose backend is terminated under it is stored, once, on a new connection", async () => {
    const batcher = new NotificationInsertBatcher(db, { maxAttempts: 5 });
    await batcher.insert(item(uniqueTitle("warm")));
    const [{ oid }] = (await db.query<{ oid: number }>("SELECT 'notifications'::regclass::oid AS oid")) as [{ oid: number }];
    const [{ schema }] = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const locker = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await locker.connect();
    try {
      await locker.query("BEGIN");
      await locker.query(`LOCK TABLE "${schema}".notifications IN ACCESS EXCLUSIVE MODE`);
      const title = uniqueTitle("alone");
      const answer = batcher.insert(item(title));
      await expect
        .poll(async () => (await locker.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE relation = $1 AND NOT granted", [oid])).rows[0]!.n, { timeout: 5_000 })
        .toBe(1);
      const terminated = await locker.query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE relation = $1 AND NOT granted", [oid]);
      expect(terminated.rowCount).toBe(1);
      await locker.query("COMMIT");
      expect((await answer)!.title).toBe(title);
      expect(await storedTitles("alone")).toEqual([title]);
    } finally {
      await locker.end().catch(() => undefined);
    }
  });

  // Found by this attack (older than 7c22c03): a batch whose connection was lost after its commit (the
  // answer never arrived) was retried row by row with new ids, so every notification of the batch was
  // stored twice. The retry now keeps each creation's id and answers with the row that committed.
  it("a batch whose connection drops after the commit (answer lost) is not stored a second time by the row-by-row retry", async () => {
    // A writer's prepared statement, once warmed up, is named herald_w* in each Bind.
    const proxy = await dropAfterCommitProxy(process.env.DATABASE_URL!, "herald_w");
    const [{ schema }] = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const viaProxy = await openDatabase({ url: proxy.url, schema, poolSize: 2 });
    try {
      const batcher = new NotificationInsertBatcher(viaProxy, { maxAttempts: 5 });
      await batcher.insert(item(uniqueTitle("warm")));
      proxy.arm();
      const titles = Array.from({ length: 5 }, () => uniqueTitle("lost"));
      const settled = await Promise.allSettled(titles.map((t) => batcher.insert(item(t))));
      expect(proxy.dropped()).toBe(1);
      const stored = await storedTitles("lost");
      // Each title once, and every caller answered with its own row (the retry found what the batch committed).
      expect(stored).toEqual([...titles].sort());
      expect(settled.map((s) => (s.status === "fulfilled" ? s.value!.title : String(s.reason)))).toEqual(titles);
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });

  it("a column added by a later migration (another instance upgrading first) does not break the prepared INSERT", async () => {
    const batcher = new NotificationInsertBatcher(db, { maxAttempts: 5 });
    await Promise.all([batcher.insert(item(uniqueTitle("mig"))), batcher.insert(item(uniqueTitle("mig")))]);
    await db.query("ALTER TABLE notifications ADD COLUMN attack_extra integer");
    try {
      const titles = Array.from({ length: 4 }, () => uniqueTitle("mig"));
      const rows = await Promise.all(titles.map((t) => batcher.insert(item(t))));
      expect(rows.map((r) => r!.title)).toEqual(titles);
    } finally {
      await db.query("ALTER TABLE notifications DROP COLUMN attack_extra");
    }
  });

  it("a statement that failed to prepare (its table not yet migrated) works on the same connection once the table exists", async () => {
    const writer = db.openWriter!({ connections: 1 })!;
    const text = "SELECT count(*)::int AS n FROM attack_later_table";
    await expect(writer.query(text)).rejects.toThrow(/attack_later_table/);
    await db.query("CREATE TABLE attack_later_table (x int)");
    try {
      expect(await writer.query<{ n: number }>(text)).toEqual([{ n: 0 }]);
    } finally {
      await db.query("DROP TABLE attack_later_table");
    }
  });

  it("Database.close ends the writer's connections (nothing left in pg_stat_activity)", async () => {
    const other = await openTestDatabase({ poolSize: 1 });
    const writer = other.openWriter!({ connections: 2, settings: { "herald.queue_wake": "client" } })!;
    const pids = await Promise.all([1, 2].map(async () => (await writer.query<{ pid: number }>("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)"))[0]!.pid));
    expect(pids.length).toBe(2);
    await other.cleanup();
    const left = await admin(async (c) => (await c.query("SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])", [pids])).rows);
    expect(left).toEqual([]);
  });

  // Found by this attack: the coalesced wake went through the shared pool, so a busy pool (slow reads)
  // held it back long after the creation was answered (the trigger no longer NOTIFies for the writer's
  // sessions). It now goes on the writer's own connections.
  it("a creation due now wakes the delivery workers within the bound even while the shared pool is busy", async () => {
    const batcher = new NotificationInsertBatcher(db, { maxAttempts: 5 });
    const wakes: number[] = [];
    // Other test files (other schemas of this database) wake the same channel: the payload names the schema.
    const [{ schema }] = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const stop = await db.listen(CHANNEL, (p) => p === schema && wakes.push(performance.now()));
    // Fill the pool (2 slots) with slow statements, as a burst of heavy reads would.
    let busy: Promise<unknown> = Promise.resolve();
    try {
      // With the pool free, the wake follows the creation at once (and the writer's connections are open).
      await batcher.insert(item(uniqueTitle("wake")));
      await expect.poll(() => wakes.length).toBe(1);
      // A text of this run's own, so that another file's statements are not counted below.
      const slow = `SELECT pg_sleep(1.5) AS writer_attack_${process.pid}_${Date.now()}`;
      let busyEndedAt = Number.POSITIVE_INFINITY;
      busy = Promise.all([db.query(slow), db.query(slow)]).then(() => {
        busyEndedAt = performance.now();
      });
      await expect
        .poll(async () => admin(async (c) => (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1 AND state = 'active'", [slow])).rows[0]!.n))
        .toBeGreaterThanOrEqual(2);
      await batcher.insert(item(uniqueTitle("wake")));
      const answeredAt = performance.now();
      await expect.poll(() => wakes.length, { timeout: 5_000 }).toBe(2);
      // The wake did not wait for a pool slot: it came while both slow statements still held the pool.
      expect(wakes[1]!).toBeLessThan(busyEndedAt);
      expect(wakes[1]! - answeredAt).toBeLessThan(WAKE_BOUND_MS);
    } finally {
      await busy;
      await stop();
    }
  });
});

