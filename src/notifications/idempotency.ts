/**
 * Idempotency keys (issue 16.13, migration 0009): kept in their own table per
 * (recipient user, key), apart from the notification, so a replay after the
 * user deleted the notification is recognised and never creates it again.
 *
 * - A replay of the same content answers the original notification (or, when
 *   the user deleted it, its id and `deleted`), and writes and pushes nothing.
 * - The same key with other content is refused (HERALD_CONFLICT, 409), as
 *   Stripe does: a key names one request.
 * - Keys are kept IDEMPOTENCY_RETENTION_MS; after that the key is free again.
 */
import { createHash } from "node:crypto";
import type { Queryable } from "../db/index.js";
import type { NotificationRow } from "../db/index.js";
import { HeraldError } from "../errors/index.js";
import { SELECT_IDEMPOTENCY_KEY, SELECT_OWN } from "./sql.js";
import { type NotificationDto, toNotificationDto } from "./types.js";

/** How long a key is remembered: long enough for any retry policy we know of (Stripe keeps 24 h). */
export const IDEMPOTENCY_RETENTION_MS = 7 * 24 * 3600_000;

export type CreateOutcome =
  | { status: "created" | "replayed"; notification: NotificationDto }
  /** A replay whose notification the user has since deleted: `id` is the original. */
  | { status: "deleted"; id: string }
  /** The user switched this type off: nothing stored (delivery rule 1). */
  | { status: "type_disabled" };

/** Fingerprint of what a creation asks for; object keys sorted, so `{a,b}` and `{b,a}` are the same request. */
export function requestHash(fields: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(fields, (_k, v: unknown) => sortKeys(v))).digest("base64url");
}

function sortKeys(v: unknown): unknown {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The answer to a creation whose key is already taken, or undefined when the
 * key is unknown (never used, or expired and purged).
 */
export async function replay(db: Queryable, userId: string, key: string, hash: string): Promise<CreateOutcome | undefined> {
  const [used] = await db.query<{ notificationId: string; requestHash: string | null }>(SELECT_IDEMPOTENCY_KEY, [userId, key]);
  if (!used) return undefined;
  // NULL: a key carried over from before 0009, whose content was never recorded.
  if (used.requestHash !== null && used.requestHash !== hash) {
    throw new HeraldError("HERALD_CONFLICT", "This idempotencyKey was already used for a notification with other content", [
      { field: "idempotencyKey", message: "already used with other content; use a new key for a new notification" },
    ]);
  }
  const [row] = await db.query<NotificationRow>(SELECT_OWN, [used.notificationId, userId]);
  return row ? { status: "replayed", notification: toNotificationDto(row) } : { status: "deleted", id: used.notificationId };
}
