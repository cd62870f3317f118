/**
 * Migration 0020: notifications_unacked holds exactly the in-app
 * notifications that are pending or sent (what a resuming sync reads), kept
 * so by statement-level triggers whatever writes notifications: after any
 * sequence of Herald's writers (creations in-app or not, broadcasts, the
 * delivery log's sent and delivered marks, a channel's sent mark including
 * failed -> sent, the give-up's failed mark, reads, archives, bulk changes,
 * deletes, erasure) and of writers Herald does not have (an in_app flip, a
 * key change, TRUNCATE), it equals the query over notifications. An upgrade
 * fills it from the rows already there. Delivery marks are HOT updates now
 * (pg_stat_xact_user_tables), and were not before 0020.
 * Runs on PGlite, or PostgreSQL when DATABASE_URL is set.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { brotliDecompressSync } from "node:zlib";
import { PGlite } from "@electric-sql/pglite";
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { markNotificationsFailed, markSent } from "../../src/channels/queue-sql.js";
import { type Database, type Queryable, listMigrations, migrate, openDatabase, quoteIdent } from "../../src/db/index.js";
import { type Logger, silentLogger, systemClock } from "../../src/observability/index.js";
import { DeliveryLog } from "../../src/realtime/delivery-log.js";
import { SYNC_BATCH } from "../../src/realtime/sync.js";
import { eraseUserRows } from "../../src/users/erasure.js";
import { usingPostgres } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { adminQuery, openEmptyDatabase, uniqueName } from "./helpers.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");
const shipped = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../src/db/migrations");

const UNACKED = "SELECT user_id, seq::text AS seq FROM notifications WHERE in_app AND delivery_status IN ('pending', 'sent') ORDER BY 1, 2";
const SIDE = "SELECT user_id, seq::text AS seq FROM notifications_unacked ORDER BY 1, 2";

async function expectExact(db: Queryable, context = ""): Promise<number> {
  const expected = await db.query<{ user_id: string; seq: string }>(UNACKED);
  expect(await db.query(SIDE), context).toEqual(expected);
  return expected.length;
}

/** The shipped migrations before 0020, in a directory of their own. */
function migrationsBefore0020(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-0019-"));
  for (const m of listMigrations()) if (m.name < "0020") copyFileSync(path.join(shipped, m.name), path.join(dir, m.name));
  return dir;
}

/** A logger that keeps the delivery log's warnings (a refused or failed mark is logged, not thrown). */
function keptWarnings(): { logger: Logger; warnings: unknown[] } {
  const warnings: unknown[] = [];
  const logger = Object.assign(Object.create(silentLogger) as Logger, { warn: (...args: unknown[]) => void warnings.push(args) });
  return { logger, warnings };
}

