/**
 * Right to erasure: everything Herald holds about one user goes in one
 * transaction (docs/auth.md, "Erasing a user").
 *
 * - Rows keyed by the user: every table of the schema with a `user_id`
 *   column (found in the catalogue, so a table a later migration adds is not
 *   forgotten): notifications and their queue rows, device cursors,
 *   idempotency keys, preferences, analytics events and first-event rows,
 *   push subscriptions, digests, websocket sessions.
 * - Rows keyed by the user's notifications: the analytics copies of deleted
 *   notifications (title included) and the per-notification analytics group
 *   of a notification that was not a broadcast.
 * - The directory entry.
 *
 * Kept: platform-wide counts (analytics_rollup per 15 minutes and type, the
 * groups of broadcasts): they hold no user id and no text of the user's.
 */
import type { Cache } from "../cache/index.js";
import { rollUpWithin } from "../analytics/index.js";
import { type Database, type Queryable, type Session, quoteIdent } from "../db/index.js";
import { recipientCacheKey } from "./deliverability.js";
import { timezoneCacheKey } from "./directory.js";
import { lockDirectoryForErasure } from "./directory-lock.js";

/** Notifications the user has or had: held now, or named by a key, an event or a queue row after being deleted. */
const USER_NOTIFICATION_IDS = `
SELECT id FROM notifications WHERE user_id = $1
UNION SELECT notification_id FROM idempotency_keys WHERE user_id = $1
UNION SELECT notification_id FROM analytics_firsts WHERE user_id = $1
UNION SELECT notification_id FROM analytics_events WHERE user_id = $1
UNION SELECT notification_id FROM notification_queue WHERE user_id = $1`;

// The tables of the current schema (search_path's first) with a user_id column.
const USER_TABLES = `
SELECT c.table_name AS "table"
  FROM information_schema.columns c
  JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
 WHERE c.table_schema = current_schema() AND c.column_name = 'user_id'
 ORDER BY c.table_name`;

export interface ErasureResult {
  /** False when Herald held nothing of this user (no directory entry, no row). */
  found: boolean;
  /** Rows deleted, per table. */
  deleted: Record<string, number>;
}

async function count(tx: Queryable, sql: string, params: unknown[]): Promise<number> {
  const rows = await tx.query<{ n: number | string }>(`WITH d AS (${sql} RETURNING 1) SELECT count(*) AS n FROM d`, params);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Deletes the user's notifications this statement's snapshot sees; returns how many. Counted first and deleted by
 * a plain statement: the rule that keeps analytics copies of deleted notifications (0011) refuses a DELETE inside
 * WITH, and RETURNING would ship every id of a large inbox back.
 */
async function deleteVisibleNotifications(tx: Queryable, userId: string): Promise<number> {
  const [held] = await tx.query<{ n: number | string }>("SELECT count(*) AS n FROM notifications WHERE user_id = $1", [userId]);
  await tx.query("DELETE FROM notifications WHERE user_id = $1", [userId]);
  return Number(held?.n ?? 0);
}

/** Deletes everything of `userId` inside the caller's transaction `tx`. */
export async function eraseUserRows(tx: Session, userId: string): Promise<ErasureResult> {
  const deleted: Record<string, number> = {};
  // First: any broadcast, digest claim or test digest that read the directory commits before the DELETEs
  // below, which then see its rows (src/users/directory-lock.ts).
  await lockDirectoryForErasure(tx);
  // Under the analytics roll-up lock, with every committed event folded in first: platform-wide counts keep
  // the user's events, and no roll-up pass of any instance runs beside the deletion (it would write first-event
  // rows of the user back after the DELETE below).
  await rollUpWithin(tx);
  // The ids stay in the database (a large inbox's ids would otherwise cross to Node and back twice).
  await tx.query(`CREATE TEMP TABLE erased_notification_ids ON COMMIT DROP AS ${USER_NOTIFICATION_IDS}`, [userId]);
  deleted.notifications = await deleteVisibleNotifications(tx, userId);
  // Then the user's inbox_state row (LOCK_INBOX_STATE of src/notifications/sql.ts; inlined: notifications imports
  // users). A creation counts itself under that lock before it commits, so once we hold it, a later snapshot sees
  // every counted row: the DELETE above could not see a creation still open, which then outlived the erasure while
  // its count went with inbox_state (test/notifications/inbox-state-attack.test.ts). Rows first, inbox_state second:
  // the order of every writer of notifications (their triggers count under the lock), so none can deadlock with us.
  const [lock] = await tx.query<{ added: boolean }>(
    "INSERT INTO inbox_state (user_id) VALUES ($1) ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id RETURNING (xmax = 0) AS added",
    [userId],
  );
  await tx.query("INSERT INTO erased_notification_ids SELECT id FROM notifications WHERE user_id = $1", [userId]);
  deleted.notifications += await deleteVisibleNotifications(tx, userId);
  // The copies the 0011 rule just made, and those of notifications deleted before.
  deleted.analytics_deleted_notifications = await count(tx, "DELETE FROM analytics_deleted_notifications WHERE notification_id IN (SELECT id FROM erased_notification_ids)", []);
  deleted.analytics_group_stats = await count(tx, "DELETE FROM analytics_group_stats WHERE group_id IN (SELECT id FROM erased_notification_ids) AND NOT broadcast", []);
  const tables = (await tx.query<{ table: string }>(USER_TABLES)).map((r) => r.table).filter((t) => t !== "notifications");
  for (const table of tables) deleted[table] = await count(tx, `DELETE FROM ${quoteIdent(table)} WHERE user_id = $1`, [userId]);
  // The row the lock added was never the user's.
  if (lock?.added && deleted.inbox_state) deleted.inbox_state -= 1;
  deleted.users = await count(tx, "DELETE FROM users WHERE id = $1", [userId]);
  return { found: Object.values(deleted).some((n) => n > 0), deleted };
}

export interface UserErasureDeps {
  database: Database;
  /** The shared cache (Redis when configured): the user's entries are dropped for every instance. */
  cache: Cache;
  /** Writes still buffered in this process (analytics ingest, delivery log): drained first, so none lands after the erasure. */
  flushBuffers: () => Promise<void>;
  /** Closes the user's live connections on every instance (CloseCodes.userErased). */
  disconnect: (userId: string) => Promise<void>;
}

/** Cache entries named by a user id: preferences (src/preferences/service.ts), time zone, analytics generation (src/analytics/cache.ts). */
const cacheKeysOf = (userId: string) => [`prefs:${userId}`, timezoneCacheKey(userId), recipientCacheKey(userId), `analytics:ugen:${userId}`];
/** Analytics' cached platform figures (top notifications carry titles): dropped whole, erasures are rare. */
const CACHE_PREFIXES = (userId: string) => [`analytics:u:${userId}:`, "analytics:p:"];

export class UserErasure {
  constructor(private readonly deps: UserErasureDeps) {}

  /**
   * Erases the user: closes their connections first (so no new session or ack
   * is written), drains this process's buffered writes, deletes every row in
   * one transaction, then drops their cache entries. Returns what was deleted;
   * `found` is false when Herald held nothing of the user.
   */
  async erase(userId: string): Promise<ErasureResult> {
    const { database, cache, flushBuffers, disconnect } = this.deps;
    await disconnect(userId);
    await flushBuffers();
    const result = await database.transaction((tx) => eraseUserRows(tx, userId));
    await cache.deleteMany(cacheKeysOf(userId));
    for (const prefix of CACHE_PREFIXES(userId)) await cache.deletePrefix(prefix);
    return result;
  }
}
