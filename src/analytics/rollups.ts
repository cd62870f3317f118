/**
 * Recomputes the rollups of migration 0005 from analytics_events, in one
 * transaction: after a bulk load that bypassed the ingest (benchmarks,
 * imports) or to repair them. The ingest keeps them current otherwise.
 */
import type { Database } from "../db/index.js";
import { REBUILD_ROLLUPS } from "./sql.js";

export async function rebuildRollups(database: Pick<Database, "transaction">): Promise<void> {
  await database.transaction(async (tx) => {
    for (const statement of REBUILD_ROLLUPS) await tx.query(statement);
  });
}
