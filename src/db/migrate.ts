/**
 * Applies the SQL files in `migrations/` in the order of their numbers, each
 * once. A file is sent whole, as one script (so `$$` bodies and any other SQL
 * are fine), in its own transaction, and recorded in `herald_migrations` in
 * that same transaction: a file that fails leaves nothing behind, the files
 * before it stay applied, and the next start retries from it.
 *
 * File names are `NNNN_words.sql` with a number no other file has; a file
 * list that breaks this refuses to run. On PostgreSQL one connection holds a
 * session-level advisory lock around the whole run, so instances that start
 * together apply each file once. A database that records a migration this
 * code does not have (written by a newer Herald) is refused with an error
 * naming it, before anything is applied.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import type { Connection, Database } from "./database.js";

const defaultDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");
const LOCK_KEY = 0x6865726c; // "herl"; earlier Herald took the same key with pg_advisory_xact_lock
const NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;

/**
 * Files renamed after databases recorded them under the old name: the old
 * name is rewritten before the comparison, so the file is not run again.
 * Two files were numbered 0004; the lease owner column (the first of the two
 * in name order) became 0003, which keeps the order a fresh database sees.
 */
export const RENAMED_MIGRATIONS: Readonly<Record<string, string>> = {
  "0004_digests_lease_owner.sql": "0003_digests_lease_owner.sql",
};

export interface Migration {
  name: string;
  sql: string;
}

export interface MigrateOptions {
  /** Where the SQL files are; the shipped `migrations/` by default (tests give their own). */
  dir?: string;
}

export class MigrationError extends Error {
  override name = "MigrationError";
}

/** The migration files in order; throws on a name that is not `NNNN_words.sql` or a number used twice. */
export function listMigrations(dir: string = defaultDir): Migration[] {
  const names = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  const byNumber = new Map<string, string>();
  for (const name of names) {
    const number = NAME.exec(name)?.[1];
    if (!number) throw new MigrationError(`migration file name ${name} is not NNNN_words.sql (lower case, digits, underscores)`);
    const other = byNumber.get(number);
    if (other) throw new MigrationError(`migrations ${other} and ${name} share the number ${number}`);
    byNumber.set(number, name);
  }
  return names.map((name) => ({ name, sql: readFileSync(path.join(dir, name), "utf8") }));
}

/** Returns the names of the migrations it applied (empty when up to date). */
export async function migrate(database: Database, options: MigrateOptions = {}): Promise<string[]> {
  const migrations = listMigrations(options.dir);
  return database.connection(async (conn) => {
    if (database.kind === "postgres") await conn.query("SELECT pg_advisory_lock($1)", [LOCK_KEY]);
    try {
      return await applyPending(conn, migrations);
    } finally {
      // A broken connection ends the session, which releases the lock with it.
      if (database.kind === "postgres") await conn.query("SELECT pg_advisory_unlock($1)", [LOCK_KEY]).catch(() => undefined);
    }
  });
}

async function applyPending(conn: Connection, migrations: Migration[]): Promise<string[]> {
  const done = await conn.transaction(async (tx) => {
    await tx.exec("CREATE TABLE IF NOT EXISTS herald_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
    for (const [from, to] of Object.entries(RENAMED_MIGRATIONS)) {
      await tx.query("UPDATE herald_migrations SET name = $2 WHERE name = $1", [from, to]);
    }
    return new Set((await tx.query<{ name: string }>("SELECT name FROM herald_migrations")).map((r) => r.name));
  });
  const known = new Set(migrations.map((m) => m.name));
  const unknown = [...done].filter((name) => !known.has(name)).sort();
  if (unknown.length > 0) {
    throw new MigrationError(
      `the database records migration${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} that this Herald does not have: ` +
        "it was written by a newer Herald, which is the one to run on it",
    );
  }
  const applied: string[] = [];
  for (const m of migrations) {
    if (done.has(m.name)) continue;
    try {
      await conn.transaction(async (tx) => {
        await tx.exec(m.sql);
        await tx.query("INSERT INTO herald_migrations (name) VALUES ($1)", [m.name]);
      });
    } catch (err) {
      throw new MigrationError(`migration ${m.name} failed and was rolled back: ${(err as Error).message}`, { cause: err });
    }
    applied.push(m.name);
  }
  return applied;
}
