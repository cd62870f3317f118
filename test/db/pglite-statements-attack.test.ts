/**
 * Attacks on PgliteStatements (src/db/pglite-statements.ts, commit be35469):
 * a parameterized text run a second time is bound to a named statement. What
 * a caller was promised by PGlite's own query() must still hold once the
 * text is prepared: the same rows and types for every kind of parameter, the
 * same error object (callers read err.code), the same behaviour after schema
 * changes, no interleaving with an open transaction, notifications, and
 * writes that survive a close in a real data directory.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PGlite, type Transaction } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgliteStatements } from "../../src/db/pglite-statements.js";

let client: PGlite;
let statements: PgliteStatements;

beforeAll(async () => {
  client = await PGlite.create();
  statements = new PgliteStatements(client);
  await client.exec(`
    CREATE TABLE a (id int PRIMARY KEY, name text UNIQUE, at timestamptz);
    CREATE TABLE c (batch int, n int);
  `);
});
afterAll(() => client?.close());

const preparedTexts = async () => (await client.query<{ statement: string }>("SELECT statement FROM pg_prepared_statements")).rows.map((r) => r.statement);

/** Runs `text` three times through PgliteStatements (prepared from the second) and returns the last rows. */
async function thrice<T>(text: string, params: unknown[]): Promise<T[]> {
  let rows: T[] = [];
  for (let i = 0; i < 3; i++) rows = await statements.query<T>(text, params);
  return rows;
}

async function errorOf(run: () => Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await run();
  } catch (err) {
    const e = err as Record<string, unknown>;
    return { name: e.name, message: e.message, code: e.code, severity: e.severity, detail: e.detail, constraint: e.constraint, table: e.table, query: e.query, params: e.params };
  }
  throw new Error("did not fail");
}

describe("PgliteStatements against PGlite's query()", () => {
  it("serializes every kind of parameter and parses every result type the same way", async () => {
    const bytes = Uint8Array.from([0, 1, 2, 255]);
    const cases: [string, unknown[]][] = [
      ["SELECT $1::timestamptz AS v", [new Date(Date.UTC(2026, 1, 3, 4, 5, 6, 789))]],
      ["SELECT $1::int8 AS v, $1::int8 + 1 AS w", [2n ** 60n]],
      ["SELECT $1::int8 AS v", [String(2 ** 53 + 1)]],
      ["SELECT $1::bytea AS v", [Buffer.from(bytes)]],
      ["SELECT $1::bytea AS v, length($1::bytea) AS l", [bytes]],
      ["SELECT $1::jsonb AS v", [{ a: [1, { b: "c\"d" }], n: null }]],
      ["SELECT $1::json AS v", [[{ a: 1 }, { b: 2 }]]],
      ["SELECT $1::jsonb[] AS v", [[{ a: 1 }, { b: [2] }]]],
      ["SELECT $1::bool AS v, $2::text AS t", [false, true]],
      ["SELECT $1::text AS v, $2::int AS w", [undefined, null]],
      ["SELECT $1::numeric * 2 AS v", ["1.50"]],
      ["SELECT $1::int[] AS v", [[1, null, 3]]],
      ["SELECT $1::text[] AS v", [["a", 'b,"c', null, ""]]],
      ["SELECT $1::timestamptz[] AS v", [[new Date(0), new Date(86_400_000)]]],
      ["SELECT $1 AS v", [5]],
      ["SELECT $1::text AS v", [{ toString: () => "custom" }]],
      ["SELECT $1::float8 AS v, $2::real AS w, $3::smallint AS x", [0.1, 1.5, -3]],
      ["SELECT $1::uuid AS v, $2::date AS d, $3::interval AS i", ["00000000-0000-4000-8000-000000000001", "2026-02-03", "1 day 2 hours"]],
    ];
    for (const [text, params] of cases) {
      const theirs = (await client.query(text, params)).rows;
      expect(await thrice(text, params), text).toEqual(theirs);
    }
    expect(await preparedTexts()).toEqual(expect.arrayContaining(cases.map(([text]) => text)));
  });

  it("fails with the error object client.query throws: code, detail, constraint, and the failed query and params", async () => {
    const insert = "INSERT INTO a (id, name) VALUES ($1, $2)";
    await client.query(insert, [1, "one"]);
    const theirs = await errorOf(() => client.query(insert, [1, "again"]));
    expect(theirs).toMatchObject({ code: "23505", constraint: "a_pkey", query: insert, params: [1, "again"] });
    for (let i = 0; i < 3; i++) expect(await errorOf(() => statements.query(insert, [1, "again"]))).toEqual(theirs);
    expect(await preparedTexts()).toContain(insert);
    // A parameter the server rejects at Bind: 22P02, same object too.
    const typed = "SELECT $1::int AS v";
    const bad = await errorOf(() => client.query(typed, ["x"]));
    for (let i = 0; i < 3; i++) await statements.query(typed, [i]);
    expect(await errorOf(() => statements.query(typed, ["x"]))).toEqual(bad);
    expect(await statements.query(typed, [4])).toEqual([{ v: 4 }]);
  });

  it("inside a transaction as well, where the caller checks err.code 23505 and carries on with a savepoint", async () => {
    const insert = "INSERT INTO a (id, name) VALUES ($1, $2) RETURNING id";
    for (let i = 10; i < 13; i++) await statements.query(insert, [i, `n${i}`]);
    const err = await client.transaction(async (tx) => {
      await tx.exec("SAVEPOINT s");
      const e = await errorOf(() => statements.queryIn(tx, insert, [10, "dup"]));
      await tx.exec("ROLLBACK TO SAVEPOINT s");
      expect(await statements.queryIn(tx, insert, [14, "n14"])).toEqual([{ id: 14 }]);
      return e;
    });
    expect(err).toMatchObject({ code: "23505", query: insert, params: [10, "dup"] });
    expect((await client.query("SELECT id FROM a WHERE id = 14")).rows).toEqual([{ id: 14 }]);
  });
});

