/**
 * Everything the socket hot path writes to the database, batched: `sent`
 * (pushed), `delivered` (client ack) and websocket_sessions rows. Calls only
 * append to a buffer (src/db BatchWriter); a flush every `intervalMs` (~50 ms)
 * writes each kind with one statement over unnest() arrays, so no socket
 * message costs a database round trip. Within a flush, opens go before closes and `sent`
 * before `delivered`, so the rows move pending -> sent -> delivered.
 *
 * An ack usually arrives before its `sent` mark is flushed (the client acks
 * within milliseconds): then the row is written once, pending -> delivered
 * with sent_at, and both analytics events are recorded, instead of two
 * UPDATEs of the same row. To make that the rule, a `sent` mark is held one to
 * two flush periods before it joins the buffer, and an ack of the same row by
 * the same user meanwhile takes its place: without the hold, a flush that
 * began between the push and the ack split them, and 20-35% of a backlog
 * drain's rows were updated twice (each a non-HOT UPDATE touching every index
 * of notifications). flush() and stop() write held marks too.
 */
import type { AnalyticsSink } from "../analytics/index.js";
import { BatchWriter, type Queryable, writeIsolating } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import { storableText } from "./peer-text.js";

/** Flushes tried at stop while the database refuses them, this far apart, before what is left is given up. */
const STOP_ATTEMPTS = 3;
const STOP_RETRY_PAUSE_MS = 200;

/** Bounds of peer-supplied text in websocket_sessions (the rest is cut). */
const MAX_USER_AGENT = 500;
const MAX_CLOSE_REASON = 200;

// Both marks lock their rows in id order, as the delivery worker's sent marks do (src/channels/queue-sql.ts),
// so they wait for each other instead of deadlocking; read-all, archive-all and erasure lock in no
// particular order, which is why the worker runs a mark that lost a lock race again.
const MARK_SENT = `
WITH locked AS (
  SELECT n.id FROM notifications n JOIN unnest($1::uuid[]) AS s(id) ON n.id = s.id
   WHERE n.delivery_status = 'pending'
   ORDER BY n.id FOR UPDATE OF n
)
UPDATE notifications n
   SET delivery_status = 'sent', sent_at = $2, updated_at = $2
  FROM locked
 WHERE n.id = locked.id AND n.delivery_status = 'pending'
RETURNING n.id, n.user_id`;

// Only rows of the acking user, and only forward (an ack never resurrects a failed row).
// `was_pending`: the row had not been marked sent, so this write is also its `sent`
// (the old status is read under the row lock the UPDATE takes anyway).
const MARK_DELIVERED = `
WITH old AS (
  SELECT n.id, n.delivery_status
    FROM notifications n
    JOIN unnest($1::uuid[], $2::text[]) AS a(id, user_id) ON n.id = a.id AND n.user_id = a.user_id
   WHERE n.delivery_status IN ('pending', 'sent')
   ORDER BY n.id
     FOR UPDATE OF n
)
UPDATE notifications n
   SET delivery_status = 'delivered', delivered_at = $3, sent_at = COALESCE(n.sent_at, $3), updated_at = $3
  FROM old
 WHERE n.id = old.id
RETURNING n.id, n.user_id, old.delivery_status = 'pending' AS was_pending`;

// Per-device acknowledged cursor (delivery rule 4): the highest acked seq of each
// (user, device), from acked ids (their seq); `inserted` (xmax = 0) says a device
// row was added, so its user's oldest devices beyond the cap are pruned. Sorted so
// two instances (and the sync statement, which stores where a sync left a device:
// sync.ts) lock rows in one order.
const MARK_DEVICE_ACKED = `
INSERT INTO device_cursors AS d (user_id, device_id, acked_seq, updated_at)
SELECT a.user_id, a.device_id, max(n.seq), $4
  FROM unnest($1::uuid[], $2::text[], $3::text[]) AS a(id, user_id, device_id)
  JOIN notifications n ON n.id = a.id AND n.user_id = a.user_id
 GROUP BY a.user_id, a.device_id
 ORDER BY a.user_id, a.device_id
ON CONFLICT (user_id, device_id) DO UPDATE
   SET acked_seq = GREATEST(d.acked_seq, EXCLUDED.acked_seq), updated_at = EXCLUDED.updated_at
RETURNING d.user_id, (d.xmax = 0) AS inserted`;

const PRUNE_DEVICES = `
DELETE FROM device_cursors d
 USING (SELECT user_id, device_id, row_number() OVER (PARTITION BY user_id ORDER BY updated_at DESC, device_id) AS rank
          FROM device_cursors WHERE user_id = ANY($1::text[])) old
 WHERE d.user_id = old.user_id AND d.device_id = old.device_id AND old.rank > $2`;

