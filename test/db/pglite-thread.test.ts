/**
 * PGlite in a worker thread (the embedded default) against PGlite on the
 * calling thread: the same statements give the same rows, types and errors,
 * a transaction holds the one connection, NOTIFY comes back, and DATA_DIR
 * stays locked by this process. PGlite only, whatever DATABASE_URL says.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataDirInUseError, type Database, openDatabase } from "../../src/db/index.js";

/** Opening PGlite compiles its WebAssembly: slow on a loaded machine, two at once slower. */
const OPEN_TIMEOUT = 180_000;

const SCHEMA = `
  CREATE TABLE probe (id int PRIMARY KEY, big bigint, at timestamptz, day date, doc jsonb, raw bytea, tags text[], counts bigint[], amount numeric, note text UNIQUE);
  INSERT INTO probe (id, note) VALUES (0, 'taken');`;

/** Statements whose results both ways must equal, each with the types PGlite gives them. */
const QUERIES: [string, unknown[]?][] = [
  [
    "INSERT INTO probe VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
    [1, 9007199254740993n, new Date("2026-01-02T03:04:05.678Z"), "2026-02-03", { a: [1, "x", null], at: new Date(0) }, Buffer.from([0, 1, 255]), ["a", "b,c"], [1, 2], "12.50", "n"],
  ],
  ["INSERT INTO probe (id, doc) VALUES ($1, $2) RETURNING doc", [2, new URL("https://example.test/a?b=1")]],
  ["SELECT * FROM probe ORDER BY id"],
  ["SELECT 1::int8 AS one8, count(*) AS n, now() > $1 AS later, interval '1 day' AS span, '{\"x\":1}'::json AS js, NULL AS nothing", [new Date(0)]],
  ["SELECT $1::text AS s, $2::int AS i, $3::boolean AS b, $4::float8 AS f", ["ü", 7, true, 1.5]],
  ["SELECT $1::text AS url", [new URL("https://example.test/b")]],
  ["UPDATE probe SET note = 'm' WHERE id = 99 RETURNING id"],
];

const ERRORS: [string, unknown[]?][] = [
  ["INSERT INTO probe (id) VALUES (0)"],
  ["INSERT INTO probe (id, note) VALUES (3, 'taken')"],
  ["SELECT 1 / $1::int", [0]],
  ["SELECT * FROM missing_table"],
  ["SELECT now() AT TIME ZONE $1", ["Mars/Olympus"]],
];

/** The fields callers read from a PostgreSQL error. */
const errorFields = (err: unknown) => {
  const e = err as Record<string, unknown>;
  return { isError: err instanceof Error, message: e.message, code: e.code, constraint: e.constraint, detail: e.detail, table: e.table, severity: e.severity };
};

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  return run().then(
    () => expect.fail("expected the statement to fail"),
    (err: unknown) => err,
  );
}

