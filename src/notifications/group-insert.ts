/**
 * Group commit for single creations. While `maxInFlight` inserts are running,
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
import type { Database } from "../db/index.js";
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

interface Waiting extends PendingInsert {
  /** Chosen here so the batch's returned rows can be matched back to callers. */
  id: string;
  resolve: (row: NotificationRow | undefined) => void;
  reject: (err: unknown) => void;
}

/** Columns of PendingInsert.params, as the batch statement's array casts. */
const COLUMN_COUNT = 12;

export class NotificationInsertBatcher {
  private queue: Waiting[] = [];
  private inFlight = 0;

  constructor(
    private readonly database: Database,
    private readonly options: { maxAttempts: number; maxInFlight?: number; maxBatch?: number },
  ) {}

  /** The stored row, or undefined when the user's idempotency key was already taken. */
  insert(item: PendingInsert): Promise<NotificationRow | undefined> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...item, id: randomUUID(), resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    const maxInFlight = this.options.maxInFlight ?? 2;
    const maxBatch = this.options.maxBatch ?? 500;
    while (this.queue.length > 0 && this.inFlight < maxInFlight) {
      const batch = this.queue.splice(0, maxBatch);
      this.inFlight++;
      void this.write(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async write(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) return this.writeOne(batch[0]!);
    let rows: NotificationRow[];
    try {
      rows = await this.database.query<NotificationRow>(...this.batchStatement(batch));
    } catch {
      // Which row broke the statement is unknown: each caller gets its own attempt.
      await Promise.all(batch.map((w) => this.writeOne(w)));
      return;
    }
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const w of batch) w.resolve(byId.get(w.id));
  }

  private async writeOne(w: Waiting): Promise<void> {
    try {
      const rows = await this.database.query<NotificationRow>(INSERT_NOTIFICATION_WITH_SENDS, [
        ...w.params,
        w.sends.channels,
        w.sends.dueAt,
        w.sends.payloads,
        this.options.maxAttempts,
        w.now,
      ]);
      w.resolve(rows[0]);
    } catch (err) {
      w.reject(err);
    }
  }

  /** INSERT_NOTIFICATION_BATCH with one array per column. */
  private batchStatement(batch: Waiting[]): [string, unknown[]] {
    const columns: unknown[][] = Array.from({ length: COLUMN_COUNT + 1 }, () => []);
    const send = { ids: [] as string[], channels: [] as string[], dueAt: [] as Date[], payloads: [] as string[] };
    let now = batch[0]!.now;
    for (const w of batch) {
      const id = w.id;
      if (w.now > now) now = w.now;
      columns[0]!.push(id);
      for (let c = 0; c < COLUMN_COUNT; c++) columns[c + 1]!.push(w.params[c]);
      for (let s = 0; s < w.sends.channels.length; s++) {
        send.ids.push(id);
        send.channels.push(w.sends.channels[s]!);
        send.dueAt.push(w.sends.dueAt[s]!);
        send.payloads.push(w.sends.payloads[s]!);
      }
    }
    return [INSERT_NOTIFICATION_BATCH, [...columns, send.ids, send.channels, send.dueAt, send.payloads, this.options.maxAttempts, now]];
  }
}
