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
import { type Database, GroupCommit } from "../db/index.js";
import type { NotificationRow } from "../db/schema.js";
import { INSERT_NOTIFICATION_BATCH, INSERT_NOTIFICATION_WITH_SENDS } from "./sql.js";

/** One notification's columns (in INSERT_NOTIFICATION order, without the id) and its single out-of-app sends. */
export interface PendingInsert {
  /** user_id, type, priority, title, message, description, icon, action_url, action_label, related_id, data (JSON text), idempotency_key */
  params: unknown[];
  sends: { channels: string[]; dueAt: Date[]; payloads: string[] };
  /** The service clock's now: created_at of the queue rows. */
  now: Date;
}

interface Pending extends PendingInsert {
  /** Chosen here so the batch's returned rows can be matched back to callers. */
  id: string;
}

/** Columns of PendingInsert.params, as the batch statement's array casts. */
const COLUMN_COUNT = 12;

export class NotificationInsertBatcher {
  private readonly commits: GroupCommit<Pending, NotificationRow | undefined>;

  constructor(
    private readonly database: Database,
    private readonly options: { maxAttempts: number; maxInFlight?: number; maxBatch?: number },
  ) {
    this.commits = new GroupCommit((batch) => this.write(batch), { maxInFlight: options.maxInFlight ?? 2, maxBatch: options.maxBatch });
  }

  /** The stored row, or undefined when the user's idempotency key was already taken. */
  insert(item: PendingInsert): Promise<NotificationRow | undefined> {
    return this.commits.submit({ ...item, id: randomUUID() });
  }

  private async write(batch: Pending[]): Promise<PromiseSettledResult<NotificationRow | undefined>[]> {
    if (batch.length > 1) {
      try {
        const rows = await this.database.query<NotificationRow>(...this.batchStatement(batch));
        const byId = new Map(rows.map((r) => [r.id, r]));
        return batch.map((p) => ({ status: "fulfilled", value: byId.get(p.id) }));
      } catch {
        // Which row broke the statement is unknown: each caller gets its own attempt.
      }
    }
    return Promise.allSettled(batch.map((p) => this.writeOne(p)));
  }

  private async writeOne(p: Pending): Promise<NotificationRow | undefined> {
    const rows = await this.database.query<NotificationRow>(INSERT_NOTIFICATION_WITH_SENDS, [
      ...p.params,
      p.sends.channels,
      p.sends.dueAt,
      p.sends.payloads,
      this.options.maxAttempts,
      p.now,
    ]);
    return rows[0];
  }

  /** INSERT_NOTIFICATION_BATCH with one array per column. */
  private batchStatement(batch: Pending[]): [string, unknown[]] {
    const columns: unknown[][] = Array.from({ length: COLUMN_COUNT + 1 }, () => []);
    const send = { ids: [] as string[], channels: [] as string[], dueAt: [] as Date[], payloads: [] as string[] };
    let now = batch[0]!.now;
    for (const p of batch) {
      if (p.now > now) now = p.now;
      columns[0]!.push(p.id);
      for (let c = 0; c < COLUMN_COUNT; c++) columns[c + 1]!.push(p.params[c]);
      for (let s = 0; s < p.sends.channels.length; s++) {
        send.ids.push(p.id);
        send.channels.push(p.sends.channels[s]!);
        send.dueAt.push(p.sends.dueAt[s]!);
        send.payloads.push(p.sends.payloads[s]!);
      }
    }
    return [INSERT_NOTIFICATION_BATCH, [...columns, send.ids, send.channels, send.dueAt, send.payloads, this.options.maxAttempts, now]];
  }
}
