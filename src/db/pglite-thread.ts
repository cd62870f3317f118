/**
 * The embedded database with PGlite in a worker thread (pglite-worker.ts):
 * the same `Database` as in-thread PGlite, whose synchronous WebAssembly
 * queries stopped the main thread's event loop for their whole duration.
 * Rows, parameters and errors cross the boundary by structured clone, which
 * keeps what PGlite returns (Date, bigint, Uint8Array, JSON objects, arrays);
 * errors are rebuilt with their PostgreSQL fields (`code`, `constraint`...).
 */
import { Worker } from "node:worker_threads";
import type { Connection, Database, Session } from "./database.js";
import { type ObjectParam, type PgliteReady, type PgliteReply, type PgliteRequest, type PgliteWorkerData, reviveError } from "./pglite-protocol.js";

/** A request as the caller writes it: the thread client numbers it. */
type Call = PgliteRequest extends infer R ? (R extends PgliteRequest ? Omit<R, "id"> : never) : never;

interface Pending {
  resolve(rows: unknown[] | undefined): void;
  reject(err: Error): void;
}

/** Starts the worker on `dataDir` (locked by the caller, or "memory://") and resolves once PGlite is open. */
export async function openPgliteThread(dataDir: string, image?: Blob): Promise<Database> {
  const worker = startWorker({ dataDir, image });
  const pending = new Map<number, Pending>();
  const listeners = new Map<number, (payload: string) => void>();
  let nextId = 1;
  let outbox: PgliteRequest[] = [];
  /** Set once the worker is gone: every later call fails with it. */
  let gone: Error | undefined;
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
  worker.on("error", lose);
  worker.on("exit", (code) => lose(new Error(`the PGlite worker exited (code ${code})`)));
  worker.unref();

  const flush = () => {
    const batch = outbox;
    outbox = [];
    if (!gone) worker.postMessage(batch);
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

  return {
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
