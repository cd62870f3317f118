/**
 * The embedded database with PGlite in a worker thread (pglite-worker.ts):
 * the same `Database` as in-thread PGlite, whose synchronous WebAssembly
 * queries stopped the main thread's event loop for their whole duration.
 * Rows, parameters and errors cross the boundary by structured clone, which
 * keeps what PGlite returns (Date, bigint, Uint8Array, JSON objects, arrays);
 * errors are rebuilt with their PostgreSQL fields (`code`, `constraint`...).
 * A worker that dies fails every call as a lost connection does (see
 * workerLost) and is reported once to `onLost`: nothing restarts it.
 */
import { Worker } from "node:worker_threads";
import type { Connection, Database, Session } from "./database.js";
import { type ObjectParam, type PgliteReady, type PgliteReply, type PgliteRequest, type PgliteWorkerData, reviveError } from "./pglite-protocol.js";

/** A request as the caller writes it: the thread client numbers it. */
type Call = PgliteRequest extends infer R ? (R extends PgliteRequest ? Omit<R, "id"> : never) : never;

/** Where a threaded database keeps its worker (see pgliteWorkerOf); copied with the database by a spread. */
const WORKER = Symbol("herald.pgliteWorker");

/**
 * The worker thread of a database that openPgliteThread opened, else
 * undefined. Tests end it (`terminate()`) to see what a dead worker does to
 * Herald; nothing else should touch it.
 */
export function pgliteWorkerOf(database: object): Worker | undefined {
  return (database as { [WORKER]?: Worker })[WORKER];
}

interface Pending {
  resolve(rows: unknown[] | undefined): void;
  reject(err: Error): void;
}

export interface PgliteThreadOptions {
  /** Called once if the worker exits or fails while the database is open (not by close()); every call fails from then on. */
  onLost?: ((err: Error) => void) | undefined;
}

/** Starts the worker on `dataDir` (locked by the caller, or "memory://") and resolves once PGlite is open. */
export async function openPgliteThread(dataDir: string, image?: Blob, options: PgliteThreadOptions = {}): Promise<Database> {
  const worker = startWorker({ dataDir, image });
  const pending = new Map<number, Pending>();
  const listeners = new Map<number, (payload: string) => void>();
  let nextId = 1;
  let outbox: PgliteRequest[] = [];
  /** Set once the worker is gone: every later call fails with it. */
  let gone: Error | undefined;
  /** Set when the worker ended without close() (Database.lost). */
  let lostWith: Error | undefined;
  let closing: Promise<void> | undefined;

  // Only our own listeners come off: the Worker keeps internal ones of its own (removeAllListeners() broke messaging).
  let stopWaiting = () => {};
  const ready = await new Promise<PgliteReady>((resolve, reject) => {
    const exited = (code: number) => reject(new Error(`the PGlite worker exited (code ${code}) before it opened the database`));
    worker.once("message", resolve).once("error", reject).once("exit", exited);
    stopWaiting = () => worker.off("message", resolve).off("error", reject).off("exit", exited);
  }).finally(() => stopWaiting());
  if (!ready.ready) {
    // The worker rethrows after it reports the failure: that 'error' event may come while it is
    // terminated, and with no listener it would be an uncaught exception instead of this rejection.
    worker.on("error", () => undefined);
    await worker.terminate();
    throw reviveError(ready.error);
  }

  const lose = (err: Error) => {
    gone ??= err;
    for (const p of pending.values()) p.reject(gone);
    pending.clear();
  };
  /** The worker ended without close(): told once (close() sets `gone` before it terminates the worker). */
  const lost = (err: Error) => {
    if (gone) return;
    lostWith = err;
    lose(err);
    options.onLost?.(err);
  };
  worker.on("message", (replies: PgliteReply[]) => {
    for (const reply of replies) {
      if ("notify" in reply) {
        listeners.get(reply.notify)?.(reply.payload);
        continue;
      }
      const p = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.ok) p?.resolve(reply.rows);
      else p?.reject(reviveError(reply.error));
    }
    // Like in-thread PGlite, an idle database does not keep the process alive.
    if (pending.size === 0) worker.unref();
  });
  worker.on("error", (err) => lost(workerLost(`the PGlite worker failed: ${err.message}`, err)));
  worker.on("exit", (code) => lost(workerLost(`the PGlite worker exited (code ${code})`)));
  worker.unref();

  const flush = () => {
    const batch = outbox;
    outbox = [];
    if (gone) return;
    try {
      worker.postMessage(batch);
    } catch {
      // A parameter structured clone refuses (a function, a symbol): thrown here, in a microtask, it
      // was an uncaught exception and left the whole batch unanswered. It fails its own statement.
      for (const request of batch) {
        try {
          worker.postMessage([request]);
        } catch (err) {
          pending.get(request.id)?.reject(err as Error);
          pending.delete(request.id);
        }
      }
      if (pending.size === 0) worker.unref();
    }
  };
  const call = (request: Call): Promise<unknown[] | undefined> => {
    if (gone) return Promise.reject(gone);
    const id = nextId++;
    outbox.push({ ...request, id } as PgliteRequest);
    if (outbox.length === 1) queueMicrotask(flush);
    if (pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  };

  const sessionIn = (tx: number | undefined): Session => ({
    query: async <T>(text: string, params?: unknown[]) => (await call({ op: "query", text, ...(params ? cloneable(params) : { params, objects: undefined }), tx })) as T[],
    async exec(script) {
      await call({ op: "exec", text: script, tx });
    },
  });
  const transaction = async <T>(fn: (tx: Session) => Promise<T>): Promise<T> => {
    const began = nextId;
    await call({ op: "begin" });
    let result: T;
    try {
      result = await fn(sessionIn(began));
    } catch (err) {
      await call({ op: "end", tx: began, commit: false }).catch(() => undefined);
      throw err;
    }
    await call({ op: "end", tx: began, commit: true });
    return result;
  };
  const session: Connection = { ...sessionIn(undefined), transaction };

  const database: Database = {
    kind: "pglite",
    query: session.query,
    exec: session.exec,
    transaction,
    // PGlite is one connection: session state is shared with every other caller.
    connection: (fn) => fn(session),
    openWriter: () => undefined,
    async listen(channel, onNotify) {
      const id = nextId;
      listeners.set(id, onNotify);
      try {
        await call({ op: "listen", channel });
      } catch (err) {
        listeners.delete(id);
        throw err;
      }
      return async () => {
        if (!listeners.delete(id) || gone) return;
        await call({ op: "unlisten", listen: id });
      };
    },
    async ping() {
      await session.query("SELECT 1");
    },
    lost: () => lostWith,
    close() {
      closing ??= (async () => {
        try {
          if (!gone) await call({ op: "close" });
        } finally {
          lose(new Error("the database is closed"));
          await worker.terminate();
        }
      })();
      return closing;
    },
  };
  return Object.assign(database, { [WORKER]: worker });
}

