/**
 * Group commit (src/db GroupCommit) for single creations. While `maxInFlight` inserts are running,
 * new creations wait and then go together in one multi-row statement, so
 * under load PostgreSQL sees one round trip, one plan and one WAL flush per
 * batch instead of per notification; under light load a creation is written
 * at once, with no added delay. Every caller is answered only after its
 * batch committed (durable before we answer, as before).
 *
 * A batch that fails as a whole (one bad row fails the statement) is retried
 * row by row, so each caller gets its own answer or its own error.
 */
import { randomUUID } from "node:crypto";
import { type Database, GroupCommit, type Queryable } from "../db/index.js";
import type { NotificationRow } from "../db/index.js";
import { INSERT_NOTIFICATIONS } from "./sql.js";

/** One notification's columns (in INSERT_NOTIFICATIONS order, without the id) and its single out-of-app sends. */
export interface PendingInsert {
  /** user_id, type, priority, title, message, description, icon, action_url, action_label, related_id, data (JSON text), idempotency_key, in_app, request_hash */
  params: unknown[];
  sends: { channels: string[]; dueAt: Date[]; payloads: string[] };
  /** The service clock's now: created_at of the queue rows and of the idempotency key. */
  now: Date;
  /** An idempotency key first used before this instant has expired. */
  keyCutoff: Date;
}

interface Pending extends PendingInsert {
  /** Chosen here so the batch's returned rows can be matched back to callers. */
  id: string;
}

/** Columns of PendingInsert.params, as the statement's array casts. */
const COLUMN_COUNT = 14;

/**
 * Writes `items` with INSERT_NOTIFICATIONS on `db` (a pool or a transaction);
 * returns the stored row per item, undefined where the idempotency key was taken.
 */
export async function insertNotifications(db: Queryable, items: PendingInsert[], maxAttempts: number): Promise<(NotificationRow | undefined)[]> {
  const pending = items.map((p) => ({ ...p, id: randomUUID() }));
  const rows = await db.query<NotificationRow>(...statement(pending, maxAttempts));
  const byId = new Map(rows.map((r) => [r.id, r]));
  return pending.map((p) => byId.get(p.id));
}

export class NotificationInsertBatcher {
  private readonly commits: GroupCommit<PendingInsert, NotificationRow | undefined>;

  constructor(
    private readonly database: Database,
    private readonly options: { maxAttempts: number; maxInFlight?: number; maxBatch?: number },
  ) {
    this.commits = new GroupCommit((batch) => this.write(batch), { maxInFlight: options.maxInFlight ?? 2, maxBatch: options.maxBatch });
  }

  /** The stored row, or undefined when the user's idempotency key was already taken. */
  insert(item: PendingInsert): Promise<NotificationRow | undefined> {
    return this.commits.submit(item);
  }

  /** Resolves once every creation submitted before the call is committed (or failed) and answered. */
  flush(): Promise<void> {
    return this.commits.flush();
  }

  private async write(batch: PendingInsert[]): Promise<PromiseSettledResult<NotificationRow | undefined>[]> {
    if (batch.length > 1) {
      try {
        const rows = await insertNotifications(this.database, batch, this.options.maxAttempts);
        return rows.map((value) => ({ status: "fulfilled", value }));
      } catch {
        // Which row broke the statement is unknown: each caller gets its own attempt.
      }
    }
    return Promise.allSettled(batch.map(async (p) => (await insertNotifications(this.database, [p], this.options.maxAttempts))[0]));
  }
}

/** INSERT_NOTIFICATIONS with one array per column. */
function statement(batch: Pending[], maxAttempts: number): [string, unknown[]] {
  const columns: unknown[][] = Array.from({ length: COLUMN_COUNT + 1 }, () => []);
  const send = { ids: [] as string[], channels: [] as string[], dueAt: [] as Date[], payloads: [] as string[] };
  let now = batch[0]!.now;
  let keyCutoff = batch[0]!.keyCutoff;
  for (const p of batch) {
    if (p.now > now) now = p.now;
    if (p.keyCutoff < keyCutoff) keyCutoff = p.keyCutoff;
    columns[0]!.push(p.id);
    for (let c = 0; c < COLUMN_COUNT; c++) columns[c + 1]!.push(p.params[c]);
    for (let s = 0; s < p.sends.channels.length; s++) {
      send.ids.push(p.id);
      send.channels.push(p.sends.channels[s]!);
      send.dueAt.push(p.sends.dueAt[s]!);
      send.payloads.push(p.sends.payloads[s]!);
    }
  }
  return [INSERT_NOTIFICATIONS, [...columns, send.ids, send.channels, send.dueAt, send.payloads, maxAttempts, now, keyCutoff]];
}
