/**
 * Applies the numbered SQL files in `migrations/` once each, in order, each in
 * its own transaction, recording them in `herald_migrations`. On PostgreSQL an
 * advisory lock makes concurrent starts of several instances safe.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import type { Database } from "./database.js";

const migrationsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");
const LOCK_KEY = 0x6865726c; // "herl"

export function listMigrations(): { name: string; sql: string }[] {
  return readdirSync(migrationsDir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .map((name) => ({ name, sql: readFileSync(path.join(migrationsDir, name), "utf8") }));
}

/** Returns the names of the migrations it applied (empty when up to date). */
export async function migrate(database: Database): Promise<string[]> {
  await database.exec(
    "CREATE TABLE IF NOT EXISTS herald_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
  );
  // One transaction for all pending files; on PostgreSQL a transaction-scoped
  // advisory lock makes instances that start together apply them once.
  return database.transaction(async (tx) => {
    if (database.kind === "postgres") await tx.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
    const done = new Set((await tx.query<{ name: string }>("SELECT name FROM herald_migrations")).map((r) => r.name));
    const applied: string[] = [];
    for (const m of listMigrations()) {
      if (done.has(m.name)) continue;
      for (const statement of splitStatements(m.sql)) await tx.query(statement);
      await tx.query("INSERT INTO herald_migrations (name) VALUES ($1)", [m.name]);
      applied.push(m.name);
    }
    return applied;
  });
}

/** Splits a migration on semicolons at line ends; our SQL files keep to that shape. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, "").trim())
    .filter((s) => s.length > 0);
}
