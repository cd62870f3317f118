/**
 * A database written by the Herald of a4ea71a (before the storage renovation)
 * upgrades in place: the renovated migrate() runs on it, every table keeps
 * its row count and the checksum of its rows, herald_migrations holds exactly
 * today's file names, and Herald starts on it and serves Alice her inbox.
 * PGlite: the data directory that Herald wrote, loaded into a temp dir.
 * PostgreSQL (when DATABASE_URL is set): its pg_dump, loaded into a database
 * this test creates and drops. See fixtures/make-fixtures.mjs.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { brotliDecompressSync } from "node:zlib";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type Database, listMigrations, migrate, openDatabase, quoteIdent } from "../../src/db/index.js";
import { startTestHerald } from "../support/herald.js";
import { adminQuery, uniqueName } from "./helpers.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");

interface Manifest {
  migrations: string[];
  tables: Record<string, { rows: number; columns: string[]; checksum: string }>;
  aliceInbox: { id: string; seq: string; title: string }[];
}
const manifestOf = (engine: string) => JSON.parse(readFileSync(path.join(fixtures, `a4ea71a-${engine}.json`), "utf8")) as Manifest;

/** The same count and checksum make-fixtures.mjs took, over the columns each table had then. */
async function tablesOf(database: Database, manifest: Manifest): Promise<Manifest["tables"]> {
  return database.transaction(async (tx) => {
    await tx.query("SET LOCAL TIME ZONE 'UTC'");
    const tables: Manifest["tables"] = {};
    for (const [table, { columns }] of Object.entries(manifest.tables)) {
      const [row] = await tx.query<{ rows: number; checksum: string }>(
        `SELECT count(*)::int AS rows, md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) AS checksum
         FROM (SELECT jsonb_build_array(${columns.map(quoteIdent).join(", ")})::text AS r FROM ${quoteIdent(table)}) x`,
      );
      tables[table] = { rows: row!.rows, columns, checksum: row!.checksum };
    }
    return tables;
  });
}

/** Upgrades `database` and checks it; Herald is started on it and stopped (the database stays open). */
async function upgradeAndCheck(database: Database, manifest: Manifest): Promise<void> {
  const names = listMigrations().map((m) => m.name);
  const applied = await migrate(database);
  // Today's files after the ones the fixture recorded (renamed or not) are the only ones run.
  expect(applied).toEqual(names.slice(manifest.migrations.length));
  const recorded = await database.query<{ name: string }>("SELECT name FROM herald_migrations ORDER BY name");
  expect(recorded.map((r) => r.name)).toEqual([...names].sort());

  expect(Object.keys(manifest.tables).length).toBeGreaterThanOrEqual(15);
  for (const [table, { rows }] of Object.entries(manifest.tables)) expect(rows, table).toBeGreaterThan(0);
  expect(await tablesOf(database, manifest)).toEqual(manifest.tables);

  const h = await startTestHerald({ sharedDatabase: Object.assign(database, { label: database.kind, cleanup: async () => undefined }) });
  try {
    const page = await h.herald.notifications.getNotifications("alice", { archived: false });
    expect(page.notifications.map((n) => n.id).sort()).toEqual(manifest.aliceInbox.map((n) => n.id).sort());
    expect(page.notifications.find((n) => n.title === "Message from Bob")?.data).toEqual({ threadId: "t-1", nested: { n: 1, list: [1, "two"] } });
    // The identity goes on from where it was: a new notification sorts after every old one.
    const fresh = await h.herald.notifications.createAndSendNotification({ userId: "alice", type: "new_message", title: "After the upgrade", message: "m" });
    const oldest = Math.max(...manifest.aliceInbox.map((n) => Number(n.seq)));
    expect(fresh!.seq).toBeGreaterThan(oldest);
  } finally {
    await h.stop();
  }
}

describe("upgrade in place from a4ea71a", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("a PGlite data directory", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "herald-upgrade-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const tar = brotliDecompressSync(readFileSync(path.join(fixtures, "a4ea71a-pglite.tar.br")));
    const loader = await PGlite.create(path.join(dir, "pgdata"), { loadDataDir: new Blob([tar], { type: "application/x-tar" }) });
    await loader.close();

    const database = await openDatabase({ dataDir: dir });
    cleanups.push(() => database.close());
    await upgradeAndCheck(database, manifestOf("pglite"));
  });

  it.skipIf(!process.env.DATABASE_URL)("a PostgreSQL database (its pg_dump)", async () => {
    const url = process.env.DATABASE_URL!;
    const name = uniqueName("herald_upgrade");
    await adminQuery(url, `CREATE DATABASE ${quoteIdent(name)}`);
    cleanups.push(() => adminQuery(url, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
    const target = new URL(url);
    target.pathname = `/${name}`;

    // pg_dump 15.14+ brackets its output in psql's \restrict / \unrestrict, which only psql understands.
    const dump = readFileSync(path.join(fixtures, "a4ea71a-postgres.sql"), "utf8").replace(/^\\(un)?restrict .*$/gm, "");
    const loader = new pg.Client({ connectionString: target.toString() });
    await loader.connect();
    try {
      await loader.query(dump);
    } finally {
      await loader.end();
    }

    const database = await openDatabase({ url: target.toString(), poolSize: 4 });
    cleanups.push(() => database.close());
    await upgradeAndCheck(database, manifestOf("postgres"));
  });
});
