/**
 * `openDatabase()` gives the same `Database` over a PostgreSQL pool (when a
 * URL is given) or over embedded PGlite persisted in a directory. Domain code
 * uses `db` (Drizzle) for ordinary queries and `query()` for the hand-written
 * SQL on hot paths; both behave the same on the two engines.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import pg from "pg";
import { type DataDirLock, lockDataDir, secureDataDir } from "./data-dir.js";
import * as schema from "./schema.js";

export type HeraldDb = PgDatabase<PgQueryResultHKT, typeof schema>;

/** The narrowest thing most SQL helpers need: run one parameterised statement. */
export interface Queryable {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface Database extends Queryable {
  readonly kind: "postgres" | "pglite";
  readonly db: HeraldDb;
  /** Runs `fn` in one transaction; `tx.query` shares it. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(script: string): Promise<void>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres:// URL; without it, embedded PGlite. */
  url?: string | undefined;
  /** Where PGlite keeps its files; `undefined` or "memory://" keeps it in memory. */
  dataDir?: string | undefined;
  /** PostgreSQL schema to use as search_path (tests get one each). */
  schema?: string | undefined;
  /** Pool size for PostgreSQL. */
  poolSize?: number;
  /** Called for errors on idle pooled connections (e.g. the server restarted). */
  onPoolError?: (err: Error) => void;
}

export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  return options.url ? openPostgres(options) : openPglite(options);
}

function openPostgres(options: OpenDatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 20,
    connectionTimeoutMillis: 5_000,
    ...(options.schema ? { options: `-c search_path=${quoteIdent(options.schema)}` } : {}),
  });
  // An idle client's error (server restart, network drop) must not crash the process.
  pool.on("error", (err) => options.onPoolError?.(err));
  const db = drizzlePg(pool, { schema }) as unknown as HeraldDb;
  const query = async <T>(text: string, params?: unknown[]) => (await pool.query(text, params as unknown[])).rows as T[];
  return {
    kind: "postgres",
    db,
    query,
    async transaction(fn) {
      const client = await pool.connect();
      // The pool listens for errors only on idle clients: a checked-out client whose
      // server goes away (restart, network drop) between two statements emits
      // 'error' with no listener, which would crash the process. Keep it, and
      // destroy the client instead of returning it to the pool.
      let broken: Error | undefined;
      const onError = (err: Error) => {
        broken = err;
        options.onPoolError?.(err);
      };
      client.on("error", onError);
      try {
        await client.query("BEGIN");
        const result = await fn({
          query: async <T>(text: string, params?: unknown[]) => (await client.query(text, params as unknown[])).rows as T[],
        });
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        client.off("error", onError);
        client.release(broken);
      }
    },
    async exec(script) {
      await pool.query(script);
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      await pool.end();
    },
  };
}

async function openPglite(options: OpenDatabaseOptions): Promise<Database> {
  let lock: DataDirLock | undefined;
  let client: PGlite;
  if (options.dataDir && options.dataDir !== "memory://") {
    // Two processes on one PGlite directory corrupt it: take DATA_DIR first, or refuse.
    lock = await lockDataDir(options.dataDir);
    try {
      const pgdata = path.join(lock.dir, "pgdata");
      mkdirSync(pgdata, { recursive: true, mode: 0o700 });
      client = await PGlite.create(pgdata);
      secureDataDir(lock.dir);
    } catch (err) {
      await lock.release();
      throw err;
    }
  } else {
    client = await PGlite.create("memory://");
  }
  const db = drizzlePglite(client, { schema }) as unknown as HeraldDb;
  let closed = false;
  return {
    kind: "pglite",
    db,
    async query<T>(text: string, params?: unknown[]) {
      return (await client.query<T>(text, params)).rows;
    },
    async transaction(fn) {
      return client.transaction((tx) =>
        fn({ query: async <T>(text: string, params?: unknown[]) => (await tx.query<T>(text, params)).rows }),
      );
    },
    async exec(script) {
      await client.exec(script);
    },
    async ping() {
      await client.query("SELECT 1");
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        await lock?.release();
      }
    },
  };
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