describe("schema changes after a text is prepared", () => {
  it("SELECT * and RETURNING * after ALTER TABLE ADD COLUMN answer with the new column, as client.query does", async () => {
    await client.exec("CREATE TABLE s (id int PRIMARY KEY, v text)");
    const select = "SELECT * FROM s WHERE id = $1";
    const insert = "INSERT INTO s (id, v) VALUES ($1, $2) RETURNING *";
    for (let i = 0; i < 3; i++) await statements.query(insert, [i, `v${i}`]);
    await thrice(select, [1]);
    expect(await preparedTexts()).toEqual(expect.arrayContaining([select, insert]));
    await client.exec("ALTER TABLE s ADD COLUMN extra int DEFAULT 7");
    expect(await statements.query(select, [1])).toEqual([{ id: 1, v: "v1", extra: 7 }]);
    expect(await statements.query(insert, [5, "v5"])).toEqual([{ id: 5, v: "v5", extra: 7 }]);
    // And afterwards the texts are still answered (prepared again or not).
    expect(await thrice(select, [5])).toEqual([{ id: 5, v: "v5", extra: 7 }]);
  });

  it("inside a transaction the changed result type fails that transaction once, and the text works afterwards", async () => {
    await client.exec("CREATE TABLE s2 (id int PRIMARY KEY)");
    const select = "SELECT * FROM s2 WHERE id > $1";
    await client.query("INSERT INTO s2 VALUES (1)");
    await client.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) expect(await statements.queryIn(tx, select, [0])).toEqual([{ id: 1 }]);
    });
    await client.exec("ALTER TABLE s2 ADD COLUMN w int DEFAULT 2");
    // As on PostgreSQL with a prepared statement: the aborted transaction cannot run it again.
    await expect(client.transaction((tx) => statements.queryIn(tx, select, [0]))).rejects.toMatchObject({ code: "0A000", query: select });
    const rows = await client.transaction((tx) => statements.queryIn(tx, select, [0]));
    expect(rows).toEqual([{ id: 1, w: 2 }]);
    // Parsed afresh under its name (closed even though the transaction had failed), not left behind.
    expect((await preparedTexts()).filter((t) => t === select)).toHaveLength(1);
  });

  it("a table dropped and recreated (other column types), and a temp table per transaction as erasure makes", async () => {
    await client.exec("CREATE TABLE r (id int, v text)");
    const text = "SELECT v FROM r WHERE id = $1";
    await client.query("INSERT INTO r VALUES (1, 'a')");
    expect(await thrice(text, [1])).toEqual([{ v: "a" }]);
    await client.exec("DROP TABLE r; CREATE TABLE r (v varchar(5), id bigint); INSERT INTO r VALUES ('b', 1)");
    expect(await statements.query(text, [1])).toEqual([{ v: "b" }]);

    await client.exec("CREATE TABLE e (id int); INSERT INTO e SELECT generate_series(1, 20)");
    const temp = "CREATE TEMP TABLE tmp_ids ON COMMIT DROP AS SELECT id FROM e WHERE id >= $1";
    const count = "SELECT count(*)::int AS n FROM tmp_ids WHERE id < $1";
    for (let i = 0; i < 4; i++) {
      const n = await client.transaction(async (tx) => {
        await statements.queryIn(tx, temp, [10]);
        return (await statements.queryIn<{ n: number }>(tx, count, [13]))[0]!.n;
      });
      expect(n).toBe(3);
    }
    expect(await preparedTexts()).toContain(count);
  });
});

