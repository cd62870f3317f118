/**
 * `openDatabase()` gives the same `Database` over a PostgreSQL pool (when a
 * URL is given) or over embedded PGlite persisted in a directory. Every query
 * in Herald is plain SQL sent through `query()` (one parameterised statement)
 * or `transaction()`; there is no ORM, and the tables are what
 * `migrations/*.sql` make them. Both engines behave the same through this
 * interface.
 */
import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { type DataDirLock, lockDataDir, pgdataOf, secureDataDir } from "./data-dir.js";
import { PgliteStatements } from "./pglite-statements.js";
import { openPgliteThread } from "./pglite-thread.js";

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
  /**
   * Calls `onNotify` for each NOTIFY on `channel` (LISTEN), from any session
   * of the database: a dedicated connection on PostgreSQL (re-opened after a
   * loss; notifications sent while it was down are lost, so listeners also
   * poll), PGlite's own. Resolves once listening; the function returned stops.
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * PostgreSQL only: connections of their own for one hot writer, so its
   * statements never wait for a pool slot behind other work, each opened
   * with `settings` as session settings (a custom `herald.*` a trigger
   * reads, synchronous_commit), and every statement prepared by name on
   * first use (parsed and planned once per connection). Idle connections
   * close after 10 s; all close with the database. Undefined on PGlite
   * (one connection: its settings would be every caller's) and absent on
   * wrappers that do not offer it: callers then use the database itself.
   */
  openWriter?(options: WriterOptions): Queryable | undefined;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  /**
   * Why the database is gone for good, else undefined: PGlite's worker thread
   * died (nothing restarts it). Absent where that cannot happen (PostgreSQL
   * reconnects; in-thread PGlite dies with the process).
   */
  lost?(): Error | undefined;
  close(): Promise<void>;
}

export interface WriterOptions {
  /** Connections (statements running at once). */
  connections: number;
  /** Session settings of each connection: name -> value (names of letters, digits, `_` and `.`). */
  settings?: Record<string, string>;
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
  /**
   * True runs PGlite in a worker thread, so its queries do not stop the event
   * loop; false on the calling thread. Unset: HERALD_PGLITE_THREAD (1 or 0),
   * else the default (PGLITE_THREAD_DEFAULT).
   */
  pgliteThread?: boolean | undefined;
  /**
   * PGlite in its worker thread only: called once if the worker dies (exits
   * or fails) while the database is open; every call fails from then on.
   */
  onLost?: ((err: Error) => void) | undefined;
  /**
   * PGlite only: a dump of a data directory (PGlite's `dumpDataDir()`) that a
   * new cluster is loaded from instead of running initdb; PGlite refuses it
   * where the data directory already holds a database. The PGlite test suite
   * starts every database from one migrated image (test/support/pglite-image.ts):
   * a load takes ~1 s where initdb takes ~2.5-4 s.
   */
  pgliteImage?: Blob | undefined;
}

export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  return options.url ? openPostgres(options) : openPglite(options);
}

/**
 * Session settings of every connection Herald opens to PostgreSQL. JIT off:
 * Herald's statements are short, and JIT compiled those whose estimate passed
 * jit_above_cost for longer than they ran: the dashboard's trends over
 * 10,000,000 events took p50 155-162 ms with it and 62-67 ms without
 * (bench/RESULTS.md, 2026-12-02), a sync batch ~0.8 s. A DATABASE_URL that
 * sets `options` itself replaces these (the URL's parameters win in pg).
 */
const SESSION_SETTINGS: Readonly<Record<string, string>> = { jit: "off" };

function openPostgres(options: OpenDatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 20,
    connectionTimeoutMillis: 5_000,
    options: startupOptions({ ...SESSION_SETTINGS, ...(options.schema ? { search_path: quoteIdent(options.schema) } : {}) }),
  });
  // An idle client's error (server restart, network drop) must not crash the process.
  pool.on("error", (err) => options.onPoolError?.(err));
  const endPool = endsFully(pool);
  const query = async <T>(text: string, params?: unknown[]) => (await pool.query(text, params as unknown[])).rows as T[];
  const writers: (() => Promise<void>)[] = [];
  let closed = false;
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
    listen: (channel, onNotify) => listenPostgres(options, channel, onNotify),
    openWriter(writer) {
      // After close no pool may be made: nothing would end it (callers fall back to query, which fails as closed).
      if (closed) return undefined;
      const own = new pg.Pool({
        connectionString: options.url,
        max: writer.connections,
        connectionTimeoutMillis: 5_000,
        options: startupOptions({ ...SESSION_SETTINGS, ...(options.schema ? { search_path: quoteIdent(options.schema) } : {}), ...writer.settings }),
      });
      own.on("error", (err) => options.onPoolError?.(err));
      writers.push(endsFully(own));
      return {
        query: async <T>(text: string, params?: unknown[]) => (await own.query({ name: statementName(text), text, values: params as unknown[] })).rows as T[],
      };
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      closed = true;
      await Promise.all([endPool(), ...writers.map((end) => end())]);
    },
  };
}

/**
 * `pool`'s end, resolving once every connection it opened is closed. pg's
 * Pool.end() resolves as soon as it has asked its idle clients to close,
 * before their sockets are: stop() returned with connections still open (the
 * soak counted them, and a DROP DATABASE right after broke them in the pool).
 * The pool emits "remove" once a client's connection has ended.
 */
function endsFully(pool: pg.Pool): () => Promise<void> {
  let open = 0;
  let allClosed: (() => void) | undefined;
  pool.on("connect", () => open++);
  pool.on("remove", () => {
    if (--open === 0) allClosed?.();
  });
  return async () => {
    await pool.end();
    if (open > 0)
      await new Promise<void>((resolve) => {
        allClosed = resolve;
      });
  };
}

