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
