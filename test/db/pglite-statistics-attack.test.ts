/**
 * Attacks on PgliteStatements' statistics refresh (17d34f5): the tables grown
 * since their last ANALYZE are analyzed in the background, from a prepared
 * statement's run. What must hold: a refresh never runs a statement once
 * PGlite is closing (one started from a transaction that close() waits for
 * queues behind close()), and any schema and table name is found and quoted.
 */
import { PGlite } from "@electric-sql/pglite";
import { expect, it } from "vitest";
import { PgliteStatements } from "../../src/db/pglite-statements.js";

it("a refresh queued behind close() (started from the transaction close() waits for) runs nothing on the closed backend", async () => {
  const client = await PGlite.create();
  const statements = new PgliteStatements(client, 0);
  await client.exec("CREATE TABLE a (id int); INSERT INTO a SELECT generate_series(1, 3000)");
  let refresh!: Promise<string[]>;
  let closing!: Promise<void>;
  await client.transaction(async () => {
    // close() waits for this transaction: it has not marked PGlite closing yet, so PGlite's own
    // query() would pass its readiness check and run its statement right after close() tore down.
    closing = client.close();
    await new Promise((resolve) => setImmediate(resolve));
    refresh = statements.refreshStatistics();
  });
  await expect(refresh).rejects.toThrow("PGlite is closing"); // was a TypeError from inside the torn-down backend
  await closing;
  expect(client.closed).toBe(true);
});

it("finds the grown tables of a current schema whose name needs quotes, and analyzes them by their quoted names", async () => {
  const client = await PGlite.create();
  try {
    const statements = new PgliteStatements(client, 0);
    await client.exec(`
      CREATE SCHEMA "Herald Tenant"; SET search_path = "Herald Tenant";
      CREATE TABLE "Events ""x""" (id int); INSERT INTO "Events ""x""" SELECT generate_series(1, 3000);
      CREATE TABLE shadowed (id int); INSERT INTO shadowed SELECT generate_series(1, 3000);
      CREATE TEMP TABLE shadowed (id int)`);
    // current_schema()::regnamespace parsed the name as an identifier: "invalid name syntax", so no table was ever analyzed.
    // The temporary table comes first on the search path: the schema's own is named in full.
    expect((await statements.refreshStatistics()).sort()).toEqual(['"Events ""x"""', '"Herald Tenant".shadowed']);
    const pages = await client.query<{ relname: string; relpages: number }>(
      `SELECT relname, relpages FROM pg_class WHERE relnamespace = '"Herald Tenant"'::regnamespace AND relkind = 'r' ORDER BY 1`,
    );
    expect(pages.rows.every((r) => r.relpages > 0)).toBe(true);
    expect(await statements.refreshStatistics()).toEqual([]);
  } finally {
    await client.close();
  }
});