/** `-c name=value` startup options; names are checked (they are not quoted), values escaped for the options string. */
function startupOptions(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([name, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) throw new Error(`invalid setting name ${JSON.stringify(name)}`);
      return `-c ${name}=${value.replace(/[\\ ]/g, (c) => `\\${c}`)}`;
    })
    .join(" ");
}

/** A prepared statement's name on a writer's connections: one per distinct text. */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `herald_w${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return name;
}

const RELISTEN_MS = 1000;

/** LISTEN on a connection of its own (outside the pool, which would recycle it), opened again after a loss. */
async function listenPostgres(options: OpenDatabaseOptions, channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  /** A reopen in flight: stop waits for it, and a connection it opens after stop is closed, not kept. */
  let reopening: Promise<void> | undefined;
  /** The connection `open` is LISTENing on: stop ends it rather than waiting on an answer that may never come. */
  let opening: pg.Client | undefined;
  const open = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: options.url, connectionTimeoutMillis: 5_000 });
    c.on("notification", (msg) => {
      if (msg.channel === channel) onNotify(msg.payload ?? "");
    });
    c.on("error", (err) => {
      options.onPoolError?.(err);
      if (client === c) reopen();
    });
    try {
      await c.connect(); // bounded by connectionTimeoutMillis (pg's end() during connect would leave it pending forever)
      if (stopped) {
        await c.end().catch(() => undefined);
        return;
      }
      opening = c;
      await c.query(`LISTEN ${quoteIdent(channel)}`);
    } catch (err) {
      await c.end().catch(() => undefined);
      if (stopped) return; // cut by stop: not a failure to report or retry
      throw err;
    } finally {
      if (opening === c) opening = undefined;
    }
    if (stopped) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
  };
  const reopen = () => {
    const lost = client;
    client = undefined;
    void lost?.end().catch(() => undefined);
    if (stopped || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      if (stopped) return;
      reopening = open()
        .catch((err: unknown) => {
          options.onPoolError?.(err as Error);
          reopen();
        })
        .finally(() => {
          reopening = undefined;
        });
    }, RELISTEN_MS);
    retry.unref();
  };
  await open();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    // A LISTEN unanswered (a stalled network path) would hold stop until TCP gives up: pg's end()
    // with a query active destroys the socket, the LISTEN fails and the reopen ends.
    void opening?.end().catch(() => undefined);
    await reopening;
    const c = client;
    client = undefined;
    await c?.end().catch(() => undefined);
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

/**
 * Where PGlite runs when neither the option nor HERALD_PGLITE_THREAD (1 or 0) says: its own
 * thread. On the main thread each query stops the event loop, so near its peak rate every
 * stall queues all requests: offered 0.25 of the bare relay, p99 1.4-2.4 s in-thread against
 * 0.2-0.24 s threaded, at the same closed-load throughput (bench/RESULTS.md, 2026-12-02).
 */
const PGLITE_THREAD_DEFAULT = true;
const PGLITE_THREAD_BY_ENV: Record<string, boolean> = { "1": true, "0": false };

function pgliteThreadFromEnv(): boolean | undefined {
  const value = process.env.HERALD_PGLITE_THREAD;
  if (value === undefined || value === "") return undefined;
  const threaded = PGLITE_THREAD_BY_ENV[value];
  // A typo must not silently pick the other mode (README: a bad value stops the process).
  if (threaded === undefined) throw new Error(`Invalid environment variable HERALD_PGLITE_THREAD: must be 1 or 0 (got "${value}")`);
  return threaded;
}

async function openPglite(options: OpenDatabaseOptions): Promise<Database> {
  let lock: DataDirLock | undefined;
  let dataDir = "memory://";
  if (options.dataDir && options.dataDir !== "memory://") {
    // Two processes on one PGlite directory corrupt it: take DATA_DIR first, or refuse.
    lock = await lockDataDir(options.dataDir);
    dataDir = pgdataOf(lock.dir);
  }
  try {
    if (lock) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const threaded = options.pgliteThread ?? pgliteThreadFromEnv() ?? PGLITE_THREAD_DEFAULT;
    const image = options.pgliteImage;
    const database = threaded ? await openPgliteThread(dataDir, image, { onLost: options.onLost }) : await openPgliteInThread(dataDir, image);
    if (lock) secureDataDir(lock.dir);
    const release = lock?.release;
    if (!release) return database;
    let released: Promise<void> | undefined;
    return {
      ...database,
      close: () => {
        released ??= database.close().finally(release);
        return released;
      },
    };
  } catch (err) {
    await lock?.release();
    throw err;
  }
}

/** PGlite on this thread: each query blocks the event loop while it runs. */
async function openPgliteInThread(dataDir: string, image?: Blob): Promise<Database> {
  const client = await PGlite.create(dataDir, image ? { loadDataDir: image } : {});
  const statements = new PgliteStatements(client);
  let closed = false;
  const transaction = <T>(fn: (tx: Session) => Promise<T>): Promise<T> =>
    client.transaction((tx) =>
      fn({
        query: <R>(text: string, params?: unknown[]) => statements.queryIn<R>(tx, text, params),
        async exec(script) {
          await tx.exec(script);
        },
      }),
    );
  const session: Connection = {
    query: <T>(text: string, params?: unknown[]) => statements.query<T>(text, params),
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
    openWriter: () => undefined,
    async listen(channel, onNotify) {
      const stop = await client.listen(channel, onNotify);
      return async () => {
        if (!closed) await stop();
      };
    },
    async ping() {
      await client.query("SELECT 1");
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
