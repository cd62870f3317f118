/**
 * Every error Herald reports on purpose, with a stable code. The HTTP layer
 * turns them into RFC 9457 problem bodies; callers and tests match the code.
 */
export interface FieldIssue {
  /** Dotted path of the offending field, e.g. "quietHoursStart". */
  field: string;
  message: string;
}

export const errorCatalogue = {
  HERALD_VALIDATION: { status: 400, title: "Invalid request" },
  HERALD_TEMPLATE_VARIABLES: { status: 400, title: "Missing template variables" },
  HERALD_UNAUTHENTICATED: { status: 401, title: "Authentication required" },
  HERALD_FORBIDDEN: { status: 403, title: "Not allowed" },
  HERALD_NOT_FOUND: { status: 404, title: "Not found" },
  HERALD_CONFLICT: { status: 409, title: "Conflict" },
  HERALD_PAYLOAD_TOO_LARGE: { status: 413, title: "Payload too large" },
  HERALD_RATE_LIMITED: { status: 429, title: "Too many requests" },
  HERALD_UNAVAILABLE: { status: 503, title: "Service unavailable" },
  HERALD_INTERNAL: { status: 500, title: "Internal error" },
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

export class HeraldError extends Error {
  override name = "HeraldError";
  readonly status: number;
  readonly title: string;

  constructor(
    readonly code: ErrorCode,
    detail: string,
    readonly fields: FieldIssue[] = [],
  ) {
    super(detail);
    this.status = errorCatalogue[code].status;
    this.title = errorCatalogue[code].title;
  }
}

/** An RFC 9457 problem body: what the REST API and the WebSocket upgrade's refusals answer. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  errors?: FieldIssue[];
}

export function problem(code: ErrorCode, detail: string, errors?: FieldIssue[]): Problem {
  const { status, title } = errorCatalogue[code];
  return { type: `https://herald.dev/problems/${code.toLowerCase().replace(/_/g, "-")}`, title, status, detail, code, ...(errors?.length ? { errors } : {}) };
}

export const validationError = (detail: string, fields: FieldIssue[] = []) =>
  new HeraldError("HERALD_VALIDATION", detail, fields);
export const notFound = (what: string) => new HeraldError("HERALD_NOT_FOUND", `${what} not found`);
export const unauthenticated = (detail = "A valid token is required") => new HeraldError("HERALD_UNAUTHENTICATED", detail);
export const forbidden = (detail: string) => new HeraldError("HERALD_FORBIDDEN", detail);

/** True for errors that mean "the database is unreachable right now" (so 503, not 500). */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  const code = e.code ?? "";
  // 57P01..57P03: admin shutdown / crash shutdown / cannot connect now; 08xxx: connection exceptions.
  if (code.startsWith("08") || code.startsWith("57P")) return true;
  if (["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT"].includes(code)) return true;
  const m = e.message ?? "";
  return /Connection terminated|connection timeout|Client has encountered a connection error|Cannot use a pool after calling end/i.test(m);
}

/** True when a statement lost a race for locks (40001 serialization failure, 40P01 deadlock): run again, it can succeed. */
export function isLockConflict(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === "40001" || code === "40P01";
}

/**
 * True when an open session was cut under a statement (its backend terminated,
 * the server restarting, the socket closed): the statement may or may not have
 * committed, and a new connection may well work. Not for a refused or timed-out
 * connect, where a retry would only double the wait for the 503.
 */
export function isSessionLost(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  if (e.code === "57P01" || e.code === "57P02" || e.code === "ECONNRESET" || e.code === "EPIPE") return true;
  return /Connection terminated unexpectedly|Client has encountered a connection error and is not queryable/i.test(e.message ?? "");
}

/**
 * True for PostgreSQL's refusals of the input's text itself (a NUL character,
 * an invalid escape in JSON): bad input, so a 400, and the statement wrote nothing.
 */
export function isUnstorableText(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === "22021" || code === "22P05";
}
