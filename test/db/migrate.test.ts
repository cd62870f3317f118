/**
 * The migration runner: file names and numbers, each file whole in its own
 * transaction, the record equal to the file list, the renamed 0004, a
 * database from a newer Herald refused, instances starting together.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { MigrationError, RENAMED_MIGRATIONS, listMigrations, migrate } from "../../src/db/index.js";
import { usingPostgres } from "../support/database.js";
import { type EmptyDatabase, openEmptyDatabase } from "./helpers.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");
const names = () => listMigrations().map((m) => m.name);
const recorded = async (db: EmptyDatabase) => (await db.database.query<{ name: string }>("SELECT name FROM herald_migrations ORDER BY name")).map((r) => r.name);

const dirs: string[] = [];
const dirWith = (files: Record<string, string>) => {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-migrations-"));
  dirs.push(dir);
  for (const [name, sql] of Object.entries(files)) writeFileSync(path.join(dir, name), sql);
  return dir;
};
let opened: EmptyDatabase | undefined;
const empty = async () => (opened = await openEmptyDatabase());
afterEach(async () => {
  await opened?.cleanup();
  opened = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("migration files", () => {
  it("are named NNNN_words.sql, each number used once", () => {
    const list = names();
    expect(list.length).toBeGreaterThan(0);
    for (const name of list) expect(name).toMatch(/^\d{4}_[a-z0-9_]+\.sql$/);
    const numbers = list.map((n) => n.slice(0, 4));
    expect(new Set(numbers).size).toBe(numbers.length);
  });

  it("a file list with a shared number or a bad name is refused", () => {
    expect(() => listMigrations(dirWith({ "0001_a.sql": "", "0001_b.sql": "" }))).toThrow(/0001_a\.sql and 0001_b\.sql share the number 0001/);
    expect(() => listMigrations(dirWith({ "1_init.sql": "" }))).toThrow(MigrationError);
    expect(() => listMigrations(dirWith({ "0002_Bad-Name.sql": "" }))).toThrow(/0002_Bad-Name\.sql is not NNNN_words\.sql/);
  });

  it("run on a fresh database in the order today's databases ran them (renames mapped), new ones numbered after", () => {
    // Written by a4ea71a, the last Herald before the renumbering.
    const before = (JSON.parse(readFileSync(path.join(fixtures, "a4ea71a-pglite.json"), "utf8")) as { migrations: string[] }).migrations;
    expect(before.map((n) => RENAMED_MIGRATIONS[n] ?? n)).toEqual(names().slice(0, before.length));
    for (const [from, to] of Object.entries(RENAMED_MIGRATIONS)) {
      expect(names()).toContain(to);
      expect(names()).not.toContain(from);
    }
  });
});

describe("migrate", () => {
  it("applies every file once on a fresh database, in order, and records exactly the file list", async () => {
    const db = await empty();
    expect(await migrate(db.database)).toEqual(names());
    expect(await recorded(db)).toEqual([...names()].sort());
    expect(await migrate(db.database)).toEqual([]);
  });

  it("sends each file whole ($$ bodies with semicolons) in its own transaction: a failing file leaves nothing, the ones before stay", async () => {
    const db = await empty();
    const dir = dirWith({
      "0001_function.sql": `
        -- A comment; with a semicolon.
        CREATE FUNCTION probe_double(x int) RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
          -- semicolons inside the body;
          RETURN x * 2;
        END;
        $$;
        CREATE TABLE probe (x int);
        INSERT INTO probe VALUES (probe_double(21));`,
      "0002_fails.sql": "CREATE TABLE probe_half (x int);\nINSERT INTO probe VALUES (1);\nSELECT 1 / 0;",
    });
    const failure = await migrate(db.database, { dir }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(MigrationError);
    expect((failure as Error).message).toMatch(/0002_fails\.sql failed and was rolled back: division by zero/);
    expect(await recorded(db)).toEqual(["0001_function.sql"]);
    expect(await db.database.query("SELECT x FROM probe")).toEqual([{ x: 42 }]);
    expect(await db.database.query("SELECT to_regclass('probe_half') AS t")).toEqual([{ t: null }]);

    writeFileSync(path.join(dir, "0002_fails.sql"), "CREATE TABLE probe_half (x int);");
    expect(await migrate(db.database, { dir })).toEqual(["0002_fails.sql"]);
    expect(await recorded(db)).toEqual(["0001_function.sql", "0002_fails.sql"]);
  });

  it("a database that recorded a file under its old number does not run it again", async () => {
    const db = await empty();
    await migrate(db.database);
    for (const [from, to] of Object.entries(RENAMED_MIGRATIONS)) {
      await db.database.query("UPDATE herald_migrations SET name = $1 WHERE name = $2", [from, to]);
    }
    // Running 0003_digests_lease_owner.sql again would fail: its column exists.
    expect(await migrate(db.database)).toEqual([]);
    expect(await recorded(db)).toEqual([...names()].sort());
  });

  it("refuses a database that records a migration it does not have (a newer Herald's), applying nothing", async () => {
    const db = await empty();
    const dir = dirWith({ "0001_a.sql": "CREATE TABLE a (x int);", "0002_b.sql": "CREATE TABLE b (x int);" });
    await migrate(db.database, { dir });
    await db.database.query("INSERT INTO herald_migrations (name) VALUES ('0003_from_a_newer_herald.sql')");
    writeFileSync(path.join(dir, "0004_c.sql"), "CREATE TABLE c (x int);");
    await expect(migrate(db.database, { dir })).rejects.toThrow(/records migration 0003_from_a_newer_herald\.sql that this Herald does not have/);
    expect(await db.database.query("SELECT to_regclass('c') AS t")).toEqual([{ t: null }]);
  });

  it.skipIf(!usingPostgres)("two instances starting together on PostgreSQL apply each file once (pooled connections)", async () => {
    const db = await empty();
    const others = await Promise.all([db.another(), db.another(), db.another()]);
    const results = await Promise.all([db.database, ...others].map((d) => migrate(d)));
    expect(results.flat().sort()).toEqual([...names()].sort());
    expect(results.filter((r) => r.length > 0)).toHaveLength(1);
    expect(await recorded(db)).toEqual([...names()].sort());
  });
});
