/**
 * Recomputes the rollups of migrations 0005 and 0014 from analytics_events,
 * in one transaction: after a bulk load that bypassed the ingest
 * (benchmarks, imports) or to repair them. The roll-up worker (roller.ts)
 * keeps them current otherwise.
 *
 * The transaction is REPEATABLE READ and takes the roll-up lock before its
 * snapshot: every statement counts the same rows, no roll-up pass runs
 * meanwhile, and the snapshot stored for the next pass is the one the
 * rebuild counted (events committed during the rebuild are rolled up after).
 *
 * The secondary indexes of the rollup tables are dropped for the bulk
 * inserts and recreated from their own definitions afterwards: one sort per
 * index instead of millions of random B-tree insertions, which were most of
 * the rebuild's time. TRUNCATE already holds the tables exclusively until
 * commit, so no reader sees them without their indexes.
 */
import { type Database, quoteIdent } from "../db/index.js";
import { LOCK_ROLLUPS, REBUILD_ROLLUPS, ROLLUP_SECONDARY_INDEXES } from "./sql.js";

export interface RebuildRollupsOptions {
  /**
   * work_mem and maintenance_work_mem for this transaction only (e.g. "1GB"),
   * so the sorts, hashes and index builds of a large rebuild stay in memory.
   * Unset: the server's settings.
   */
  memory?: string;
}

export async function rebuildRollups(database: Pick<Database, "transaction">, options: RebuildRollupsOptions = {}): Promise<void> {
  await database.transaction(async (tx) => {
    await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    await tx.query(LOCK_ROLLUPS); // not a query: the snapshot is taken by the first statement after it
    if (options.memory) {
      await tx.query("SELECT set_config('work_mem', $1, true), set_config('maintenance_work_mem', $1, true)", [options.memory]);
    }
    const [truncate, ...inserts] = REBUILD_ROLLUPS;
    await tx.query(truncate!);
    const indexes = await tx.query<{ name: string; def: string }>(ROLLUP_SECONDARY_INDEXES);
    for (const index of indexes) await tx.query(`DROP INDEX ${quoteIdent(index.name)}`);
    for (const statement of inserts) await tx.query(statement);
    for (const index of indexes) await tx.query(index.def);
  });
}
