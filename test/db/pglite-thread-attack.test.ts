/**
 * PGlite in its worker thread (the embedded default since b0c1602), attacked
 * where the thread boundary could change what Herald sees: the values Herald
 * really sends (unnest arrays of ids, ISO timestamps and JSON text, 1 MB
 * fields, NUL characters), a parameter structured clone refuses, the order of
 * one caller's statements and of NOTIFY, the group commit over it, and the
 * worker dying under waiting callers. PGlite only, whatever DATABASE_URL says.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, GroupCommit, openDatabase } from "../../src/db/index.js";
import { pgliteWorkerOf } from "../../src/db/pglite-thread.js";
import { isDatabaseUnavailable, isUnstorableText } from "../../src/errors/index.js";
import { loadConfig } from "../../src/config/index.js";
import { createHerald } from "../../src/herald.js";
import { createRuntime } from "../../src/runtime.js";
import { within } from "../support/within.js";

/** Opening PGlite compiles its WebAssembly: slow on a loaded machine, two at once slower. */
const OPEN_TIMEOUT = 180_000;

const SCHEMA = `
  CREATE TABLE events (notification_id uuid, user_id text, event_type text, ts timestamptz, metadata jsonb, channel text);
  CREATE TABLE docs (id int PRIMARY KEY, body text, data jsonb, raw bytea);
  CREATE TABLE o (seq serial, k int UNIQUE);`;

/** The analytics ingest's statement (src/analytics/sql.ts INSERT_EVENTS), without the xid column. */
const INSERT_EVENTS = `
INSERT INTO events SELECT t.* FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[], $6::text[])
  AS t(notification_id, user_id, event_type, ts, metadata, channel) RETURNING *`;

async function failure(run: () => Promise<unknown>): Promise<Record<string, unknown>> {
  return run().then(
    () => expect.fail("expected the statement to fail"),
    (err: unknown) => err as Record<string, unknown>,
  );
}


