/**
 * A roll-up with a pass budget (PGlite: a pass holds the one connection every
 * request needs) folds a backlog in several short passes, sized from the
 * measured cost per row, and the figures are those of one long pass.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { RollupWorker } from "../../src/analytics/index.js";
import { INSERT_EVENTS } from "../../src/analytics/sql.js";
import { silentLogger } from "../../src/observability/index.js";
import { countIn, deliveredEvents, TRUNCATE_ROLLUPS } from "./fixtures.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";

const AT = "2024-05-01T10:00:00.000Z";
const TRANSACTIONS = 40;
const ROWS_PER_TRANSACTION = 50;

let db: TestDatabase;
const n = (sql: string) => countIn(db)(sql);
beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => db.cleanup());
beforeEach(async () => {
  await db.query(TRUNCATE_ROLLUPS);
  for (let t = 0; t < TRANSACTIONS; t++) {
    const ids = Array.from({ length: ROWS_PER_TRANSACTION }, (_, i) => t * ROWS_PER_TRANSACTION + i + 1);
    await db.query(INSERT_EVENTS, deliveredEvents(ids, AT));
  }
});

async function rollUp(worker: RollupWorker): Promise<number[]> {
  const passes: number[] = [];
  worker.onRolledUp((rolled) => {
    passes.push(rolled.events);
  });
  await worker.catchUp();
  return passes;
}

it("without a budget, one pass folds the whole backlog", async () => {
  expect(await rollUp(new RollupWorker({ database: db, logger: silentLogger }))).toEqual([TRANSACTIONS * ROWS_PER_TRANSACTION]);
});

it("with a budget, the backlog is folded in short passes of whole transactions, and every row is counted once", async () => {
  // A budget no pass can meet: passes after the first are the smallest size (50 rows, one transaction here).
  // Sizes only: no doubling however slow the machine (the outrun catch-up below covers it).
  const passes = await rollUp(new RollupWorker({ database: db, logger: silentLogger, passBudgetMs: 0.001, drainOnBudgetMs: 600_000 }));
  const total = TRANSACTIONS * ROWS_PER_TRANSACTION;
  expect(passes[0]).toBe(200); // the first budgeted size, before any cost is measured
  expect(passes[1]).toBe(ROWS_PER_TRANSACTION);
  expect(passes.length).toBeGreaterThan(3);
  expect(passes.every((rows) => rows % ROWS_PER_TRANSACTION === 0)).toBe(true);
  expect(passes.slice(2).every((rows, i) => rows >= passes[i + 1]! || i === passes.length - 3)).toBe(true);
  expect(passes.reduce((a, b) => a + b, 0)).toBe(total);
  expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBe(total);
  expect(await n("SELECT sum(delivered) AS n FROM analytics_rollup")).toBe(total);
  expect(await n("SELECT count(*) AS n FROM analytics_firsts WHERE event_type = 'delivered'")).toBe(total);
});

it("a generous budget grows the passes past the first size", async () => {
  const passes = await rollUp(new RollupWorker({ database: db, logger: silentLogger, passBudgetMs: 60_000 }));
  expect(passes.length).toBe(2); // 200 rows, then the rest at once: its measured cost per row fits the budget
  expect(passes.reduce((a, b) => a + b, 0)).toBe(TRANSACTIONS * ROWS_PER_TRANSACTION);
});

it("a budgeted catch-up ends even while every pass is outrun by new rows (passes grow after its first second)", async () => {
  const worker = new RollupWorker({ database: db, logger: silentLogger, passBudgetMs: 0.001 });
  let next = TRANSACTIONS * ROWS_PER_TRANSACTION;
  let feeding = true;
  // Each pass folds in 50 rows (the floor) and 50 more arrive: at a fixed size the backlog never shrinks.
  worker.onRolledUp(async () => {
    if (!feeding) return;
    const ids = Array.from({ length: ROWS_PER_TRANSACTION }, () => ++next);
    await db.query(INSERT_EVENTS, deliveredEvents(ids, AT));
  });
  await worker.catchUp();
  feeding = false;
  await worker.catchUp();
  expect(await n("SELECT sum(events) AS n FROM analytics_rollup")).toBe(next);
}, 60_000);
