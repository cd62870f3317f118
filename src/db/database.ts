/**
 * `openDatabase()` gives the same `Database` over a PostgreSQL pool (when a
 * URL is given) or over embedded PGlite persisted in a directory. Every query
 * in Herald is plain SQL sent through `query()` (one parameterised statement)
 * or `transaction()`; there is no ORM, and the tables are what
 * `migrations/*.sql` make them. Both engines behave the same through this
 * interface.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { type DataDirLock, lockDataDir, secureDataDir } from "./data-dir.js";

/** The narrowest thing most SQL helpers need: run one parameterised statement. */
export interface Queryable {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

/** A transaction, or one connection: statements, and scripts of several. */
export interface Session extends Queryable {
  /** Sends a script of several statements, without parameters, as one string (`$$` bodies included). */
  exec(script: string): Promise<void>;
}

/** One connection held for a while (see `Database.connection`). */
export interface Connection extends Session {
  /** Runs `fn` in one transaction on this connection. */
  transaction<T>(fn: (tx: Session) => Promise<T>): Promise<T>;
}

export interface Database extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** Runs `fn` in one transaction; `tx.query` shares it. */
  transaction<T>(fn: (tx: Session) => Promise<T>): Promise<T>;
  /** Runs a script of several statements, without parameters, in one round trip. */
  exec(script: string): Promise<void>;
  /**
   * Runs `fn` on one connection held until it settles, for session state
   * such as an advisory lock (the migrations): PostgreSQL takes a client
   * out of the pool for the duration; PGlite has only one connection.
   */
  connection<T>(fn: (conn: Connection) => Promise<T>): Promise<T>;
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
  const query = async <T>(text: string, params?: unknown[]) => (await pool.query(text, params as unknown[])).rows as T[];
  const withClient = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
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
      return await fn(client);
    } finally {
      client.off("error", onError);
      client.release(broken);
    }
  };
  return {
    kind: "postgres",
    query,
    transaction: (fn) => withClient((client) => clientTransaction(client, fn)),
    async exec(script) {
      await pool.query(script);
    },
    connection: (fn) =>
      withClient((client) => {
        const session = clientSession(client);
        return fn({ ...session, transaction: (inner) => clientTransaction(client, inner) });
      }),
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      await pool.end();
    },
  };
}

function clientSession(client: pg.ClientBase): Session {
  return {
    query: async <T>(text: string, params?: unknown[]) => (await client.query(text, params as unknown[])).rows as T[],
    async exec(script) {
      // No parameters: node-postgres sends the simple query protocol, which takes several statements.
      await client.query(script);
    },
  };
}

async function clientTransaction<T>(client: pg.ClientBase, fn: (tx: Session) => Promise<T>): Promise<T> {
  await client.query("BEGIN");
  try {
    const result = await fn(clientSession(client));
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
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
  let closed = false;
  const transaction = <T>(fn: (tx: Session) => Promise<T>): Promise<T> =>
    client.transaction((tx) =>
      fn({
        query: async <R>(text: string, params?: unknown[]) => (await tx.query<R>(text, params)).rows,
        async exec(script) {
          await tx.exec(script);
        },
      }),
    );
  const session: Connection = {
    async query<T>(text: string, params?: unknown[]) {
      return (await client.query<T>(text, params)).rows;
    },
    async exec(script) {
      await client.exec(script);
    },
    transaction,
  };
  return {
    kind: "pglite",
    query: session.query,
    transaction,
    exec: session.exec,
    // PGlite is one connection: session state is shared with every other caller.
    connection: (fn) => fn(session),
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
