/**
 * The messages between the main thread and the worker thread that owns
 * PGlite (pglite-thread.ts, pglite-worker.ts). Both sides send arrays: the
 * requests issued in one turn of the event loop travel in one message, and so
 * do the replies, so a burst of queries costs one wake-up of each thread.
 */

/** A parameter that was an instance of a class, which structured clone would strip: what PGlite reads from it. */
export interface ObjectParam {
  /** Its JSON.stringify(), for json and jsonb parameters. */
  json: string;
  /** Its String(), for the others. */
  text: string;
}

/** The parameter PGlite's serializers see as the original object: the same JSON, the same string. */
export function reviveObjectParam(p: ObjectParam): unknown {
  return { toJSON: () => JSON.parse(p.json), toString: () => p.text };
}

/** Settings the worker starts with (its workerData). */
export interface PgliteWorkerData {
  /** A directory already locked by the main thread, or "memory://". */
  dataDir: string;
  /** A dump of a data directory to start from (OpenDatabaseOptions.pgliteImage). */
  image?: Blob | undefined;
}

export type PgliteRequest =
  /**
   * `tx` runs the statement in that open transaction (the id of its "begin");
   * `objects` lists the params sent as an ObjectParam.
   */
  | { id: number; op: "query"; text: string; params: unknown[] | undefined; objects: number[] | undefined; tx: number | undefined }
  | { id: number; op: "exec"; text: string; tx: number | undefined }
  /** Replied once BEGIN ran: the transaction holds PGlite's one connection until its "end". */
  | { id: number; op: "begin" }
  | { id: number; op: "end"; tx: number; commit: boolean }
  /** Notifications come back as `{ notify: id }` until "unlisten" names the same id. */
  | { id: number; op: "listen"; channel: string }
  | { id: number; op: "unlisten"; listen: number }
  | { id: number; op: "close" };

export type PgliteReply =
  | { id: number; ok: true; rows?: unknown[] }
  | { id: number; ok: false; error: SerializedError }
  | { notify: number; payload: string };

/** The first message from the worker: PGlite is open, or why not. */
export type PgliteReady = { ready: true } | { ready: false; error: SerializedError };

/**
 * An error as it crosses the thread boundary: structured clone keeps only an
 * Error's message and stack, and callers read PostgreSQL's fields (`code`,
 * `constraint`, `detail`...) from it, so every own field that is plain data
 * travels beside them.
 */
export interface SerializedError {
  message: string;
  stack: string | undefined;
  fields: Record<string, unknown>;
}

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { message: String(err), stack: undefined, fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(err)) if (isPlainData(value)) fields[key] = value;
  return { message: err.message, stack: err.stack, fields };
}

export function reviveError(e: SerializedError): Error {
  const err = new Error(e.message);
  Object.assign(err, e.fields);
  if (e.stack !== undefined) err.stack = e.stack;
  return err;
}

/** Primitives and arrays of them (the failed statement's params), nothing with functions inside. */
function isPlainData(value: unknown): boolean {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return true;
  if (Array.isArray(value)) return value.every((v) => v === null || typeof v !== "object" || v instanceof Date || ArrayBuffer.isView(v));
  return false;
}