describe("PGlite in a worker thread", () => {
  let threaded: Database;
  let inThread: Database;
  beforeAll(async () => {
    [threaded, inThread] = await Promise.all([openDatabase({ pgliteThread: true }), openDatabase({ pgliteThread: false })]);
    await Promise.all([threaded.exec(SCHEMA), inThread.exec(SCHEMA)]);
  }, OPEN_TIMEOUT);
  afterAll(async () => {
    await Promise.all([threaded?.close(), inThread?.close()]);
  });

  it("returns the same rows, with the same types, as PGlite on this thread", async () => {
    for (const [text, params] of QUERIES) {
      const [a, b] = [await threaded.query(text, params), await inThread.query(text, params)];
      expect(a, text).toEqual(b);
    }
    const [row] = await threaded.query<Record<string, unknown>>("SELECT * FROM probe WHERE id = 1");
    expect(typeof row!.big).toBe("bigint");
    expect(row!.at).toBeInstanceOf(Date);
    expect(row!.raw).toBeInstanceOf(Uint8Array);
    expect(row!.raw).toEqual(new Uint8Array([0, 1, 255]));
    expect(row!.doc).toEqual({ a: [1, "x", null], at: "1970-01-01T00:00:00.000Z" });
    expect(row!.counts).toEqual([1, 2]);
  });

  it("fails with the same PostgreSQL error fields (code, constraint, detail) as PGlite on this thread", async () => {
    for (const [text, params] of ERRORS) {
      const [a, b] = [await failure(() => threaded.query(text, params)), await failure(() => inThread.query(text, params))];
      expect(errorFields(a), text).toEqual(errorFields(b));
      expect((a as { code?: string }).code, text).toMatch(/^[0-9A-Z]{5}$/);
    }
    const duplicate = await failure(() => threaded.query("INSERT INTO probe (id, note) VALUES (4, 'taken')"));
    expect(errorFields(duplicate)).toMatchObject({ code: "23505", constraint: "probe_note_key", detail: "Key (note)=(taken) already exists." });
  });

  it("holds the one connection for a transaction: a statement from outside waits for its commit", async () => {
    const seen: string[] = [];
    let outside: Promise<unknown> | undefined;
    await threaded.transaction(async (tx) => {
      await tx.query("INSERT INTO probe (id, note) VALUES (10, 'in tx')");
      outside = threaded.query<{ n: number }>("SELECT count(*)::int AS n FROM probe WHERE id = 10").then((rows) => seen.push(`outside saw ${rows[0]!.n}`));
      await tx.query("SELECT pg_sleep(0.05)");
      seen.push("tx done");
    });
    await outside;
    expect(seen).toEqual(["tx done", "outside saw 1"]);
  });

  it("rolls a failed transaction back whole and reports its error; the connection is usable after", async () => {
    const err = await failure(() =>
      threaded.transaction(async (tx) => {
        await tx.query("INSERT INTO probe (id) VALUES (20)");
        await tx.exec("INSERT INTO probe (id) VALUES (21); INSERT INTO probe (id) VALUES (21)");
      }),
    );
    expect(errorFields(err)).toMatchObject({ code: "23505", constraint: "probe_pkey" });
    await expect(threaded.transaction(() => Promise.reject(new Error("undo")))).rejects.toThrow("undo");
    expect(await threaded.query("SELECT id FROM probe WHERE id IN (20, 21)")).toEqual([]);
    await threaded.connection((conn) => conn.transaction((tx) => tx.query("INSERT INTO probe (id) VALUES (22)")));
    expect(await threaded.query("SELECT id FROM probe WHERE id = 22")).toEqual([{ id: 22 }]);
  });

  it("delivers NOTIFY to a listener until it stops listening", async () => {
    const payloads: string[] = [];
    let heard: () => void = () => {};
    const first = new Promise<void>((resolve) => (heard = resolve));
    const stop = await threaded.listen("probe_wake", (payload) => {
      payloads.push(payload);
      heard();
    });
    await threaded.query("SELECT pg_notify('probe_wake', 'one')");
    await first;
    await stop();
    await threaded.query("SELECT pg_notify('probe_wake', 'two')");
    await threaded.ping();
    expect(payloads).toEqual(["one"]);
  });
});

describe("PGlite in a worker thread, in a data directory", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-pglite-thread-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps DATA_DIR locked by this process, and its data is PGlite's on this thread after close", async () => {
    const database = await openDatabase({ dataDir: dir, pgliteThread: true });
    try {
      await expect(openDatabase({ dataDir: dir, pgliteThread: false })).rejects.toBeInstanceOf(DataDirInUseError);
      await database.exec("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)");
    } finally {
      await database.close();
    }
    await expect(database.query("SELECT 1")).rejects.toThrow("closed");
    const reopened = await openDatabase({ dataDir: dir, pgliteThread: false });
    try {
      expect(await reopened.query("SELECT x FROM kept")).toEqual([{ x: 7 }]);
    } finally {
      await reopened.close();
    }
  }, OPEN_TIMEOUT);
});

describe("HERALD_PGLITE_THREAD", () => {
  it("refuses a value other than 1 or 0, naming the variable, instead of silently picking a mode", async () => {
    const before = process.env.HERALD_PGLITE_THREAD;
    process.env.HERALD_PGLITE_THREAD = "true";
    try {
      await expect(openDatabase({ dataDir: "memory://" })).rejects.toThrow(/HERALD_PGLITE_THREAD: must be 1 or 0 \(got "true"\)/);
    } finally {
      if (before === undefined) delete process.env.HERALD_PGLITE_THREAD;
      else process.env.HERALD_PGLITE_THREAD = before;
    }
  });
});
