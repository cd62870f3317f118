/**
 * Group commit (src/db GroupCommit) for single creations. While `maxInFlight` inserts are running,
 * new creations wait and then go together in one multi-row statement, so
 * under load PostgreSQL sees one round trip, one plan and one WAL flush per
 * batch instead of per notification. A batch starts at the end of the
 * event-loop turn in which its first creation arrived (collectTurn), so the
 * creations read together share it even when a slot is free: on PGlite in
 * this thread, whose statements stop the event loop, nothing arrives while a
 * statement runs, and without it every creation was written alone (1.0 rows
 * per statement at 32 concurrent creators). Under light load that is one
 * setImmediate of delay. Every caller is answered only after its batch
 * committed (durable before we answer, as before).
 *
 * A batch that fails as a whole (one bad row fails the statement, or its
 * connection was lost) is retried row by row, so each caller gets its own
 * answer or its own error. Each creation keeps the id drawn for its first
 * attempt: when the batch did commit before its answer was lost, the retry
 * meets its own row (a primary key conflict, or its idempotency key taken)
 * and answers with it instead of storing it twice.
 *
 * On PostgreSQL the batches go through connections of their own
 * (Database.openWriter: never behind other statements for a pool slot, the
 * statement prepared once per connection), and those sessions wake the
 * delivery workers themselves, after the commit, instead of by the queue
 * trigger's NOTIFY inside it: a notifying commit holds a database-wide lock
 * until its WAL flush, so two creation batches could never share a flush
 * (migration 0018). One wake is in flight at a time, and a batch committed
 * meanwhile gets one more after it, so every due send is followed by a wake
 * sent after its commit; the 1 s poll stays the safety net for a lost one.
 * Wakes are at least WAKE_SPACING_MS apart: a woken worker claims every due
 * row, and under load a wake per batch was every other statement on the
 * writer connections (and a NOTIFY to every listener) for nothing.
 */
import { randomUUID } from "node:crypto";
import { type Database, GroupCommit, type Queryable } from "../db/index.js";
import type { NotificationRow } from "../db/index.js";
import { QUEUE_WAKE_CHANNEL } from "../channels/delivery.js";
import { isSessionLost } from "../errors/index.js";
import { INSERT_NOTIFICATIONS, SELECT_OWN } from "./sql.js";

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
  /** Chosen once, before the first attempt: matches returned rows to callers, and a retry to what committed. */
  id: string;
}

/** The queue trigger's margin (migration 0013): a send due this soon wakes the workers. */
const WAKE_MARGIN_MS = 5_000;
/** The payload names the schema the rows were queued in (schemas sharing one database hear each other's wakes). */
const WAKE = "SELECT pg_notify($1, current_schema())";

/**
 * The least time between two wakes of one batcher: an immediate send waits at
 * most this much longer (issue 17's goal: started within 300 ms at p99).
 */
const WAKE_SPACING_MS = 20;

/** SQLSTATE unique_violation: on a retry, the notification's id already stored by the attempt whose answer was lost. */
const UNIQUE_VIOLATION = "23505";

/** PendingInsert.params' idempotency key. */
const KEY_PARAM = 11;

/** Columns of PendingInsert.params, as the statement's array casts. */
const COLUMN_COUNT = 14;

/**
 * Writes `items` with INSERT_NOTIFICATIONS on `db` (a pool or a transaction);
 * returns the stored row per item, undefined where the idempotency key was taken.
 */
export async function insertNotifications(db: Queryable, items: (PendingInsert & { id?: string })[], maxAttempts: number): Promise<(NotificationRow | undefined)[]> {
  const pending = items.map((p) => ({ ...p, id: p.id ?? randomUUID() }));
  const rows = await db.query<NotificationRow>(...statement(pending, maxAttempts));
  const byId = new Map(rows.map((r) => [r.id, r]));
  return pending.map((p) => byId.get(p.id));
}

export class NotificationInsertBatcher {
  private readonly commits: GroupCommit<PendingInsert, NotificationRow | undefined>;
  /** PostgreSQL: the batches' own connections, which wake the workers themselves (wake()); else undefined. */
  private readonly writer: Queryable | undefined;
  private waking = false;
  private wakeAgain = false;
  private lastWakeAt = Number.NEGATIVE_INFINITY;
  /** A wake held back to keep WAKE_SPACING_MS; it covers every commit before it fires. */
  private wakeTimer: NodeJS.Timeout | undefined;
  /** The wake in flight (settles after any wake it sends next). */
  private wakeSent: Promise<void> | undefined;
  /** Set by close(): wakes go at once, none is held on the timer. */
  private closing = false;