describe("concurrency and transactions", () => {
  it("many concurrent statements, transactions and exec: nothing runs inside another's transaction, nothing deadlocks", async () => {
    const insert = "INSERT INTO c (batch, n) VALUES ($1, $2)";
    const count = "SELECT count(*)::int AS n FROM c WHERE batch = $1";
    const work: Promise<unknown>[] = [];
    const seen: number[] = [];
    for (let b = 0; b < 10; b++) {
      work.push(
        client.transaction(async (tx) => {
          for (let n = 0; n < 5; n++) await statements.queryIn(tx, insert, [b, n]);
          await tx.exec("SELECT 1");
        }),
      );
      for (let k = 0; k < 10; k++) work.push(statements.query<{ n: number }>(count, [b]).then((r) => seen.push(r[0]!.n)));
      work.push(client.exec("SELECT 1"));
      work.push(statements.query("SELECT pg_sleep(0) WHERE $1::int > 0", [b]));
    }
    await Promise.all(work);
    expect(seen).toHaveLength(100);
    expect(seen.filter((n) => n !== 0 && n !== 5)).toEqual([]);
    expect((await client.query<{ n: number }>("SELECT count(*)::int AS n FROM c")).rows).toEqual([{ n: 50 }]);
  });

  it("a transaction handle used after its commit is refused, as tx.query refuses it, instead of running outside", async () => {
    const text = "SELECT $1::int AS v";
    let kept: Transaction | undefined;
    await client.transaction(async (tx) => {
      kept = tx;
      for (let i = 0; i < 3; i++) await statements.queryIn(tx, text, [i]);
    });
    await expect(kept!.query(text, [1])).rejects.toThrow(/Transaction is closed/);
    await expect(statements.queryIn(kept!, text, [1])).rejects.toThrow(/Transaction is closed/);
  });

  it("notifications sent by prepared statements reach listeners", async () => {
    const payloads: string[] = [];
    let resolve!: () => void;
    const three = new Promise<void>((r) => {
      resolve = r;
    });
    const stop = await client.listen("attack_ch", (payload) => {
      payloads.push(payload);
      if (payloads.length === 3) resolve();
    });
    for (let i = 0; i < 3; i++) await statements.query("SELECT pg_notify($1, $2)", ["attack_ch", `m${i}`]);
    await three;
    expect(payloads).toEqual(["m0", "m1", "m2"]);
    await stop();
  });

  it("an error at Bind and at Execute inside a transaction, then ROLLBACK: the named statement is still there and works", async () => {
    const insert = "INSERT INTO a (id, name, at) VALUES ($1, $2, $3) RETURNING id";
    for (let i = 20; i < 23; i++) await statements.query(insert, [i, `n${i}`, new Date()]);
    const before = (await client.query<{ name: string }>("SELECT name FROM pg_prepared_statements WHERE statement = $1", [insert])).rows;
    expect(before).toHaveLength(1);
    await expect(client.transaction((tx) => statements.queryIn(tx, insert, [30, "n30", "not a date"]))).rejects.toMatchObject({ code: "22007" });
    await expect(client.transaction((tx) => statements.queryIn(tx, insert, [20, "n20", new Date()]))).rejects.toMatchObject({ code: "23505" });
    await expect(
      client.transaction(async (tx) => {
        await statements.queryIn(tx, insert, [31, "n31", new Date()]);
        await tx.rollback();
      }),
    ).resolves.toBeUndefined();
    expect(await statements.query(insert, [32, "n32", new Date()])).toEqual([{ id: 32 }]);
    expect((await client.query("SELECT name FROM pg_prepared_statements WHERE statement = $1", [insert])).rows).toEqual(before);
    expect((await client.query("SELECT id FROM a WHERE id IN (30, 31) ")).rows).toEqual([]);
  });
});

describe("after close", () => {
  it("a prepared text fails as client.query fails, with PGlite is closed", async () => {
    const db = await PGlite.create();
    const own = new PgliteStatements(db);
    const text = "SELECT $1::int AS v";
    for (let i = 0; i < 3; i++) await own.query(text, [i]);
    await db.close();
    await expect(db.query(text, [1])).rejects.toThrow(/PGlite is closed/);
    await expect(own.query(text, [1])).rejects.toThrow(/PGlite is closed/);
  });
});

describe("a real data directory", () => {
  it("rows written by prepared statements outside a transaction are there after close and reopen", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "herald-pglite-statements-"));
    try {
      const db = await PGlite.create(dir);
      const own = new PgliteStatements(db);
      await db.exec("CREATE TABLE d (id int PRIMARY KEY, v text)");
      for (let i = 0; i < 5; i++) await own.query("INSERT INTO d (id, v) VALUES ($1, $2)", [i, `v${i}`]);
      await db.transaction(async (tx) => {
        for (let i = 5; i < 8; i++) await own.queryIn(tx, "INSERT INTO d (id, v) VALUES ($1, $2)", [i, `v${i}`]);
      });
      await db.close();
      const again = await PGlite.create(dir);
      try {
        expect((await again.query<{ n: number }>("SELECT count(*)::int AS n FROM d")).rows).toEqual([{ n: 8 }]);
      } finally {
        await again.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