describe("PGlite in a worker thread: what Herald sends across, against PGlite on this thread", () => {
  let threaded: Database;
  let inThread: Database;
  const both = () => [threaded, inThread] as const;
  beforeAll(async () => {
    [threaded, inThread] = await Promise.all([openDatabase({ pgliteThread: true }), openDatabase({ pgliteThread: false })]);
    await Promise.all(both().map((db) => db.exec(SCHEMA)));
  }, OPEN_TIMEOUT);
  afterAll(async () => {
    await Promise.all([threaded?.close(), inThread?.close()]);
  });

  it("stores and reads back the ingest's unnest arrays (uuid, text, ISO timestamps, JSON text, nulls) the same", async () => {
    const params = [
      ["6f1c2b9e-1d2a-4c3b-9e8f-0a1b2c3d4e5f", "00000000-0000-4000-8000-000000000000"],
      ["user-ü", "u2"],
      ["sent", "clicked"],
      ["2026-12-02T11:17:45.123Z", new Date("2026-01-01T00:00:00.001Z").toISOString()],
      ['{"a": {"b": [1, "x", null, {"c": true}]}, "big": 9007199254740993}', null],
      ["email", null],
    ];
    const [a, b] = await Promise.all(both().map((db) => db.query(INSERT_EVENTS, params)));
    expect(a).toEqual(b);
    expect(a![0]).toMatchObject({ ts: new Date("2026-12-02T11:17:45.123Z"), metadata: { a: { b: [1, "x", null, { c: true }] } }, channel: "email" });
  });

  it("carries a 1 MB text, a 1 MB jsonb document and bytes from a Uint8Array the same", async () => {
    const body = "é".repeat(512 * 1024);
    const data = JSON.stringify({ text: "x".repeat(1024 * 1024), list: Array.from({ length: 1000 }, (_, i) => ({ i })) });
    const raw = new Uint8Array(256).map((_, i) => i);
    const text = "INSERT INTO docs VALUES ($1, $2, $3::text::jsonb, $4) RETURNING id, length(body) AS chars, length(data->>'text') AS data_chars, raw";
    const [a, b] = await Promise.all(both().map((db) => db.query(text, [1, body, data, raw])));
    expect(a).toEqual(b);
    expect(a).toEqual([{ id: 1, chars: body.length, data_chars: 1024 * 1024, raw }]);
    const [read] = await threaded.query<{ body: string; data: { list: unknown[] } }>("SELECT body, data FROM docs WHERE id = 1");
    expect(read!.body).toBe(body);
    expect(read!.data.list).toHaveLength(1000);
  });

  it("refuses a NUL character in text (22021) and in jsonb (22P05) with the error PGlite gives on this thread, which Herald answers 400, and keeps serving", async () => {
    const refusals: [string, unknown[]][] = [
      ["INSERT INTO docs (id, body) VALUES ($1, $2)", [2, "a\u0000b"]],
      ["INSERT INTO docs (id, data) VALUES ($1, $2::text::jsonb)", [3, JSON.stringify({ k: "a\u0000b" })]],
      ["INSERT INTO docs (id, data) VALUES ($1, $2)", [4, { k: "a\u0000b" }]],
      ["INSERT INTO events (user_id) SELECT * FROM unnest($1::text[])", [["ok", "a\u0000b"]]],
    ];
    for (const [text, params] of refusals) {
      const [a, b] = [await failure(() => threaded.query(text, params)), await failure(() => inThread.query(text, params))];
      expect({ message: a.message, code: a.code }, text).toEqual({ message: b.message, code: b.code });
      expect(isUnstorableText(a), text).toBe(true);
    }
    expect(await threaded.query("SELECT count(*)::int AS n FROM docs WHERE id IN (2, 3, 4)")).toEqual([{ n: 0 }]);
  });

  it("fails only the statement whose parameter structured clone refuses (a function), not the process nor the statements sent with it", async () => {
    // Sent in one turn: they travel to the worker in one message.
    const sent = [threaded.query("SELECT 1 AS before"), threaded.query("SELECT $1::text AS f", [() => 1]), threaded.query("SELECT 2 AS after")];
    const settled = await within(Promise.allSettled(sent), 10_000, "the batch with an uncloneable parameter");
    expect(settled[0]).toEqual({ status: "fulfilled", value: [{ before: 1 }] });
    expect(settled[1]).toMatchObject({ status: "rejected", reason: { name: "DataCloneError" } });
    expect(settled[2]).toEqual({ status: "fulfilled", value: [{ after: 2 }] });
    await expect(threaded.query("SELECT 3 AS still")).resolves.toEqual([{ still: 3 }]);
  });

  it("runs one caller's statements in call order without awaiting them, and NOTIFY reaches a listener before its transaction resolves, as on this thread", async () => {
    const observed = await Promise.all(
      both().map(async (db) => {
        const calls: Promise<unknown>[] = [];
        // Fresh texts, a text prepared on its second run, and scripts, interleaved.
        for (let k = 0; k < 150; k++) {
          if (k % 3 === 0) calls.push(db.query(`INSERT INTO o (k) VALUES ($1) -- ${k}`, [k]));
          else if (k % 3 === 1) calls.push(db.query("INSERT INTO o (k) VALUES ($1)", [k]));
          else calls.push(db.exec(`INSERT INTO o (k) VALUES (${k})`));
        }
        await Promise.all(calls);
        const order = (await db.query<{ k: number }>("SELECT k FROM o ORDER BY seq")).map((r) => r.k);
        const seen: string[] = [];
        const stop = await db.listen("attack_wake", (payload) => seen.push(`notify ${payload}`));
        await db.transaction(async (tx) => {
          await tx.query("SELECT pg_notify('attack_wake', 'in tx')");
          seen.push("fn done");
        });
        seen.push("committed");
        await db.query("SELECT pg_notify('attack_wake', 'alone')");
        seen.push("query done");
        await stop();
        return { order, seen };
      }),
    );
    expect(observed[0]).toEqual(observed[1]);
    expect(observed[0]!.order).toEqual(Array.from({ length: 150 }, (_, k) => k));
    expect(observed[0]!.seen).toEqual(["fn done", "notify in tx", "committed", "notify alone", "query done"]);
  });

  it("a group commit over it answers each creation with its own row, and a refused item alone", async () => {
    const commits = new GroupCommit<number, number>(
      async (ks) => {
        // One statement per batch, like the creation path: a refused batch is retried one by one.
        try {
          const rows = await threaded.query<{ k: number; seq: number }>("INSERT INTO o (k) SELECT * FROM unnest($1::int[]) RETURNING k, seq", [ks]);
          return rows.map((r) => ({ status: "fulfilled", value: r.seq }));
        } catch {
          return Promise.allSettled(ks.map(async (k) => (await threaded.query<{ seq: number }>("INSERT INTO o (k) VALUES ($1) RETURNING seq", [k]))[0]!.seq));
        }
      },
      { collectTurn: true },
    );
    const ks = [1000, 1001, 1002, 1, 1003];
    const settled = await within(Promise.allSettled(ks.map((k) => commits.submit(k))), 10_000, "the group commit");
    expect(settled.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({ code: "23505" });
    const seqs = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
  });
});

describe("when the PGlite worker dies", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-pglite-attack-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    "fails every waiting and later call at once as 'database unavailable', tells onLost once, and close() releases DATA_DIR with the committed rows kept",
    async () => {
      const dataDir = path.join(dir, "death");
      const lost: Error[] = [];
      const db = await openDatabase({ dataDir, pgliteThread: true, onLost: (err) => lost.push(err) });
      await db.exec("CREATE TABLE kept (x int); INSERT INTO kept VALUES (1)");
      const heard: string[] = [];
      const stopListening = await db.listen("attack_dead", (p) => heard.push(p));
      // A transaction holds the one connection, so a statement from outside waits in the worker behind it.
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      let inTx: () => void = () => {};
      const began = new Promise<void>((resolve) => (inTx = resolve));
      const transaction = db.transaction(async (tx) => {
        await tx.query("INSERT INTO kept VALUES (2)");
        inTx();
        await held;
        await tx.query("INSERT INTO kept VALUES (3)");
      });
      await began;
      const waiting = db.query("SELECT count(*) FROM kept");
      const worker = pgliteWorkerOf(db);
      expect(worker).toBeDefined();
      await worker!.terminate();

      const err = await failure(() => within(waiting, 5_000, "the statement waiting behind the transaction"));
      expect(err.message).toMatch(/PGlite worker exited/);
      // Herald answers 503 (src/http/problem.ts) and the analytics ingest keeps its events for the next flush, instead of a 500 and events set aside as refused.
      expect(isDatabaseUnavailable(err)).toBe(true);
      release();
      await expect(within(transaction, 5_000, "the transaction")).rejects.toThrow(/PGlite worker exited/);
      await expect(within(db.ping(), 5_000, "ping")).rejects.toThrow(/PGlite worker exited/);
      await expect(within(db.query("SELECT 1"), 5_000, "a later query")).rejects.toThrow(/PGlite worker exited/);
      await within(stopListening(), 5_000, "unlisten");
      expect(lost).toHaveLength(1);
      expect(lost[0]!.message).toMatch(/PGlite worker exited/);

      await within(db.close(), 5_000, "close");
      expect(lost).toHaveLength(1);
      const reopened = await openDatabase({ dataDir, pgliteThread: true });
      try {
        expect(await reopened.query("SELECT x FROM kept ORDER BY x")).toEqual([{ x: 1 }]);
      } finally {
        await reopened.close();
      }
      expect(heard).toEqual([]);
    },
    OPEN_TIMEOUT,
  );

  it(
    "close() is not a loss: onLost is not called",
    async () => {
      const lost: Error[] = [];
      const db = await openDatabase({ pgliteThread: true, onLost: (err) => lost.push(err) });
      await db.query("SELECT 1");
      await db.close();
      await expect(db.query("SELECT 1")).rejects.toThrow("closed");
      expect(lost).toEqual([]);
    },
    OPEN_TIMEOUT,
  );

  it(
    "Herald's runtime logs the loss as an error, once",
    async () => {
      const lines: Record<string, unknown>[] = [];
      let logged: () => void = () => {};
      const errorLogged = new Promise<void>((resolve) => (logged = resolve));
      const logger = pino({ level: "warn" }, {
        write: (line: string) => {
          const entry = JSON.parse(line) as Record<string, unknown>;
          lines.push(entry);
          if (entry.level === 50) logged();
        },
      });
      const dataDir = path.join(dir, "runtime");
      const runtime = await createRuntime(loadConfig({ NODE_ENV: "test", DATA_DIR: dataDir, JWT_SECRET: "pglite-thread-attack-secret-0123456789abcdef", LOG_LEVEL: "warn" }), { logger });
      try {
        await pgliteWorkerOf(runtime.database)!.terminate();
        await within(errorLogged, 5_000, "the error log line");
        const errors = lines.filter((l) => l.level === 50);
        expect(errors).toHaveLength(1);
        expect(errors[0]).toMatchObject({ err: { message: expect.stringMatching(/PGlite worker exited/) } });
      } finally {
        await runtime.close();
      }
    },
    OPEN_TIMEOUT,
  );
});

