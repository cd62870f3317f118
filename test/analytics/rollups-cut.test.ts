/**
 * A capped roll-up pass (batchSize) stores a synthetic snapshot
 * "xmin:cutoff:xip<cutoff". Were the cutoff allowed below the stored xmax,
 * every transaction with xid >= cutoff would look not yet rolled up, even one
 * an EARLIER pass already rolled up because it committed while a lower xid
 * was still in progress: counted twice (found by an attack on 0e29954; the
 * cutoff is now never below the stored xmax, sql.ts ROLL_UP).
 */
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { RollupWorker } from "../../src/analytics/index.js";
import { INSERT_EVENTS } from "../../src/analytics/sql.js";
import { silentLogger } from "../../src/observability/index.js";
import { countIn, deliveredEvents, TRUNCATE_ROLLUPS } from "./fixtures.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";

const AT = "2024-05-01T10:00:00.000Z";
const deliveries = (ids: number[]) => deliveredEvents(ids, AT);

let db: TestDatabase;
const n = (sql: string) => countIn(db)(sql);
beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => db.cleanup());
beforeEach(async () => {
  await db.query(TRUNCATE_ROLLUPS);
});

function openTx(ids: number[]) {
  let commit!: () => void;
  const gate = new Promise<void>((r) => (commit = r));
  let inserted!: () => void;
  const ready = new Promise<void>((r) => (inserted = r));
  const done = db.transaction(async (tx) => {
    await tx.query(INSERT_EVENTS, deliveries(ids));
    inserted();
    await gate;
  });
  return { ready, commit, done };
}

it.skipIf(!usingPostgres)("a capped pass whose cutoff is a transaction open at the previous pass rolls up an already-counted transaction again", async () => {
  const worker = new RollupWorker({ database: db, logger: silentLogger, batchSize: 2 });
  const a = openTx([1]); // xid a
  await a.ready;
  const b = openTx([2, 3, 4]); // xid b > a
  await b.ready;
  await db.query(INSERT_EVENTS, deliveries([5])); // xid c > b, committed now
  await worker.catchUp(); // rolls up c; stored snapshot: xip {a, b}, xmax > c
  expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBe(1);
  a.commit();
  b.commit();
  await Promise.all([a.done, b.done]);
  await worker.catchUp(); // a (1 row) + b (3 rows) > 2: cut at b, stored xmax = b < c
  await worker.catchUp();
  const raw = await n("SELECT count(*) AS n FROM analytics_events");
  const events = await n("SELECT sum(events) AS n FROM analytics_rollup");
  expect(raw).toBe(5);
  expect(events).toBe(raw); // fails: c's row is rolled up twice
});

it("a pass reads the backlog only up to its bound, and still takes whole transactions in xid order, the first whatever its size", async () => {
  // ROLL_UP's `bound`: the first xid after the ($1 + 1)-th row. A naive bound at that row's own xid
  // would leave a first transaction larger than the batch with no cutoff, and store the current
  // snapshot as if the whole backlog had been folded in.
  const worker = new RollupWorker({ database: db, logger: silentLogger, batchSize: 3 });
  let next = 100;
  for (const size of [5, 1, 1, 1, 4, 2]) {
    const ids = Array.from({ length: size }, () => next++);
    await db.query(INSERT_EVENTS, deliveries(ids)); // one transaction each, in this order
  }
  const passes: number[] = [];
  const off = worker.onRolledUp((rolled) => {
    passes.push(rolled.events);
  });
  try {
    await worker.catchUp();
  } finally {
    off();
  }
  expect(passes).toEqual([5, 3, 4, 2]);
  expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBe(14);
});
