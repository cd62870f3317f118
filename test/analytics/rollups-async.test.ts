/**
 * The rollups are maintained apart from the ingest (issue #17, migration
 * 0016, src/analytics/roller.ts): each raw row is rolled up exactly once,
 * whatever the order in which the inserting transactions commit, however
 * many instances roll up at once, and whether or not a pass dies midway.
 */
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AnalyticsIngest, type RolledUp, RollupWorker, rebuildRollups, rollUpWithin } from "../../src/analytics/index.js";
import { INSERT_EVENTS, LOCK_ROLLUPS, ROLL_UP, ROLLUP_STATE } from "../../src/analytics/sql.js";
import type { Database, Queryable } from "../../src/db/index.js";
import { silentLogger } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";
import { deliveredEvents, uuid } from "./fixtures.js";

const AT = "2024-05-01T10:00:00.000Z";

const deliveries = (ids: number[]) => deliveredEvents(ids, AT);

describe("asynchronous rollups", () => {
  let db: TestDatabase;
  const n = async (sql: string) => Number((await db.query<{ n: number | string | null }>(sql))[0]!.n ?? 0);
  /** What the rollups say, and what the raw rows say they should. */
  const figures = async () => ({
    raw: await n("SELECT count(*) AS n FROM analytics_events"),
    events: await n("SELECT sum(events) AS n FROM analytics_rollup"),
    delivered: await n("SELECT sum(delivered) AS n FROM analytics_rollup"),
    sent: await n("SELECT sum(sent) AS n FROM analytics_rollup"),
    firsts: await n("SELECT count(*) AS n FROM analytics_firsts"),
    channel: await n("SELECT sum(delivered) AS n FROM analytics_channel_rollup"),
    groups: await n("SELECT sum(delivered) AS n FROM analytics_group_stats"),
  });
  /** Every raw row counted once: `notifications` distinct deliveries among `raw` rows. */
  const exact = (raw: number, notifications: number) => ({
    raw,
    events: raw,
    delivered: notifications,
    sent: notifications,
    firsts: 2 * notifications,
    channel: notifications,
    groups: notifications,
  });

  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => db.cleanup());
  beforeEach(async () => {
    await db.query("TRUNCATE analytics_events, analytics_firsts, analytics_rollup, analytics_group_stats, analytics_channel_firsts, analytics_channel_rollup");
  });

  it.skipIf(!usingPostgres)(
    "a transaction that took lower ids but commits after a roll-up is rolled up by the next one, once (PostgreSQL, two transactions interleaved)",
    async () => {
      const worker = new RollupWorker({ database: db, logger: silentLogger });
      let commitA!: () => void;
      const gate = new Promise<void>((resolve) => (commitA = resolve));
      let insertedA!: () => void;
      const aInserted = new Promise<void>((resolve) => (insertedA = resolve));
      // A: inserts first (lower ids), then stays open.
      const a = db.transaction(async (tx) => {
        await tx.query(INSERT_EVENTS, deliveries([1, 2, 3]));
        insertedA();
        await gate;
      });
      await aInserted;
      // B: inserts after A (higher ids) and commits first; a roll-up runs while A is still open.
      await db.query(INSERT_EVENTS, deliveries([4, 5]));
      await worker.catchUp();
      const ids = await db.query<{ id: string; mine: boolean }>("SELECT id::text, notification_id = ANY($1::uuid[]) AS mine FROM analytics_events ORDER BY id", [[uuid(4), uuid(5)]]);
      expect(ids.map((r) => r.mine)).toEqual([true, true]); // A's rows are not visible yet, B's are
      expect(await figures()).toEqual(exact(2, 2));
      // A commits with ids below every id already rolled up: a high-water mark over `id` would skip it.
      commitA();
      await a;
      const all = await db.query<{ id: string; n: string }>("SELECT id::text, notification_id::text AS n FROM analytics_events ORDER BY id");
      expect(all.map((r) => r.n).slice(0, 3)).toEqual([1, 2, 3].map(uuid));
      await worker.catchUp();
      expect(await figures()).toEqual(exact(5, 5));
      await worker.catchUp();
      expect(await figures()).toEqual(exact(5, 5));
    },
  );

  it.skipIf(!usingPostgres)(
    "passes limited to a few rows step over a transaction still open and take it once it commits (PostgreSQL)",
    async () => {
      const worker = new RollupWorker({ database: db, logger: silentLogger, batchSize: 2 });
      let commitA!: () => void;
      const gate = new Promise<void>((resolve) => (commitA = resolve));
      let insertedA!: () => void;
      const aInserted = new Promise<void>((resolve) => (insertedA = resolve));
      const a = db.transaction(async (tx) => {
        await tx.query(INSERT_EVENTS, deliveries([100]));
        insertedA();
        await gate;
      });
      await aInserted;
      // Five transactions after A, of 1 to 3 rows: passes of at most 2 rows (whole transactions) each.
      for (const batch of [[1], [2, 3, 4], [5], [6, 7], [8]]) await db.query(INSERT_EVENTS, deliveries(batch));
      const passes: RolledUp[] = [];
      worker.onRolledUp((r) => {
        passes.push(r);
      });
      await worker.catchUp();
      expect(passes.map((p) => p.events)).toEqual([1, 3, 1, 2, 1]);
      expect(await figures()).toEqual(exact(8, 8));
      commitA();
      await a;
      await worker.catchUp();
      expect(await figures()).toEqual(exact(9, 9));
      expect(passes.at(-1)!.notifications).toEqual([uuid(100)]);
    },
  );

  it("two instances catching up at once count every row once", async () => {
    const a = new AnalyticsIngest({ database: db, logger: silentLogger, intervalMs: 3_600_000, batchSize: 1_000_000 });
    const b = new AnalyticsIngest({ database: db, logger: silentLogger, intervalMs: 3_600_000, batchSize: 1_000_000 });
    const at = new Date(AT);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 40; i++) {
        // The same notifications from both instances: each delivery counts once, each raw row once.
        a.record({ notificationId: uuid(i), userId: `u${i}`, eventType: "delivered", channel: "in_app", timestamp: at });
        b.record({ notificationId: uuid(39 - i), userId: `u${39 - i}`, eventType: "delivered", channel: "in_app", timestamp: at });
      }
      await Promise.all([a.flush(), b.flush(), a.catchUp(), b.catchUp(), a.rollups.catchUp(), b.rollups.catchUp()]);
    }
    expect(await figures()).toEqual(exact(400, 40));
    await Promise.all([a.stop(), b.stop()]);
    const live = await figures();
    await rebuildRollups(db);
    expect(await figures()).toEqual(live);
  });

  it("a notification's events from several users: each first names the user of the earliest event (ties: the first stored), in a pass as in a rebuild", async () => {
    // trackEvent takes any user for any notification. Users named so that the alphabetically least is never the earliest.
    const at = (s: number) => new Date(Date.parse(AT) + s * 1000);
    const ingest = new AnalyticsIngest({ database: db, logger: silentLogger, intervalMs: 3_600_000, batchSize: 1_000_000 });
    ingest.record({ notificationId: uuid(1), userId: "zed", eventType: "opened", timestamp: at(1) });
    ingest.record({ notificationId: uuid(1), userId: "amy", eventType: "opened", timestamp: at(2) });
    ingest.record({ notificationId: uuid(1), userId: "bob", eventType: "clicked", timestamp: at(0) });
    ingest.record({ notificationId: uuid(2), userId: "yan", eventType: "delivered", channel: "email", timestamp: at(5) });
    ingest.record({ notificationId: uuid(2), userId: "ann", eventType: "delivered", channel: "email", timestamp: at(5) });
    ingest.record({ notificationId: uuid(2), userId: "abe", eventType: "sent", channel: "email", timestamp: at(9) });
    await ingest.flush();
    await ingest.rollups.catchUp();
    await ingest.stop();
    const firsts = () =>
      db.query<{ row: string }>(
        `SELECT notification_id || ' ' || event_type || ' ' || user_id || ' ' || to_char(first_at AT TIME ZONE 'UTC', 'SS') AS row FROM analytics_firsts
         UNION ALL
         SELECT notification_id || ' ' || channel || ':' || outcome || ' ' || user_id || ' ' || to_char(first_at AT TIME ZONE 'UTC', 'SS') FROM analytics_channel_firsts
         ORDER BY 1`,
      );
    const live = (await firsts()).map((r) => r.row);
    expect(live).toEqual(
      [
        `${uuid(1)} clicked bob 00`,
        `${uuid(1)} delivered bob 00`,
        `${uuid(1)} opened zed 01`,
        `${uuid(1)} sent bob 00`,
        `${uuid(2)} delivered yan 05`,
        `${uuid(2)} email:delivered yan 05`,
        `${uuid(2)} email:sent yan 05`,
        `${uuid(2)} sent yan 05`,
      ].sort(),
    );
    await rebuildRollups(db);
    expect((await firsts()).map((r) => r.row)).toEqual(live);
  });

  it("a pass that dies before its commit leaves nothing behind, and the next pass counts its rows once", async () => {
    await db.query(INSERT_EVENTS, deliveries([1, 2, 3, 4]));
    const before = await db.query("SELECT snapshot::text, events FROM analytics_rollup_state");
    // The whole pass runs, then its transaction ends without a commit (a process killed mid-pass).
    await expect(
      db.transaction(async (tx) => {
        await tx.query(LOCK_ROLLUPS);
        const [state] = await tx.query<{ xmax: string; xip: string[] }>(ROLLUP_STATE);
        const [row] = await tx.query<{ events: number }>(ROLL_UP, [1000, state!.xmax, state!.xip]);
        expect(row!.events).toBe(4);
        throw new Error("killed");
      }),
    ).rejects.toThrow("killed");
    expect(await db.query("SELECT snapshot::text, events FROM analytics_rollup_state")).toEqual(before);
    expect(await figures()).toEqual({ ...exact(4, 0), events: 0 });
    await new RollupWorker({ database: db }).catchUp();
    expect(await figures()).toEqual(exact(4, 4));
  });

  it("the worker's timer rolls up what the ingest wrote, without any read", async () => {
    const ingest = new AnalyticsIngest({ database: db, logger: silentLogger, intervalMs: 5, batchSize: 1_000_000, rollupIntervalMs: 5 });
    const rolled = new Promise<RolledUp>((resolve) => ingest.rollups.onRolledUp(resolve));
    ingest.start();
    for (let i = 0; i < 10; i++) ingest.record({ notificationId: uuid(i), userId: `u${i}`, eventType: "delivered", channel: "in_app", timestamp: new Date(AT) });
    expect((await rolled).events).toBe(10);
    expect(await figures()).toEqual(exact(10, 10));
    await ingest.stop();
  });

  it("the ingest writes one statement per batch: the raw rows, nothing else", async () => {
    const statements: string[] = [];
    const spy: Queryable & Pick<TestDatabase, "transaction"> = {
      query: (text, params) => {
        statements.push(text);
        return db.query(text, params);
      },
      transaction: (fn) => db.transaction(fn),
    };
    const ingest = new AnalyticsIngest({ database: spy, logger: silentLogger, intervalMs: 3_600_000, batchSize: 1_000_000 });
    for (let i = 0; i < 3000; i++) ingest.record({ notificationId: uuid(i), userId: "u", eventType: "delivered" });
    // A 3,000-event flush, then the rollups caught up separately.
    await ingest.flush();
    expect(statements.filter((s) => s.includes("INSERT")).map((s) => s.trim().split("\n")[0])).toEqual([
      "INSERT INTO analytics_events (notification_id, user_id, event_type, timestamp, metadata, channel, xid)",
    ]);
    expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBe(3000);
    await ingest.stop();
  });
  it("a database that stays down is logged once by the timer, not once a pass, and its recovery once", async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: "info" },
      new Writable({
        write(chunk, _enc, done) {
          for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
          done();
        },
      }),
    );
    let down = true;
    let failures = 0;
    let threeFailed!: () => void;
    const failedThrice = new Promise<void>((resolve) => (threeFailed = resolve));
    let recovered!: () => void;
    const backUp = new Promise<void>((resolve) => (recovered = resolve));
    const flaky: Pick<Database, "query" | "transaction"> = {
      async query(text, params) {
        if (down) {
          if (++failures === 3) threeFailed();
          throw Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
        }
        const rows = await db.query(text, params);
        recovered();
        return rows as never;
      },
      transaction: (fn) => db.transaction(fn),
    };
    const worker = new RollupWorker({ database: flaky, logger, intervalMs: 1 });
    worker.start();
    await failedThrice;
    down = false;
    await backUp;
    // The pass that succeeded logs its recovery before the next is scheduled: stop() waits for it.
    await worker.catchUp();
    await worker.stop();
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(["analytics roll-up failed; retrying every interval"]);
    expect(lines.filter((l) => l.level === 30).map((l) => l.msg)).toEqual(["analytics roll-up recovered"]);
  });
  it.skipIf(!usingPostgres)(
    "a transaction that rolls up within itself and deletes a user's rows (erasure) keeps their counts, and a pass waiting beside it writes no row of that user (PostgreSQL)",
    async () => {
      await db.query(INSERT_EVENTS, deliveries([1, 2]));
      // Already rolled up: the erasure's own pass writes nothing, so only its lock holds other passes off.
      await new RollupWorker({ database: db, logger: silentLogger }).catchUp();
      let finish!: () => void;
      const gate = new Promise<void>((resolve) => (finish = resolve));
      let deleted!: () => void;
      const rowsDeleted = new Promise<void>((resolve) => (deleted = resolve));
      const erasure = db.transaction(async (tx) => {
        await rollUpWithin(tx);
        for (const table of ["analytics_events", "analytics_firsts", "analytics_channel_firsts"]) await tx.query(`DELETE FROM ${table} WHERE user_id = 'u1'`);
        deleted();
        await gate;
      });
      await rowsDeleted;
      await db.query(INSERT_EVENTS, deliveries([3])); // committed while the erasure is open
      const pass = new RollupWorker({ database: db, logger: silentLogger }).catchUp();
      // The pass waits for the erasure's lock (its snapshot is taken after it).
      while ((await n("SELECT count(*) AS n FROM pg_locks WHERE relation = 'analytics_rollup_state'::regclass AND NOT granted")) === 0);
      finish();
      await erasure;
      await pass;
      expect(await n("SELECT count(*) AS n FROM analytics_firsts WHERE user_id = 'u1'")).toBe(0);
      expect(await n("SELECT count(*) AS n FROM analytics_channel_firsts WHERE user_id = 'u1'")).toBe(0);
      // Platform-wide counts keep the erased user's delivery: three deliveries, each counted once.
      expect(await n("SELECT sum(delivered) AS n FROM analytics_rollup")).toBe(3);
      expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBe(3);
    },
  );
  it("a roll-up state ahead of the cluster's transaction ids (a dump restored elsewhere) stops the roll-up with what to do, and the documented repair restores exact counts", async () => {
    await db.query(INSERT_EVENTS, deliveries([1, 2]));
    await db.query("UPDATE analytics_rollup_state SET snapshot = '9000000000:9000000000:'");
    const worker = new RollupWorker({ database: db, logger: silentLogger });
    await expect(worker.catchUp()).rejects.toThrow(/ahead of this cluster's transaction ids.*UPDATE analytics_events SET xid = NULL, then rebuildRollups/);
    await db.query("UPDATE analytics_events SET xid = NULL");
    await rebuildRollups(db);
    await worker.catchUp();
    expect(await figures()).toEqual(exact(2, 2));
  });
});