describe("a Herald whose PGlite worker died", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "herald-pglite-lost-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    "answers /health 503 (a supervisor restarts it), tells onDatabaseLost once, and still stops",
    async () => {
      const losses: Error[] = [];
      let told: () => void = () => {};
      const lostTold = new Promise<void>((resolve) => (told = resolve));
      const config = loadConfig({ NODE_ENV: "test", DATA_DIR: path.join(dir, "herald"), JWT_SECRET: "pglite-thread-attack-secret-0123456789abcdef", LOG_LEVEL: "silent" });
      const herald = await createHerald({
        config,
        jobs: false,
        serveWeb: false,
        onDatabaseLost: (err) => {
          losses.push(err);
          told();
        },
      });
      try {
        const baseUrl = await herald.listen(0, "127.0.0.1");
        expect((await fetch(`${baseUrl}/health`)).status).toBe(200);
        expect(herald.runtime.databaseLost()).toBeUndefined();
        await pgliteWorkerOf(herald.runtime.database)!.terminate();
        await within(lostTold, 5_000, "onDatabaseLost");
        expect(losses).toHaveLength(1);
        expect(herald.runtime.databaseLost()).toBe(losses[0]);
        const health = await fetch(`${baseUrl}/health`);
        expect(health.status).toBe(503);
        expect(health.headers.get("content-type")).toContain("application/problem+json");
        expect((await fetch(`${baseUrl}/ready`)).status).toBe(503);
      } finally {
        await within(herald.stop(), 30_000, "herald.stop()");
      }
      expect(losses).toHaveLength(1);
    },
    OPEN_TIMEOUT,
  );
});
