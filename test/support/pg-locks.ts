/**
 * Holding PostgreSQL transactions open to drive a race deterministically:
 * hold() keeps a pool connection for the test's own BEGIN ... COMMIT, and
 * waitingFor() resolves once another backend waits on that transaction.
 */
import type { Connection, Database } from "../../src/db/index.js";

export interface HeldConnection {
  c: Connection;
  release: () => void;
  /** Settles once the connection is back in the pool. */
  done: Promise<void>;
}

/** Holds a connection of the pool until `release` is called; resolves with it once held. */
export function hold(database: Database): Promise<HeldConnection> {
  return new Promise((resolve, reject) => {
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const done = database.connection(async (c) => {
      resolve({ c, release, done });
      await released;
    });
    done.catch(reject);
  });
}

/** Resolves once a backend waits for `blocker`'s transaction (polls pg_blocking_pids: the wait is in another process). */
export async function waitingFor(database: Database, blocker: Connection): Promise<void> {
  const [{ pid }] = (await blocker.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")) as [{ pid: number }];
  for (;;) {
    const [row] = await database.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [pid]);
    if (row!.n > 0) return;
    await new Promise((r) => setImmediate(r));
  }
}

/** The backend that waits for `blocker`'s transaction (once one does): the writer a test holds mid-statement. */
export async function blockedBy(database: Database, blocker: Connection): Promise<number> {
  await waitingFor(database, blocker);
  const [{ pid }] = (await blocker.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")) as [{ pid: number }];
  const [row] = await database.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [pid]);
  return row!.pid;
}

/** Resolves once `settled` settles, or once some backend waits on backend `pid`, whichever comes first. */
export async function settledOrWaitingOn(database: Database, settled: Promise<unknown>, pid: number): Promise<"settled" | "waiting"> {
  let done = false;
  void settled.then(
    () => (done = true),
    () => (done = true),
  );
  for (;;) {
    if (done) return "settled";
    const [row] = await database.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [pid]);
    if (row!.n > 0) return "waiting";
    await new Promise((r) => setImmediate(r));
  }
}

/** Rows of `userId` in every table of the schema with a user_id column (tables without any left out). */
export async function rowsOfUser(database: Database, userId: string): Promise<Record<string, number>> {
  const tables = await database.query<{ t: string }>(
    `SELECT c.table_name AS t FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
      WHERE c.table_schema = current_schema() AND c.column_name = 'user_id' ORDER BY 1`,
  );
  const out: Record<string, number> = {};
  for (const { t } of tables) {
    const [row] = await database.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${t}" WHERE user_id = $1`, [userId]);
    if (row!.n > 0) out[t] = row!.n;
  }
  return out;
}