/** Keeps the `max` most recently updated device cursors of each of `userIds` (after devices were added). */
export async function pruneDevices(database: Queryable, userIds: string[], max: number): Promise<void> {
  await database.query(PRUNE_DEVICES, [userIds, max]);
}

const OPEN_SESSIONS = `
INSERT INTO websocket_sessions (id, user_id, instance_id, ip, user_agent, connected_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])`;

const CLOSE_SESSIONS = `
UPDATE websocket_sessions s
   SET disconnected_at = c.at, disconnect_code = c.code, disconnect_reason = c.reason
  FROM unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::text[]) AS c(id, at, code, reason)
 WHERE s.id = c.id`;

export interface SessionOpen {
  id: string;
  userId: string;
  instanceId: string;
  ip: string | null;
  userAgent: string | null;
  at: Date;
}

export interface SessionClose {
  id: string;
  at: Date;
  code: number;
  reason: string;
}

export interface DeliveryLogOptions {
  database: Queryable;
  analytics: AnalyticsSink;
  clock: Clock;
  logger: Logger;
  intervalMs?: number;
  /** Device cursors kept per user (the least recently syncing or acking beyond it are deleted; default 20). */
  maxDevicesPerUser?: number;
}

/** One buffered call, in arrival order; `cursor` is a device's ack put back after a failed flush (its `delivered` already written). */
type Entry =
  | { kind: "open"; open: SessionOpen }
  | { kind: "close"; close: SessionClose }
  | { kind: "sent" | "ack" | "cursor"; id: string; userId: string; deviceId?: string };

