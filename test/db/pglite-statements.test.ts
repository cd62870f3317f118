/**
 * Named prepared statements on PGlite (src/db/pglite-statements.ts): from a
 * text's second run on, it is bound to a statement prepared once. What must
 * hold: the same rows and types as PGlite's own query(), errors as before
 * with nothing left half prepared, transactions as before, and texts beyond
 * the cap still answered.
 */
import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgliteStatements } from "../../src/db/pglite-statements.js";

let client: PGlite;
let statements: PgliteStatements;

beforeAll(async () => {
  client = await PGlite.create();
  statements = new PgliteStatements(client);
  await client.exec("CREATE TABLE t (id uuid PRIMARY KEY, n bigint, at timestamptz, body jsonb, ok boolean, tags text[])");
});
afterAll(() => client?.close());

const INSERT = "INSERT INTO t (id, n, at, body, ok, tags) SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[], $4::jsonb[], $5::boolean[]) AS u, LATERAL (SELECT $6::text[]) x RETURNING *";
const prepared = async () => (await client.query<{ name: string; statement: string }>("SELECT name, statement FROM pg_prepared_statements ORDER BY name")).rows;

describe("PgliteStatements", () => {
  it("answers a parameterized statement as PGlite's query() does, prepared from its second run", async () => {
    const runs = [];
    for (let i = 0; i < 4; i++) {
      const id = `00000000-0000-4000-8000-00000000000${i}`;
      const args = [[id], [String(2 ** 53 + i)], [new Date(Date.UTC(2026, 0, 1, i))], [JSON.stringify({ i, nul: "ab" })], [i % 2 === 0], ["x", "y\"z"]];
      runs.push(await statements.query<Record<string, unknown>>(INSERT, args));
    }
    const mine = runs.map((r) => r[0]);
    const theirs = (await client.query<Record<string, unknown>>("SELECT * FROM t ORDER BY id")).rows;
    expect(mine).toEqual(theirs);
    expect(mine[3]).toMatchObject({ ok: false, tags: ["x", "y\"z"], body: { i: 3, nul: "ab" } });
    expect((mine[2]!.at as Date).toISOString()).toBe("2026-01-01T02:00:00.000Z");
    expect((await prepared()).map((p) => p.statement)).toEqual([INSERT]);
  });

  it("null parameters, and a statement that fails keeps failing the same way without leaving a half-prepared name", async () => {
    const text = "SELECT $1::int AS a, $2::text AS b";
    for (let i = 0; i < 3; i++) expect(await statements.query(text, [null, i])).toEqual([{ a: null, b: String(i) }]);
    const bad = "SELECT $1::int / 0 AS boom";
    for (let i = 0; i < 3; i++) await expect(statements.query(bad, [1])).rejects.toThrow(/division by zero/);
    const broken = "SELEC $1::int";
    for (let i = 0; i < 3; i++) await expect(statements.query(broken, [1])).rejects.toThrow(/syntax error/);
    expect((await prepared()).map((p) => p.statement)).not.toContain(broken);
    // The connection is usable afterwards.
    expect(await statements.query(text, [7, "z"])).toEqual([{ a: 7, b: "z" }]);
  });

  it("inside a transaction: rows seen by the transaction, an error rolls it back whole", async () => {
    const insert = "INSERT INTO t (id, n) VALUES ($1, $2) RETURNING n::int AS n";
    const id = (i: number) => `10000000-0000-4000-8000-00000000000${i}`;
    await client.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) expect(await statements.queryIn(tx, insert, [id(i), i])).toEqual([{ n: i }]);
    });
    await expect(
      client.transaction(async (tx) => {
        await statements.queryIn(tx, insert, [id(5), 5]);
        await statements.queryIn(tx, insert, [id(5), 6]); // duplicate key
      }),
    ).rejects.toThrow(/duplicate key/);
    const rows = (await client.query<{ id: string }>("SELECT id FROM t WHERE id::text LIKE '10000000%' ORDER BY id")).rows.map((r) => r.id);
    expect(rows).toEqual([id(0), id(1), id(2)]);
  });

  it("texts beyond the cap still run, unprepared", async () => {
    const texts = Array.from({ length: 80 }, (_, i) => `SELECT $1::int + ${i} AS v`);
    for (const text of texts) for (let r = 0; r < 2; r++) expect(await statements.query(text, [1])).toEqual([{ v: 1 + texts.indexOf(text) }]);
    expect((await prepared()).length).toBe(64);
  });

  it("texts run once are remembered a bounded number of times (ad-hoc texts cannot grow the tally without end)", async () => {
    const fresh = new PgliteStatements(client); // runs each text once: prepares nothing, so no name collides with the shared instance's
    for (let i = 0; i < 2_500; i++) expect(await fresh.query(`SELECT $1::int + ${i} AS v`, [1])).toEqual([{ v: 1 + i }]);
    expect(fresh["runs"].size).toBeLessThanOrEqual(1_000);
    expect(fresh["runs"].size).toBeGreaterThan(0);
  });

  it("a generic plan made while a table was small is dropped once the table has grown (PGlite runs no autovacuum)", async () => {
    const own = await PGlite.create();
    try {
      const checkEveryRun = new PgliteStatements(own, 0);
      // PostgreSQL picks a generic plan once it looks no worse than the custom ones (Herald's ack marks did); here it is forced.
      await own.exec("SET plan_cache_mode = force_generic_plan; CREATE TABLE g (id int PRIMARY KEY, v text)");
      const MARK = "UPDATE g SET v = 'x' FROM unnest($1::int[]) AS a(id) WHERE g.id = a.id RETURNING g.id";
      for (let i = 0; i < 8; i++) await checkEveryRun.query(MARK, [[1, 2, 3]]);
      await checkEveryRun.refreshing;
      const [{ name }] = (await own.query<{ name: string }>("SELECT name FROM pg_prepared_statements WHERE statement = $1", [MARK])).rows as [{ name: string }];
      const plan = async () => (await own.query<{ "QUERY PLAN": string }>(`EXPLAIN EXECUTE ${name}('{1,2,3}')`)).rows.map((r) => r["QUERY PLAN"]).join("\n");
      await own.exec("INSERT INTO g SELECT n, 'v' FROM generate_series(1, 100000) n");
      // The plan made while g was empty: every run would read all 100,000 rows.
      expect(await plan()).toMatch(/Seq Scan on g/);
      expect(await checkEveryRun.query(MARK, [[1, 2, 3]])).toHaveLength(3);
      expect(await checkEveryRun.refreshing).toEqual(["g"]);
      expect(await plan()).not.toMatch(/Seq Scan on g/);
      // A small sample (an ANALYZE holds PGlite's one connection): 20 histogram buckets, not the session's 100.
      const [{ bounds }] = (await own.query<{ bounds: number }>("SELECT array_length(histogram_bounds::text::int[], 1) AS bounds FROM pg_stats WHERE tablename = 'g' AND attname = 'id'")).rows as [{ bounds: number }];
      expect(bounds).toBe(21);
      expect((await own.query("SHOW default_statistics_target")).rows).toEqual([{ default_statistics_target: "100" }]);
      expect(await checkEveryRun.refreshStatistics()).toEqual([]); // analyzed once per growth by half
    } finally {
      await own.close();
    }
  });
});
