/**
 * Recomputes the rollups of migration 0005 from analytics_events, in one
 * transaction: after a bulk load that bypassed the ingest (benchmarks,
 * imports) or to repair them. The ingest keeps them current otherwise.
 *
 * The secondary indexes of the rollup tables are dropped for the bulk
 * inserts and recreated from their own definitions afterwards: one sort per
 * index instead of millions of random B-tree insertions, which were most of
 * the rebuild's time. TRUNCATE already holds the tables exclusively until
 * commit, so no reader sees them without their indexes.
 */
import { type Database, quoteIdent } from "../db/index.js";
import { REBUILD_ROLLUPS, ROLLUP_SECONDARY_INDEXES } from "./sql.js";

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