export class DeliveryLog {
  private readonly writer: BatchWriter<Entry>;
  state: "created" | "active" | "stopped" = "created";
  /** Sent marks held before they join the buffer (notification id -> user): `young` since the last tick, `old` since the one before. */
  private young = new Map<string, string>();
  private old = new Map<string, string>();
  /** Every `intervalMs`: tick(). */
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: DeliveryLogOptions) {
    this.writer = new BatchWriter((entries) => this.write(entries), { intervalMs: options.intervalMs ?? 50 });
  }

  start(): void {
    if (this.state !== "created") return;
    this.state = "active";
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs ?? 50);
    this.timer.unref();
  }

  /**
   * What the timer does every `intervalMs`: the sent marks held since before the previous
   * tick join the buffer, and everything buffered is written (resolves once it is).
   */
  tick(): Promise<void> {
    this.release(false);
    return this.writer.flush();
  }

  markSent(id: string, userId: string): void {
    this.young.set(id, userId);
  }

  /** The first ack makes a notification `delivered` (once, for analytics); each device's ack also moves its own cursor. */
  markDelivered(id: string, userId: string, deviceId?: string): void {
    // A held sent mark of this row for this user: the ack's write does both (pending -> delivered, with sent_at).
    if (this.young.get(id) === userId) this.young.delete(id);
    else if (this.old.get(id) === userId) this.old.delete(id);
    this.writer.add({ kind: "ack", id, userId, deviceId });
  }

  /** Moves held sent marks into the buffer: those held since before the last tick, or all of them. */
  private release(all: boolean): void {
    for (const [id, userId] of this.old) this.writer.add({ kind: "sent", id, userId });
    this.old = this.young;
    this.young = new Map();
    if (all) this.release(false);
  }

  sessionOpened(open: SessionOpen): void {
    this.writer.add({ kind: "open", open: { ...open, userAgent: storableText(open.userAgent, MAX_USER_AGENT) } });
  }

  sessionClosed(close: SessionClose): void {
    this.writer.add({ kind: "close", close: { ...close, reason: storableText(close.reason, MAX_CLOSE_REASON) } });
  }

  /** A row the database refused for its content: logged once and dropped, so it never blocks the rows after it. */
  private setAside(what: string): (row: unknown, err: unknown) => void {
    return (row, err) => this.options.logger.warn({ err, row }, `realtime delivery log: ${what} row refused by the database; set aside`);
  }

  /** Calls buffered for the next flush (held sent marks included). */
  get pending(): number {
    return this.writer.queued + this.young.size + this.old.size;
  }

  /** Writes everything buffered (and held) before the call; never rejects (failures are logged and retried on the next flush). */
  flush(): Promise<void> {
    this.release(true);
    return this.writer.flush();
  }

  private async write(entries: Entry[]): Promise<void> {
    const { database, analytics, clock, logger } = this.options;
    const opens: SessionOpen[] = [];
    const sent = new Map<string, string>(); // notification id -> the user whose socket carried it
    const acks = new Map<string, string>(); // notification id -> the acking user
    const deviceAcks: Array<[string, string, string]> = []; // [notification id, user id, device id]
    const closes: SessionClose[] = [];
    for (const e of entries) {
      if (e.kind === "open") opens.push(e.open);
      else if (e.kind === "close") closes.push(e.close);
      // Already acked by that user (another of their sockets got it meanwhile): the ack's write covers it.
      else if (e.kind === "sent") {
        if (acks.get(e.id) !== e.userId) sent.set(e.id, e.userId);
      } else {
        if (e.kind === "ack") {
          // Acked by the user it was sent to before the sent mark was written: one write does both.
          if (sent.get(e.id) === e.userId) sent.delete(e.id);
          acks.set(e.id, e.userId);
        }
        if (e.deviceId !== undefined) deviceAcks.push([e.id, e.userId, e.deviceId]);
      }
    }
    const now = clock.now();
    try {
      // Each statement is isolated: a refused row is set aside, the others are written (src/db/isolate.ts).
      await writeIsolating(
        opens,
        async (batch) => {
          await database.query(OPEN_SESSIONS, [
            batch.map((o) => o.id),
            batch.map((o) => o.userId),
            batch.map((o) => o.instanceId),
            batch.map((o) => o.ip),
            batch.map((o) => o.userAgent),
            batch.map((o) => o.at.toISOString()),
          ]);
        },
        this.setAside("session open"),
      );
      opens.length = 0;
      await writeIsolating(
        [...sent],
        async (batch) => {
          const rows = await database.query<{ id: string; user_id: string }>(MARK_SENT, [batch.map(([id]) => id), now.toISOString()]);
          for (const r of rows) analytics.record({ notificationId: r.id, userId: r.user_id, eventType: "sent", metadata: { channel: "websocket" }, timestamp: now });
        },
        this.setAside("sent mark"),
      );
      sent.clear();
      await writeIsolating(
        [...acks],
        async (batch) => {
          const rows = await database.query<{ id: string; user_id: string; was_pending: boolean }>(MARK_DELIVERED, [
            batch.map(([id]) => id),
            batch.map(([, user]) => user),
            now.toISOString(),
          ]);
          for (const r of rows) {
            if (r.was_pending) analytics.record({ notificationId: r.id, userId: r.user_id, eventType: "sent", metadata: { channel: "websocket" }, timestamp: now });
            analytics.record({ notificationId: r.id, userId: r.user_id, eventType: "delivered", metadata: { channel: "websocket" }, timestamp: now });
          }
        },
        this.setAside("delivered mark"),
      );
      acks.clear();
      await writeIsolating(deviceAcks, (batch) => this.writeDeviceAcks(batch, now), this.setAside("device cursor"));
      deviceAcks.length = 0;
      await writeIsolating(
        closes,
        async (batch) => {
          await database.query(CLOSE_SESSIONS, [batch.map((c) => c.id), batch.map((c) => c.at.toISOString()), batch.map((c) => c.code), batch.map((c) => c.reason)]);
        },
        this.setAside("session close"),
      );
      closes.length = 0;
    } catch (err) {
      // Put back what was not written, ahead of anything newer, for the next flush.
      logger.warn({ err }, "realtime delivery log flush failed; will retry");
      this.writer.requeue([
        ...opens.map((open): Entry => ({ kind: "open", open })),
        ...[...sent].map(([id, userId]): Entry => ({ kind: "sent", id, userId })),
        ...[...acks].map(([id, userId]): Entry => ({ kind: "ack", id, userId })),
        ...deviceAcks.map(([id, userId, deviceId]): Entry => ({ kind: "cursor", id, userId, deviceId })),
        ...closes.map((close): Entry => ({ kind: "close", close })),
      ]);
    }
  }

  private async writeDeviceAcks(acks: Array<[string, string, string]>, now: Date): Promise<void> {
    const { database } = this.options;
    const rows = await database.query<{ user_id: string; inserted: boolean }>(MARK_DEVICE_ACKED, [
      acks.map(([id]) => id),
      acks.map(([, user]) => user),
      acks.map(([, , device]) => device),
      now.toISOString(),
    ]);
    const grown = [...new Set(rows.filter((r) => r.inserted).map((r) => r.user_id))];
    if (grown.length > 0) await pruneDevices(database, grown, this.options.maxDevicesPerUser ?? 20);
  }

  /**
   * Ends the timer and writes what is buffered and held. A flush that fails puts its entries back (see write):
   * two more tries, as the analytics ingest's stop makes, then one line saying what was not recorded,
   * instead of the flush's "will retry" that no retry follows.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.release(true);
    const left = await this.writer.stopTrying(STOP_ATTEMPTS, STOP_RETRY_PAUSE_MS);
    if (left > 0) {
      this.options.logger.error(
        { entries: left },
        "realtime delivery log entries lost at stop: database unavailable; their notifications keep the older delivery state and are sent again on the next sync",
      );
    }
    this.state = "stopped";
  }
}