describe("notifications_unacked follows every writer", () => {
  let h: TestHerald;
  let log: DeliveryLog;
  let warnings: unknown[];
  const USERS = ["ua-0", "ua-1", "ua-2"];

  beforeAll(async () => {
    h = await startTestHerald();
    const kept = keptWarnings();
    warnings = kept.warnings;
    log = new DeliveryLog({ database: h.database, analytics: { record() {} }, clock: systemClock, logger: kept.logger });
  });
  afterAll(async () => {
    await log?.stop();
    await h?.stop();
  });

  type Op =
    | { op: "create"; user: number; type: number }
    | { op: "broadcast" }
    | { op: "pushed" | "acked" | "pushedAndAcked" | "channelSent" | "gaveUp" | "read" | "archive" | "unarchive" | "delete" | "inAppFlip"; target: number }
    | { op: "readAll" | "archiveAll" | "erase"; user: number }
    | { op: "truncate" };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant("create" as const), user: fc.nat(2), type: fc.nat(1) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("broadcast" as const) }) },
    {
      weight: 12,
      arbitrary: fc.record({
        op: fc.constantFrom("pushed" as const, "acked" as const, "pushedAndAcked" as const, "channelSent" as const, "gaveUp" as const),
        target: fc.nat(),
      }),
    },
    { weight: 4, arbitrary: fc.record({ op: fc.constantFrom("read" as const, "archive" as const, "unarchive" as const, "delete" as const, "inAppFlip" as const), target: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("readAll" as const, "archiveAll" as const, "erase" as const), user: fc.nat(2) }) },
    { weight: 1, arbitrary: fc.constant({ op: "truncate" as const }) },
  );

  async function reset(): Promise<void> {
    await h.database.query("DELETE FROM notifications");
    await h.database.query("DELETE FROM notification_queue");
    for (const id of USERS) await h.herald.users.upsert({ id });
    // ua-2's new_message rows are stored with in_app false (kept out of the app), its security_alert rows in-app.
    await h.herald.notifications.preferences.update("ua-2", { inAppEnabled: false });
  }

  /** A notification of the table, picked by `target` (undefined when there is none). */
  async function pick(target: number): Promise<{ id: string; user: string } | undefined> {
    const rows = await h.database.query<{ id: string; user_id: string }>("SELECT id, user_id FROM notifications ORDER BY seq");
    const row = rows[target % Math.max(1, rows.length)];
    return row && { id: row.id, user: row.user_id };
  }

  async function apply(op: Op): Promise<void> {
    const service = h.herald.notifications;
    const now = new Date();
    if (op.op === "create") {
      await service.createAndSendNotification({ userId: USERS[op.user]!, type: ["new_message", "security_alert"][op.type]!, title: "t", message: "m" });
    } else if (op.op === "broadcast") {
      await service.broadcast({ type: "new_message", title: "b", message: "m" });
    } else if (op.op === "readAll") {
      await service.markAllRead(USERS[op.user]!);
    } else if (op.op === "archiveAll") {
      await service.archiveAll(USERS[op.user]!);
    } else if (op.op === "erase") {
      await h.database.transaction((tx) => eraseUserRows(tx, USERS[op.user]!));
    } else if (op.op === "truncate") {
      await h.database.query("TRUNCATE notifications");
    } else if ("target" in op) {
      const n = await pick(op.target);
      if (!n) return;
      if (op.op === "pushed" || op.op === "acked" || op.op === "pushedAndAcked") {
        if (op.op !== "acked") log.markSent(n.id, n.user);
        if (op.op !== "pushed") log.markDelivered(n.id, n.user);
        await log.flush();
      } else if (op.op === "channelSent") {
        // A queue row this worker holds, then the worker's success: pending or failed -> sent.
        const [q] = await h.database.query<{ id: string }>(
          `INSERT INTO notification_queue (notification_id, user_id, channel, status, locked_by, locked_until)
           VALUES ($1, $2, 'email', 'processing', 'w-test', now() + interval '1 minute')
           ON CONFLICT (notification_id, channel) DO UPDATE SET status = 'processing', locked_by = 'w-test'
           RETURNING id`,
          [n.id, n.user],
        );
        expect(await markSent(h.database, q!.id, "w-test", now, null, [], [n.id])).toBe(true);
      } else if (op.op === "gaveUp") {
        await h.database.query("UPDATE notification_queue SET status = 'failed', locked_by = NULL WHERE notification_id = $1", [n.id]);
        await markNotificationsFailed(h.database, [n.id], now);
      } else if (op.op === "read" || op.op === "archive" || op.op === "unarchive") {
        const change = { read: { read: true }, archive: { archived: true }, unarchive: { archived: false } }[op.op];
        await service.updateNotification(n.user, n.id, change);
      } else if (op.op === "delete") {
        expect(await service.deleteNotification(n.user, n.id)).toBe(true);
      } else {
        // A writer Herald does not have (in-app switched on a stored row): the triggers follow it too.
        await h.database.query("UPDATE notifications SET in_app = NOT in_app WHERE id = $1", [n.id]);
      }
    }
  }

  it("equals the in-app pending or sent rows after every step of any sequence of writers", async () => {
    let largest = 0;
    const statuses = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 30, size: "max" }), async (ops) => {
        await reset();
        await expectExact(h.database, "after the reset");
        for (const [i, op] of ops.entries()) {
          await apply(op);
          largest = Math.max(largest, await expectExact(h.database, `after step ${i}: ${JSON.stringify(op)}`));
          for (const r of await h.database.query<{ s: string }>("SELECT DISTINCT delivery_status AS s FROM notifications")) statuses.add(r.s);
        }
      }),
      { numRuns: usingPostgres ? 12 : 8, seed: 20_020 },
    );
    expect(warnings).toEqual([]);
    // The runs reached every status and a side table of some size (so the comparisons above prove something).
    expect([...statuses].sort()).toEqual(["delivered", "failed", "pending", "sent"]);
    expect(largest).toBeGreaterThanOrEqual(5);
  }, 240_000);

  it("follows a change of a row's user or seq (no Herald writer does it; the trigger still handles it)", async () => {
    await reset();
    const a = (await h.herald.notifications.createAndSendNotification({ userId: "ua-0", type: "new_message", title: "t", message: "m" }))!;
    await h.database.query("UPDATE notifications SET user_id = 'ua-1' WHERE id = $1", [a.id]);
    expect(await expectExact(h.database)).toBe(1);
    expect(await h.database.query("SELECT user_id FROM notifications_unacked")).toEqual([{ user_id: "ua-1" }]);
  });

  it.runIf(usingPostgres)("stays exact under concurrent creations, marks, give-ups, deletes and read-alls (PostgreSQL)", async () => {
    await reset();
    const service = h.herald.notifications;
    const seed = await Promise.all(
      Array.from({ length: 40 }, (_, i) => service.createAndSendNotification({ userId: USERS[i % 3]!, type: "security_alert", title: `s ${i}`, message: "m" })),
    );
    const ids = seed.map((n) => n!);
    // A second delivery log (another instance's), so two mark statements can run at once.
    const other = new DeliveryLog({ database: h.database, analytics: { record() {} }, clock: systemClock, logger: keptWarnings().logger });
    const now = new Date();
    await Promise.all([
      ...Array.from({ length: 40 }, (_, i) => service.createAndSendNotification({ userId: USERS[i % 3]!, type: "new_message", title: `c ${i}`, message: "m" })),
      ...USERS.map((u) => service.markAllRead(u)),
      (async () => {
        for (const n of ids.slice(0, 20)) log.markDelivered(n.id, n.userId);
        await log.flush();
      })(),
      (async () => {
        for (const n of ids.slice(10, 30)) {
          other.markSent(n.id, n.userId);
          if (n.seq % 2 === 0) other.markDelivered(n.id, n.userId);
        }
        await other.flush();
      })(),
      markNotificationsFailed(h.database, ids.slice(25, 35).map((n) => n.id), now),
      ...ids.slice(30, 40).map((n) => service.deleteNotification(n.userId, n.id)),
    ]);
    await other.stop();
    expect(await expectExact(h.database)).toBeGreaterThan(0);
  }, 60_000);
});

