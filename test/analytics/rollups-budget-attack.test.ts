/**
 * Attacks on the roll-up's pass budget (ce1ac11): passes sized from the
 * measured cost per row, the event loop turning between them. What must
 * hold: every row counted once whatever commits between (and, on
 * PostgreSQL, stays open across) the passes; catchUp() still covers what was
 * committed before it; a budget that cannot size a pass is refused; the
 * estimate follows the passes it sizes, not the last few rows of a backlog.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { RollupWorker } from "../../src/analytics/index.js";
import { INSERT_EVENTS } from "../../src/analytics/sql.js";
import { silentLogger } from "../../src/observability/index.js";
import { countIn, deliveredEvents, TRUNCATE_ROLLUPS } from "./fixtures.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";

const AT = "2024-05-01T10:00:00.000Z";

let db: TestDatabase;
let next = 1;
const n = (sql: string) => countIn(db)(sql);
/** One inserting transaction of `rows` deliveries of new notifications. */
const insert = (rows: number) =>
  db.query(
    INSERT_EVENTS,
    deliveredEvents(
      Array.from({ length: rows }, () => next++),
      AT,
    ),
  );

beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => db.cleanup());
beforeEach(async () => {
  await db.query(TRUNCATE_ROLLUPS);
});

// A NaN budget sized every pass after the first NaN rows: the database refused them ("invalid input syntax for type bigint"), the rollups stopped.
it.each([Number.NaN, -1])("refuses a budget of %s ms", (passBudgetMs) => {
  expect(() => new RollupWorker({ database: db, logger: silentLogger, passBudgetMs })).toThrow(RangeError);
});

it.each([Number.NaN, -1])("refuses a drain on budget of %s ms", (drainOnBudgetMs) => {
  expect(() => new RollupWorker({ database: db, logger: silentLogger, passBudgetMs: 30, drainOnBudgetMs })).toThrow(RangeError);
});

it("a budget of 0 folds the backlog in the smallest passes, every row once", async () => {
  for (let t = 0; t < 6; t++) await insert(50);
  // Sizes only: a drain that outlasted its default second on a loaded machine doubled its passes ([200, 100] in a CI run).
  const worker = new RollupWorker({ database: db, logger: silentLogger, passBudgetMs: 0, drainOnBudgetMs: 600_000 });
  const passes: number[] = [];
  worker.onRolledUp((rolled) => {
    passes.push(rolled.events);
  });
  await worker.catchUp();
  expect(passes).toEqual([200, 50, 50]);
  expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBe(300);
});

it("the last pass of a catch-up (the rest of the backlog, mostly fixed cost) leaves the cost estimate alone", async () => {
  for (let t = 0; t < 8; t++) await insert(50);
  const worker = new RollupWorker({ database: db, logger: silentLogger, passBudgetMs: 30 });
  await worker.catchUp();
  const estimate = worker["msPerRow"];
  expect(estimate).toBeGreaterThan(0);
  // A timer pass's few rows: counted by the estimate, its fixed cost over 1 row made the next burst's passes the floor's 50 rows.
  for (let i = 0; i < 3; i++) {
    await insert(1);
    await worker.catchUp();
  }
  expect(worker["msPerRow"]).toBe(estimate);
  expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBe(403);
});

it("rows committed between budgeted passes (and, on PostgreSQL, transactions open across them) are each counted once; catchUp() covers what committed before it", async () => {
  for (let t = 0; t < 10; t++) await insert(30);
  const worker = new RollupWorker({ database: db, logger: silentLogger, passBudgetMs: 0 });
  const open: { commit: () => void; done: Promise<unknown> }[] = [];
  let passes = 0;
  let interfering = true;
  worker.onRolledUp(async () => {
    passes++;
    if (!interfering) return;
    await insert(7 + (passes % 5)); // committed while the catch-up runs, between two passes
    if (!usingPostgres) return; // PGlite's one connection: a transaction open here would hold the next pass forever
    let commit!: () => void;
    const gate = new Promise<void>((resolve) => (commit = resolve));
    let inserted!: () => void;
    const ready = new Promise<void>((resolve) => (inserted = resolve));
    const rows = 1 + (passes % 3);
    const done = db.transaction(async (tx) => {
      await tx.query(INSERT_EVENTS, deliveredEvents(Array.from({ length: rows }, () => next++), AT));
      inserted();
      await gate;
    });
    await ready;
    open.push({ commit, done });
    // The oldest open transaction commits while newer ones stay open across the next passes.
    if (open.length > 2) {
      const oldest = open.shift()!;
      oldest.commit();
      await oldest.done;
    }
  });
  try {
    while (passes < 20) {
      const committed = await n("SELECT count(*) AS n FROM analytics_events");
      await worker.catchUp();
      expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBeGreaterThanOrEqual(committed);
    }
  } finally {
    interfering = false;
    for (const t of open) t.commit();
    await Promise.all(open.map((t) => t.done));
  }
  await worker.catchUp();
  const raw = await n("SELECT count(*) AS n FROM analytics_events");
  expect(raw).toBeGreaterThan(300 + 20 * 7);
  expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBe(raw);
  expect(await n("SELECT sum(delivered) AS n FROM analytics_rollup")).toBe(raw);
  expect(await n("SELECT count(*) AS n FROM analytics_firsts WHERE event_type = 'delivered'")).toBe(raw);
});
