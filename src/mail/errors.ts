/**
 * Retry decisions for SMTP failures are made once, here: a 5xx reply is a
 * permanent refusal (bad address, policy) and is never retried; a 4xx reply
 * or a connection-level failure (refused, reset, timeout, greeting never
 * came) is transient and worth another attempt later.
 */
export interface MailFailure {
  /** True when trying again later may succeed. */
  readonly retryable: boolean;
  /** The SMTP reply code when the server answered, e.g. 421, 550. */
  readonly responseCode: number | undefined;
  /** One line for logs and `last_error`. */
  readonly message: string;
  /** False when no connection ever carried the message (refused, timed out before the greeting): not a delivery attempt. */
  readonly reachedServer: boolean;
}

const CONNECTION_CODES = new Set([
  "ECONNECTION",
  "ETIMEDOUT",
  "ESOCKET",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EDNS",
  "EPROTOCOL",
]);

/** A send its caller's fence (`mayStart`) stopped before the message reached the server. */
export class MailFencedError extends Error {
  override name = "MailFencedError";
  constructor() {
    super("not sent: the sender's right to send lapsed before the SMTP transaction started");
  }
}

/** A send that failed before any connection took the message (refused, no greeting in time): the server never saw it. */
export class MailUnreachedError extends Error {
  override name = "MailUnreachedError";
  constructor(override readonly cause: unknown) {
    super(`mail server not reached: ${String((cause as { message?: unknown })?.message ?? cause)}`);
  }
}

export function classifyMailError(err: unknown): MailFailure {
  // Nothing reached the server: trying again (by whoever holds the right) is safe.
  if (err instanceof MailFencedError) return { retryable: true, responseCode: undefined, message: err.message, reachedServer: false };
  if (err instanceof MailUnreachedError) {
    const inner = classifyMailError(err.cause);
    // A 5xx greeting is a verdict (this server will not take mail); anything else is an outage.
    return inner.responseCode !== undefined && inner.responseCode >= 500 ? inner : { ...inner, retryable: true, reachedServer: false };
  }
  const e = (err ?? {}) as { responseCode?: unknown; code?: unknown; message?: unknown; response?: unknown };
  const responseCode = typeof e.responseCode === "number" ? e.responseCode : undefined;
  const text = String(e.response ?? e.message ?? err).replace(/\s+/g, " ").trim().slice(0, 500);
  const message = responseCode !== undefined && !text.startsWith(String(responseCode)) ? `${responseCode} ${text}` : text;
  if (responseCode !== undefined) return { retryable: responseCode < 500, responseCode, message, reachedServer: true };
  const code = typeof e.code === "string" ? e.code : "";
  // Without a reply code the message never reached a verdict: transient unless
  // the message itself could not be built (EMESSAGE/EENVELOPE without a reply).
  const retryable = CONNECTION_CODES.has(code) || !(code === "EMESSAGE" || code === "EENVELOPE");
  return { retryable, responseCode, message, reachedServer: true };
}
