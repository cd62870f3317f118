/**
 * Named prepared statements on PGlite. PGlite's query() sends every statement
 * as a new unnamed one: Parse, Describe, Bind (which plans), Describe,
 * Execute, Sync. For a warm single creation on the embedded default that was
 * 0.8 ms of Parse and 0.7 ms of Bind around 2.3 ms of Execute
 * (bench/trace-pglite.ts), on the thread that also serves every request.
 *
 * A parameterized text run a second time is prepared once under a name;
 * later runs send Bind, Describe, Execute and Sync only, and PostgreSQL's
 * plan cache keeps a generic plan once it is no worse than the custom ones.
 * At most MAX_PREPARED texts are prepared, first come first served; the
 * rest run as before. The messages are those PGlite's own query() sends
 * (under the same mutexes, with its parameter serializers and result
 * parsers, and the file sync outside a transaction), with the statement
 * named; `_runExclusiveTransaction` and `_runExclusiveQuery` are PGlite's
 * typed internals for exactly that.
 *
 * A prepared statement's plan may become generic (PostgreSQL's choice after
 * five custom plans), and a generic plan is kept until the statistics of a
 * table it reads change. PGlite runs no autovacuum, so nothing would ever
 * change them: a join planned as a sequential scan while `notifications`
 * was empty stayed one at 300,000 rows (20 acks marked in 100+ ms instead
 * of under 1). So, at most every STATISTICS_CHECK_MS, the tables that grew
 * by half since their last ANALYZE are analyzed, which also drops the plans
 * made before: sizes grow geometrically, so that is a few dozen ANALYZEs
 * over a table's life. Each samples STATISTICS_TARGET x 300 rows (6,000)
 * rather than the default 30,000: an ANALYZE holds PGlite's one connection,
 * and at the default one of `notifications` (60,000 rows) held it 180-250 ms,
 * the worst stall of the embedded create-to-deliver under load; 46 ms at 30,
 * 16 at 10 (bench/RESULTS.md, 2026-12-02).
 * Plans need the sizes and a coarse distribution, which 20 buckets give.
 */
import { performance } from "node:perf_hooks";
import { type PGlite, type Transaction, parse, protocol } from "@electric-sql/pglite";

/** Texts prepared per PGlite instance, at most. */
const MAX_PREPARED = 64;
/** At most this often (ms) the tables' growth is checked, from a prepared statement's run. */
const STATISTICS_CHECK_MS = 10_000;
/**
 * The tables of the current schema grown by half (in pages) since their last
 * ANALYZE, or never analyzed and at least 4 pages (smaller ones are planned
 * right from any statistics).
 */
const GROWN_TABLES = `
SELECT c.oid::regclass::text AS name
  FROM pg_class c
 WHERE c.relkind = 'r' AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
   AND pg_relation_size(c.oid) / current_setting('block_size')::int >= GREATEST(4, c.relpages * 1.5)
 ORDER BY 1`;

/** default_statistics_target of the refresh's ANALYZEs (PostgreSQL's default is 100); see the header. */
const STATISTICS_TARGET = 20;

/** Texts seen once, remembered at most: past it the tally starts over (ad-hoc texts must not grow it without end). */
const MAX_SEEN_ONCE = 1_000;

interface Statement {
  name: string;
  /** Parameter type ids, once described. */
  types?: number[];
}

type BackendMessage = Parameters<typeof parse.parseResults>[0][number];

export class PgliteStatements {
  private readonly runs = new Map<string, number>();
  private readonly prepared = new Map<string, Statement>();
  private named = 0;
  private statisticsCheckedAt = Number.NEGATIVE_INFINITY;
  /** The statistics refresh running now, if any (tests await it). */
  refreshing: Promise<string[]> | undefined;

  constructor(
    private readonly client: PGlite,
    private readonly statisticsCheckMs = STATISTICS_CHECK_MS,
  ) {}

  /** Analyzes the tables grown since their last ANALYZE (GROWN_TABLES); returns their names. */
  async refreshStatistics(): Promise<string[]> {
    const grown = (await this.queryIfOpen<{ name: string }>(GROWN_TABLES)).map((r) => r.name);
    // One table per statement: requests waiting for PGlite go between them.
    // One implicit transaction per string: SET LOCAL ends with it, an error too.
    for (const name of grown) await this.queryIfOpen(`SET LOCAL default_statistics_target = ${STATISTICS_TARGET}; ANALYZE ${name}`);
    return grown;
  }

  /**
   * `text` (no parameters) as PGlite's query() runs it, unless close() has begun. query()
   * checks that before waiting for the mutexes, so a refresh queued behind close() (started
   * from a transaction that close() waits for) would run on a closed backend; close() marks
   * itself closing while it holds both mutexes, so the check under them is exact.
   */
  private queryIfOpen<T>(text: string): Promise<T[]> {
    return this.client._runExclusiveTransaction(() =>
      this.client._runExclusiveQuery(async () => {
        if (!this.client.ready) throw new Error("PGlite is closing");
        const messages = await this.send(protocol.serialize.query(text));
        await this.client.syncToFs();
        return (parse.parseResults(messages, this.client.parsers)[0]?.rows ?? []) as T[];
      }),
    );
  }