/**
 * The error of every call once the worker is gone. To its callers it is a
 * database server that went away, so it carries PostgreSQL's
 * connection_failure (08006): Herald answers 503 and the analytics ingest
 * keeps its events (isDatabaseUnavailable), instead of a 500 and events set
 * aside as if the database had refused them.
 */
function workerLost(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, { cause }), { code: "08006" });
}

/**
 * Under tsx or vitest this file is TypeScript and so is the worker's, which
 * Node cannot load alone (Node 20 does not hand the parent's `--import tsx`
 * hooks to the thread): the thread registers tsx first. Built into dist/, it
 * is plain JavaScript beside this file.
 */
function startWorker(data: PgliteWorkerData): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./pglite-worker.js", import.meta.url), { workerData: data });
  const tsx = import.meta.resolve("tsx/esm/api");
  const file = new URL("./pglite-worker.ts", import.meta.url).href;
  const source = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(file)}); });`;
  return new Worker(source, { eval: true, workerData: data });
}

/**
 * Parameters for the thread. Structured clone keeps plain data (Date, bigint,
 * Uint8Array, plain objects, arrays) but drops a class's prototype and
 * refuses functions, so any other object goes as the two forms PGlite's
 * serializers take from it here: its JSON (json, jsonb) and its string (text).
 */
function cloneable(params: unknown[]): { params: unknown[]; objects: number[] | undefined } {
  const objects = params.flatMap((p, i) => (isClassInstance(p) ? [i] : []));
  if (objects.length === 0) return { params, objects: undefined };
  return { params: params.map((p, i) => (objects.includes(i) ? ({ json: JSON.stringify(p) ?? "null", text: String(p) } satisfies ObjectParam) : p)), objects };
}

function isClassInstance(value: unknown): boolean {
  if (value === null || typeof value !== "object" || value instanceof Date || ArrayBuffer.isView(value) || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto !== Object.prototype && proto !== null;
}
