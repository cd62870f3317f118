/**
 * The directory lock: what keeps an erasure from being undone by a writer
 * that chose its recipients from the user directory a moment before.
 *
 * A broadcast (one INSERT ... SELECT over `users`), a digest claim or a test
 * digest that read the directory while the user was still in it, and commits after the
 * erasure's DELETE, would write rows for a user who is gone: no order of the
 * two operations explains that outcome. Such writers hold this lock shared
 * for their transaction, taken before the statement that reads the directory;
 * an erasure holds it exclusively, first. The erasure then waits out the
 * writers already running (and deletes what they wrote), and a writer that
 * starts meanwhile waits and reads a directory without the user.
 *
 * Writers that name their recipient (a creation for one user id) do not take
 * it: one that commits after the erasure is a notification created after it,
 * which docs/auth.md says starts a new record. PGlite runs one transaction
 * at a time, so the lock never waits there. The key names the schema too:
 * advisory locks are the whole database's, and Herald instances in other
 * schemas of one database (the test suite's files) have directories of their own.
 */
import type { Queryable } from "../db/index.js";

/** The first half of the lock's two-part key ("hdir"); the second is the schema's hash. */
const DIRECTORY_LOCK_KEY = 0x68646972;

/** Holds the directory lock shared until the end of the caller's transaction. */
export async function lockDirectoryForRead(tx: Queryable): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock_shared($1::int, hashtext(current_schema()))", [DIRECTORY_LOCK_KEY]);
}

/** Holds the directory lock exclusively until the end of the caller's transaction (an erasure). */
export async function lockDirectoryForErasure(tx: Queryable): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock($1::int, hashtext(current_schema()))", [DIRECTORY_LOCK_KEY]);
}
