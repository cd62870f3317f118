/**
 * The incremental roll-up: folds the raw events written since the previous
 * pass into the rollups (firsts, 15-minute buckets, group stats, and their
 * per-channel twins), so the ingest stays one INSERT. Runs every
 * `intervalMs` once started, and on demand: `catchUp()` resolves after a
 * pass that started after the call, so everything committed before it is
 * counted (reads that must be exact await it).
 *
 * Guarantees (migration 0016, sql.ts: ROLL_UP):
 * - each raw row is rolled up once, whatever the order in which the
 *   inserting transactions commit: a pass takes the rows visible to it and
 *   not to the stored snapshot of the previous pass, then stores its own;
 * - one pass at a time across instances (an exclusive lock on the state
 *   table, taken before the pass's snapshot), so two Herald instances on one
 *   PostgreSQL never count a row twice;
 * - a pass is one transaction: a process that dies mid-pass leaves the
 *   rollups and the stored snapshot as they were, and the next pass (of any
 *   instance) does the same work.
 * Freshness: with the default interval the rollups lag the raw events by
 * about a second plus a pass (a pass takes at most `batchSize` rows, and
 * passes follow each other until caught up).
 * On PGlite a pass holds the one connection every request needs (and, in
 * process, the event loop): with `passBudgetMs` passes are sized from the
 * measured cost per row to take about that long, and the event loop turns
 * between them, so a second's backlog is folded in several short stalls
 * instead of one of 100-200 ms.
 */
import { performance } from "node:perf_hooks";
import { setImmediate as turn } from "node:timers/promises";
import type { Database, Session } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import { silentLogger, systemClock } from "../observability/index.js";
import { ANY_PENDING, LOCK_ROLLUPS, ROLL_UP, ROLLUP_STATE } from "./sql.js";

export interface RolledUp {
  /** Raw rows folded in by the pass. */
  events: number;
  notifications: string[];
  users: string[];
}

export type RollupListener = (rolled: RolledUp) => void | Promise<void>;

export interface RollupWorkerOptions {
  database: Pick<Database, "query" | "transaction">;
  clock?: Clock;
  logger?: Logger;
  /** Between timer passes (default 1,000 ms). */
  intervalMs?: number;
  /** Most raw rows per pass (whole inserting transactions, at least one; default 50,000). */
  batchSize?: number;
  /** Size passes to take about this long (ms), yielding between them; unset: every pass takes up to `batchSize`. */
  passBudgetMs?: number;
  /** With a budget: how long a drain keeps to it (ms, default 1,000); later passes double, so it ends whatever the inflow. */
  drainOnBudgetMs?: number;
}

/** The first budgeted pass's size, before any cost is measured. */
const FIRST_BUDGETED_ROWS = 200;
/** The smallest budgeted pass: below it a pass is mostly its fixed cost (~4-10 ms on PGlite, planning the statement). */
const FEWEST_BUDGETED_ROWS = 50;
/** A drain keeps to the budget this long (ms) unless told otherwise; later passes grow, so it ends whatever the inflow. */
const DRAIN_ON_BUDGET_MS = 1_000;

export class RollupWorker {
  state: "created" | "active" | "stopping" | "stopped" = "created";
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly listeners = new Set<RollupListener>();
  private timer: NodeJS.Timeout | undefined;
  /** The catch-up running now, and the one queued to start after it. */
  private current: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private caughtUp: Date | undefined;
  /** The timer's last pass failed (logged once until one succeeds). */
  private failing = false;
  /** With a budget: the measured cost of a rolled-up row (moving average), ms. */
  private msPerRow: number | undefined;