  constructor(
    private readonly database: Database,
    private readonly options: { maxAttempts: number; maxInFlight?: number; maxBatch?: number },
  ) {
    const maxInFlight = options.maxInFlight ?? 2;
    this.writer = database.openWriter?.({ connections: maxInFlight, settings: { "herald.queue_wake": "client" } });
    this.commits = new GroupCommit((batch) => this.write(batch), { maxInFlight, maxBatch: options.maxBatch, collectTurn: true });
  }

  /** The stored row, or undefined when the user's idempotency key was already taken. */
  insert(item: PendingInsert): Promise<NotificationRow | undefined> {
    return this.commits.submit(item);
  }

  /** Resolves once every creation submitted before the call is committed (or failed) and answered. */
  flush(): Promise<void> {
    return this.commits.flush();
  }

  /**
   * At stop, before the database closes: writes what was submitted and sends
   * every wake it owes now. A wake left on the spacing timer would fire after
   * the writer closed, and its sends would wait for another worker's poll.
   */
  async close(): Promise<void> {
    this.closing = true;
    await this.commits.flush();
    if (this.wakeTimer) {
      clearTimeout(this.wakeTimer);
      this.wakeTimer = undefined;
      this.wake();
    }
    while (this.waking) await this.wakeSent;
  }

  private async write(batch: PendingInsert[]): Promise<PromiseSettledResult<NotificationRow | undefined>[]> {
    const db = this.writer ?? this.database;
    const pending: Pending[] = batch.map((p) => ({ ...p, id: randomUUID() }));
    let results: PromiseSettledResult<NotificationRow | undefined>[] | undefined;
    if (batch.length > 1) {
      try {
        const rows = await insertNotifications(db, pending, this.options.maxAttempts);
        results = rows.map((value) => ({ status: "fulfilled", value }));
      } catch {
        // Which row broke the statement (or whether a lost batch committed) is unknown: each caller gets its own attempt.
      }
    }
    results ??= await Promise.allSettled(pending.map((p) => this.insertOne(db, p)));
    if (this.writer && batch.some((p, i) => results[i]!.status === "fulfilled" && dueSoon(p))) this.wake();
    return results;
  }

  /**
   * One creation alone, by the id of its first attempt: a row that attempt committed is answered, not stored again.
   * A session cut under it (a restarting server, a terminated backend) gets one more try on a new connection,
   * as a batch does here: the pool keeps idle connections a restart has already killed.
   */
  private async insertOne(db: Queryable, p: Pending, retried = false): Promise<NotificationRow | undefined> {
    try {
      const [row] = await insertNotifications(db, [p], this.options.maxAttempts);
      if (row || p.params[KEY_PARAM] == null) return row;
      // Its key was taken: perhaps by this creation's own earlier attempt (a batch, or a try whose commit's answer
      // was lost), which the key's ON CONFLICT skips without the id's unique violation. Then the row is its own.
      const [own] = await db.query<NotificationRow>(SELECT_OWN, [p.id, p.params[0]]);
      return own;
    } catch (err) {
      if (!retried && isSessionLost(err)) return this.insertOne(db, p, true);
      if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
      const [row] = await db.query<NotificationRow>(SELECT_OWN, [p.id, p.params[0]]);
      if (!row) throw err;
      return row;
    }
  }

  /** NOTIFY the delivery workers, after the commit; coalesced: one in flight, then one more if asked meanwhile. */
  private wake(): void {
    if (this.wakeTimer) return;
    if (this.waking) {
      this.wakeAgain = true;
      return;
    }
    const wait = this.closing ? 0 : this.lastWakeAt + WAKE_SPACING_MS - performance.now();
    if (wait > 0) {
      this.wakeTimer = setTimeout(() => {
        this.wakeTimer = undefined;
        this.wake();
      }, wait);
      this.wakeTimer.unref();
      return;
    }
    this.waking = true;
    this.lastWakeAt = performance.now();
    // On the writer's own connections: through the shared pool it waited behind whatever filled the pool
    // (slow reads), while the creation had long been answered. A lost wake costs at most the workers' poll
    // interval: nothing to report to the caller.
    this.wakeSent = (this.writer ?? this.database)
      .query(WAKE, [QUEUE_WAKE_CHANNEL])
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.waking = false;
        if (!this.wakeAgain) return;
        this.wakeAgain = false;
        this.wake();
      });
  }
}

/** A send of `p` is due within the trigger's margin (a row whose idempotency key was taken queued nothing, but a spare wake is harmless). */
function dueSoon(p: PendingInsert): boolean {
  const soon = p.now.getTime() + WAKE_MARGIN_MS;
  return p.sends.dueAt.some((d) => d.getTime() <= soon);
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