  /** Starts a refresh in the background when the last check is old enough. */
  private checkStatistics(): void {
    const now = performance.now();
    if (this.refreshing || now - this.statisticsCheckedAt < this.statisticsCheckMs) return;
    this.statisticsCheckedAt = now;
    // Only a plan's quality is at stake: a failure (PGlite closed meanwhile) waits for the next check.
    this.refreshing = this.refreshStatistics()
      .catch(() => [])
      .finally(() => {
        this.refreshing = undefined;
      });
  }

  /** A statement outside any transaction: it waits for an open one, as PGlite's query() does. */
  async query<T>(text: string, params?: unknown[]): Promise<T[]> {
    const statement = this.statementFor(text, params);
    if (!statement) return (await this.client.query<T>(text, params)).rows;
    await this.client._checkReady(); // "PGlite is closed" after close, as query() says, not a TypeError from inside
    return this.client._runExclusiveTransaction(() => this.client._runExclusiveQuery(() => this.run<T>(statement, text, params!, true)));
  }

  /** A statement inside the transaction `tx` (the caller holds it). */
  async queryIn<T>(tx: Transaction, text: string, params?: unknown[]): Promise<T[]> {
    // As tx.query: a handle kept past its commit must not run outside (or inside another caller's) transaction.
    if (tx.closed) throw new Error("Transaction is closed");
    const statement = this.statementFor(text, params);
    if (!statement) return (await tx.query<T>(text, params)).rows;
    return this.client._runExclusiveQuery(() => this.run<T>(statement, text, params!, false));
  }

  /** The named statement for `text`, from its second run on, while there is room. */
  private statementFor(text: string, params?: unknown[]): Statement | undefined {
    if (!params || params.length === 0) return undefined;
    const known = this.prepared.get(text);
    if (known) {
      this.checkStatistics();
      return known;
    }
    if (this.prepared.size >= MAX_PREPARED) {
      this.runs.clear();
      return undefined;
    }
    const runs = (this.runs.get(text) ?? 0) + 1;
    if (runs < 2) {
      if (this.runs.size >= MAX_SEEN_ONCE) this.runs.clear();
      this.runs.set(text, runs);
      return undefined;
    }
    this.runs.delete(text);
    const statement = { name: `herald_${++this.named}` };
    this.prepared.set(text, statement);
    return statement;
  }

  private async run<T>(statement: Statement, text: string, params: unknown[], syncToFs: boolean): Promise<T[]> {
    try {
      return await this.runOnce<T>(statement, text, params, syncToFs);
    } catch (err) {
      // A table's columns changed under a prepared `SELECT *` / `RETURNING *` (DDL after the
      // text was prepared): PostgreSQL refuses the cached plan, where an unnamed statement would
      // simply be planned anew. Forget the plan so the name is parsed afresh; outside a
      // transaction nothing ran, so run it again now (inside one, the transaction has failed).
      if (!(err instanceof protocol.messages.DatabaseError && err.code === "0A000" && /cached plan must not change result type/.test(err.message))) throw err;
      await this.send(protocol.serialize.close({ type: "S", name: statement.name })).catch(() => undefined);
      await this.send(protocol.serialize.sync());
      statement.types = undefined;
      if (!syncToFs) throw err;
      return await this.runOnce<T>(statement, text, params, syncToFs);
    }
  }

  private async send(message: Uint8Array): Promise<BackendMessage[]> {
    return (await this.client.execProtocol(message, { syncToFs: false })).messages as BackendMessage[];
  }

  private async runOnce<T>(statement: Statement, text: string, params: unknown[], syncToFs: boolean): Promise<T[]> {
    const { serialize } = protocol;
    const send = (message: Uint8Array) => this.send(message);
    const messages: BackendMessage[] = [];
    try {
      if (!statement.types) {
        await send(serialize.parse({ name: statement.name, text }));
        try {
          statement.types = parse.parseDescribeStatementResults(await send(serialize.describe({ type: "S", name: statement.name })));
        } catch (err) {
          // Parsed but not described: drop it, so the next run parses the name afresh.
          await send(serialize.close({ type: "S", name: statement.name })).catch(() => undefined);
          throw err;
        }
      }
      const types = statement.types;
      const values = params.map((value, i) => {
        if (value == null) return null;
        const serializer = this.client.serializers[types[i]!];
        return serializer ? serializer(value) : String(value);
      });
      messages.push(...(await send(serialize.bind({ statement: statement.name, values }))));
      messages.push(...(await send(serialize.describe({ type: "P" }))));
      messages.push(...(await send(serialize.execute({}))));
    } catch (err) {
      if (!statement.types) this.prepared.delete(text);
      // The failed statement and its parameters on the error, as PGlite's query() puts them.
      if (err instanceof protocol.messages.DatabaseError) Object.assign(err, { query: text, params, queryOptions: undefined });
      throw err;
    } finally {
      messages.push(...(await send(serialize.sync())));
    }
    if (syncToFs) await this.client.syncToFs();
    return (parse.parseResults(messages, this.client.parsers)[0]?.rows ?? []) as T[];
  }
}