  constructor(private readonly options: RollupWorkerOptions) {
    // NaN would size every pass after the first NaN rows, which the database refuses: the rollups would stop.
    const budget = options.passBudgetMs;
    if (budget !== undefined && !(budget >= 0)) throw new RangeError(`passBudgetMs must be a number of milliseconds, at least 0 (got ${budget})`);
    // NaN would never be exceeded: a drain outrun by new rows would never end.
    const onBudget = options.drainOnBudgetMs;
    if (onBudget !== undefined && !(onBudget >= 0)) throw new RangeError(`drainOnBudgetMs must be a number of milliseconds, at least 0 (got ${onBudget})`);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Every event committed before this instant is in the rollups: when the
   * last catch-up that completed in this process started (undefined before
   * the first).
   */
  get asOf(): Date | undefined {
    return this.caughtUp;
  }

  start(): void {
    if (this.state !== "created") return;
    this.state = "active";
    this.schedule();
  }

  /** Adds a listener awaited after each pass that folded rows in (cache invalidation); returns its removal. */
  onRolledUp(listener: RollupListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Folds in every raw event committed before the call (and any after it
   * that the passes see). Calls made while a catch-up runs share the next
   * one. Rejects when the database refuses (the rows stay for a later pass).
   */
  catchUp(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.current) return this.begin();
    this.queued = this.current
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.begin();
      });
    return this.queued;
  }

  /** Stops the timer and waits for the running pass; a final catch-up is the caller's (AnalyticsIngest.stop). */
  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopping";
    clearTimeout(this.timer);
    this.timer = undefined;
    await (this.queued ?? this.current)?.catch(() => undefined);
    this.state = "stopped";
  }

  private begin(): Promise<void> {
    // The first pass's snapshot is taken after this instant: everything committed before it is seen.
    const run = this.drain(this.clock.now()).finally(() => {
      if (this.current === run) this.current = undefined;
    });
    this.current = run;
    return run;
  }

  private async drain(asked: Date): Promise<void> {
    // Most calls find nothing new (a read right after a pass): one light query, no lock, no transaction.
    const [probe] = await this.options.database.query<{ pending: boolean }>(ANY_PENDING);
    const started = performance.now();
    // Passes begun after the drain's first second, each twice the last: short passes
    // that fall behind the inflow would never catch up, and a read awaiting it never return.
    let late = 0;
    while (probe?.pending) {
      const rolled = await this.pass(late);
      if (rolled.events > 0) await this.notify(rolled);
      if (!rolled.more) break;
      if (this.options.passBudgetMs !== undefined) {
        if (performance.now() - started > (this.options.drainOnBudgetMs ?? DRAIN_ON_BUDGET_MS)) late++;
        // Requests waiting for the connection (or the event loop) go before the next pass.
        await turn();
      }
    }
    if (!this.caughtUp || asked > this.caughtUp) this.caughtUp = asked;
  }

  private pass(late: number): Promise<RolledUp & { more: boolean }> {
    return this.options.database.transaction(async (tx) => {
      // Timed from inside the transaction: the wait for PGlite's connection is not the pass's cost.
      const started = performance.now();
      await tx.query(LOCK_ROLLUPS);
      const rolled = await passWithin(tx, this.rowsForNextPass(late));
      // Only a pass cut at its size says what the next one will cost: one that took the rest of
      // the backlog (the last of a catch-up, a timer pass's few rows) is mostly fixed cost: a few
      // 2-row passes put the estimate at 2-3 ms a row, and the next burst's first ten passes took 50 rows.
      if (rolled.more) this.learnCost(rolled.events, performance.now() - started);
      return rolled;
    });
  }

  /** `late`: passes of this drain begun after its time on budget (each doubles the size). */
  private rowsForNextPass(late: number): number {
    const most = this.options.batchSize ?? 50_000;
    const budget = this.options.passBudgetMs;
    if (budget === undefined) return most;
    const budgeted = this.msPerRow === undefined ? FIRST_BUDGETED_ROWS : Math.max(FEWEST_BUDGETED_ROWS, Math.floor(budget / this.msPerRow));
    return Math.min(most, budgeted * 2 ** Math.min(late, 30));
  }

  /** A pass's fixed cost counts in its rows' cost, so the sizes settle where fixed + rows x cost fits the budget. */
  private learnCost(events: number, ms: number): void {
    if (this.options.passBudgetMs === undefined || events === 0) return;
    const perRow = ms / events;
    this.msPerRow = this.msPerRow === undefined ? perRow : 0.7 * this.msPerRow + 0.3 * perRow;
  }

  private async notify(rolled: RolledUp): Promise<void> {
    const results = await Promise.allSettled([...this.listeners].map(async (l) => l(rolled)));
    for (const r of results) if (r.status === "rejected") this.logger.warn({ err: r.reason }, "analytics roll-up listener failed");
  }

  private schedule(): void {
    if (this.state !== "active") return;
    this.timer = setTimeout(() => {
      this.catchUp()
        .then(() => {
          if (this.failing) this.logger.info("analytics roll-up recovered");
          this.failing = false;
        })
        .catch((err) => {
          // Once per outage, not once a second.
          if (!this.failing) this.logger.warn({ err }, "analytics roll-up failed; retrying every interval");
          this.failing = true;
        })
        .finally(() => this.schedule());
    }, this.options.intervalMs ?? 1000);
    this.timer.unref?.();
  }
}

/** Refused rather than guessed: counting on would skip or double rows. */
const RESTORED =
  "analytics roll-up stopped: analytics_rollup_state is ahead of this cluster's transaction ids (a pg_dump restored into another cluster?). " +
  "Run UPDATE analytics_events SET xid = NULL, then rebuildRollups; until then the figures miss new events.";

/** One pass in `tx`, which holds LOCK_ROLLUPS. */
async function passWithin(tx: Session, batchSize: number): Promise<RolledUp & { more: boolean }> {
  // The statement's cost estimate is inflated by its CTEs (one-row state table): JIT would compile for seconds to save nothing.
  await tx.query("SET LOCAL jit = off");
  const [state] = await tx.query<{ xmax: string; xip: string[]; ahead: boolean }>(ROLLUP_STATE);
  if (state!.ahead) throw new Error(RESTORED);
  const [row] = await tx.query<{ events: number; more: boolean | null; notifications: string[]; users: string[] }>(ROLL_UP, [
    batchSize,
    state!.xmax,
    state!.xip,
  ]);
  return { events: row?.events ?? 0, more: row?.more === true, notifications: row?.notifications ?? [], users: row?.users ?? [] };
}

/**
 * For a transaction that deletes raw events (a user's erasure): takes the
 * roll-up lock in `tx` and folds in every raw row committed so far, so the
 * platform-wide counts keep them, and no pass of any instance runs until
 * `tx` ends (a pass running beside the deletion could count the rows again
 * or write first-event rows of an erased user). Call it before `tx` reads or
 * deletes events.
 * Caches are the caller's to invalidate.
 */
export async function rollUpWithin(tx: Session): Promise<void> {
  await tx.query(LOCK_ROLLUPS);
  while ((await passWithin(tx, 50_000)).more);
}