describe("notifications_unacked on upgrade", () => {
  it("0020 fills it from the rows of a 0019 database (every status, in-app or not) and drops notifications_undelivered_idx", async () => {
    const dir = migrationsBefore0020();
    const db = await openEmptyDatabase();
    try {
      await migrate(db.database, { dir });
      await db.database.query(
        `INSERT INTO notifications (user_id, type, priority, title, message, in_app, delivery_status)
         SELECT 'up-' || (g % 3), 'new_message', 'normal', 't', 'm', s.in_app, s.status
           FROM generate_series(1, 3) g,
                (VALUES (true, 'pending'), (true, 'sent'), (true, 'delivered'), (true, 'failed'),
                        (false, 'pending'), (false, 'sent'), (false, 'delivered'), (false, 'failed')) s(in_app, status)`,
      );
      expect(await migrate(db.database)).toEqual(listMigrations().map((m) => m.name).filter((n) => n >= "0020"));
      expect(await expectExact(db.database)).toBe(6);
      const indexes = await db.database.query<{ name: string }>("SELECT indexname AS name FROM pg_indexes WHERE tablename = 'notifications' AND schemaname = current_schema()");
      expect(indexes.map((r) => r.name)).not.toContain("notifications_undelivered_idx");
      expect(await db.database.query("SELECT reloptions FROM pg_class WHERE oid = 'notifications'::regclass")).toEqual([{ reloptions: ["fillfactor=85"] }]);
    } finally {
      await db.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000); // a new PGlite cluster and every migration: slow when the machine is busy

  /** The pending, sent and delivered rows of Herald a4ea71a's fixture (test/db/upgrade.test.ts), after today's migrate(). */
  async function expectFilled(database: Database): Promise<void> {
    await migrate(database);
    expect(await expectExact(database)).toBeGreaterThan(0);
    const [byStatus] = await database.query<{ sent: number; delivered: number }>(
      `SELECT count(*) FILTER (WHERE n.delivery_status = 'sent')::int AS sent, count(*) FILTER (WHERE n.delivery_status = 'delivered')::int AS delivered
         FROM notifications_unacked u JOIN notifications n ON n.user_id = u.user_id AND n.seq = u.seq`,
    );
    expect(byStatus).toEqual({ sent: expect.any(Number), delivered: 0 });
    expect(byStatus!.sent).toBeGreaterThan(0);
  }

  it("an upgrade of Herald a4ea71a's PGlite data directory fills it", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "herald-upgrade-unacked-"));
    try {
      const tar = brotliDecompressSync(readFileSync(path.join(fixtures, "a4ea71a-pglite.tar.br")));
      const loader = await PGlite.create(path.join(dir, "pgdata"), { loadDataDir: new Blob([tar], { type: "application/x-tar" }) });
      await loader.close();
      const database = await openDatabase({ dataDir: dir });
      try {
        await expectFilled(database);
      } finally {
        await database.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it.skipIf(!usingPostgres)("an upgrade of Herald a4ea71a's PostgreSQL database (its pg_dump) fills it", async () => {
    const url = process.env.DATABASE_URL!;
    const name = uniqueName("herald_upgrade_unacked");
    await adminQuery(url, `CREATE DATABASE ${quoteIdent(name)}`);
    try {
      const target = new URL(url);
      target.pathname = `/${name}`;
      // pg_dump 15.14+ brackets its output in psql's \restrict / \unrestrict, which only psql understands.
      const dump = readFileSync(path.join(fixtures, "a4ea71a-postgres.sql"), "utf8").replace(/^\\(un)?restrict .*$/gm, "");
      const loader = new pg.Client({ connectionString: target.toString() });
      await loader.connect();
      try {
        await loader.query(dump);
      } finally {
        await loader.end();
      }
      const database = await openDatabase({ url: target.toString(), poolSize: 2 });
      try {
        await expectFilled(database);
      } finally {
        await database.close();
      }
    } finally {
      await adminQuery(url, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    }
  }, 120_000);
});

describe("delivery marks", () => {
  /** HOT and all updates of notifications by one delivered mark of each of `marks` rows (a statement each), in one transaction. */
  async function marksIn(dir: string | undefined): Promise<{ updates: number; hot: number }> {
    const db = await openEmptyDatabase();
    try {
      await migrate(db.database, dir ? { dir } : {});
      const rows = await db.database.query<{ id: string; user_id: string }>(
        `INSERT INTO notifications (user_id, type, priority, title, message)
         SELECT 'hot-' || (g % 10), 'new_message', 'normal', 'A title', repeat('A message ', 30) FROM generate_series(1, 80) g
         RETURNING id, user_id`,
      );
      return await db.database.transaction(async (tx) => {
        const { logger, warnings } = keptWarnings();
        const log = new DeliveryLog({ database: tx, analytics: { record() {} }, clock: systemClock, logger });
        // Rows 20 apart, each on a page of its own (~17 rows of ~400 bytes a page): its page's free
        // room (fillfactor 85) holds both of its new versions (the transaction's old ones are not prunable).
        for (const r of rows.filter((_, i) => i % 20 === 0)) {
          log.markSent(r.id, r.user_id);
          await log.flush();
          log.markDelivered(r.id, r.user_id);
          await log.flush();
        }
        expect(warnings).toEqual([]);
        const [stats] = await tx.query<{ updates: number; hot: number }>(
          "SELECT n_tup_upd::int AS updates, n_tup_hot_upd::int AS hot FROM pg_stat_xact_user_tables WHERE relid = 'notifications'::regclass",
        );
        return stats!;
      });
    } finally {
      await db.cleanup();
    }
  }

  it("are HOT updates after 0020 and were not before it (pg_stat_xact_user_tables)", async () => {
    const dir = migrationsBefore0020();
    try {
      expect(await marksIn(dir)).toEqual({ updates: 8, hot: 0 });
      expect(await marksIn(undefined)).toEqual({ updates: 8, hot: 8 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("the sync's unacknowledged branch", () => {
  it("reads notifications_unacked by index and the rows by an array scan: no sequential scan, no sort of a user's backlog", async () => {
    const db = await openEmptyDatabase();
    try {
      await migrate(db.database);
      // One user with 20,000 unacknowledged, 200 users with 20 each, over a delivered history.
      await db.database.query(
        `INSERT INTO notifications (user_id, type, priority, title, message, delivery_status)
         SELECT 'h-' || (g % 200), 'new_message', 'normal', 't', 'm', 'delivered' FROM generate_series(1, 20000) g`,
      );
      await db.database.query(`INSERT INTO notifications (user_id, type, priority, title, message) SELECT 'big', 'new_message', 'normal', 't', 'm' FROM generate_series(1, 20000)`);
      await db.database.query(`INSERT INTO notifications (user_id, type, priority, title, message) SELECT 'h-' || (g % 200), 'new_message', 'normal', 't', 'm' FROM generate_series(1, 4000) g`);
      await db.database.query("ANALYZE");
      const users = ["big", ...Array.from({ length: 200 }, (_, i) => `h-${i}`)];
      const plan = (
        await db.database.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${SYNC_BATCH}`, [
          users,
          users.map(() => 0),
          users.map(() => false),
          users.map(() => null),
          users.map(() => true),
          101,
          new Date().toISOString(),
        ])
      )
        .map((r) => r["QUERY PLAN"])
        .join("\n");
      expect(plan).toMatch(/Index Only Scan using notifications_unacked_pkey on notifications_unacked/);
      expect(plan).not.toMatch(/Seq Scan on notifications(_unacked)? /);
      // Sorts of a few rows only (the statement's own small ones), none of a backlog.
      for (const [, rows] of plan.matchAll(/Sort \(actual rows=(\d+)/g)) expect(Number(rows)).toBeLessThan(1000);
      // One range per request.
      expect(plan).toMatch(/Index Only Scan using notifications_unacked_pkey on notifications_unacked ua \(actual rows=[\d.]+ loops=201\)/);
    } finally {
      await db.cleanup();
    }
  }, 120_000);
});
