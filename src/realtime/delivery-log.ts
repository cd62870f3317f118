/**
 * Everything the socket hot path writes to the database, batched: `sent`
 * (pushed), `delivered` (client ack) and websocket_sessions rows. Calls only
 * append to buffers; a flush every `intervalMs` (~50 ms) writes each buffer
 * with one statement over unnest() arrays, so no socket message costs a
 * database round trip. Within a flush, opens go before closes and `sent`
 * before `delivered`, so the rows move pending -> sent -> delivered.
 *
 * An ack usually arrives before its `sent` mark is flushed (the client acks
 * within milliseconds): then the row is written once, pending -> delivered
 * with sent_at, and both analytics events are recorded, instead of two
 * UPDATEs of the same row.
 */
import type { AnalyticsSink } from "../analytics/index.js";
import { type Queryable, writeIsolating } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import { storableText } from "./peer-text.js";

/** Bounds of peer-supplied text in websocket_sessions (the rest is cut). */
const MAX_USER_AGENT = 500;
const MAX_CLOSE_REASON = 200;

const MARK_SENT = `
UPDATE notifications n
   SET delivery_status = 'sent', sent_at = $2, updated_at = $2
  FROM unnest($1::uuid[]) AS s(id)
 WHERE n.id = s.id AND n.delivery_status = 'pending'
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
     FOR UPDATE OF n
)
UPDATE notifications n
   SET delivery_status = 'delivered', delivered_at = $3, sent_at = COALESCE(n.sent_at, $3), updated_at = $3
  FROM old
 WHERE n.id = old.id
RETURNING n.id, n.user_id, old.delivery_status = 'pending' AS was_pending`;

// Per-device acknowledged cursor (SPEC 6.4): the highest acked seq of each
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

export class DeliveryLog {
  /** Notification id -> the user whose socket carried it. */
  private sent = new Map<string, string>();
  private acks = new Map<string, string>(); // notification id -> user id
  /** Acks from connections that named their device: [notification id, user id, device id]. */
  private deviceAcks: Array<[string, string, string]> = [];
  private opens: SessionOpen[] = [];
  private closes: SessionClose[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  state: "created" | "active" | "stopped" = "created";

  constructor(private readonly options: DeliveryLogOptions) {}

  start(): void {
    if (this.state !== "created") return;
    this.state = "active";
    this.timer = setInterval(() => void this.flush(), this.options.intervalMs ?? 50);
    this.timer.unref();
  }

  markSent(id: string, userId: string): void {
    // Already acked by that user (another of their sockets got it meanwhile): the ack's write covers it.
    if (this.acks.get(id) === userId) return;
    this.sent.set(id, userId);
  }

  /** The first ack makes a notification `delivered` (once, for analytics); each device's ack also moves its own cursor. */
  markDelivered(id: string, userId: string, deviceId?: string): void {
    // Acked by the user it was sent to before the sent mark was written: one write does both.
    if (this.sent.get(id) === userId) this.sent.delete(id);
    this.acks.set(id, userId);
    if (deviceId !== undefined) this.deviceAcks.push([id, userId, deviceId]);
  }

  sessionOpened(open: SessionOpen): void {
    this.opens.push({ ...open, userAgent: storableText(open.userAgent, MAX_USER_AGENT) });
  }

  sessionClosed(close: SessionClose): void {
    this.closes.push({ ...close, reason: storableText(close.reason, MAX_CLOSE_REASON) });
  }

  /** A row the database refused for its content: logged once and dropped, so it never blocks the rows after it. */
  private setAside(what: string): (row: unknown, err: unknown) => void {
    return (row, err) => this.options.logger.warn({ err, row }, `realtime delivery log: ${what} row refused by the database; set aside`);
  }

  get pending(): number {
    return this.sent.size + this.acks.size + this.deviceAcks.length + this.opens.length + this.closes.length;
  }

  /** Writes everything buffered so far; never rejects (failures are logged and retried next time). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending === 0) return;
    this.flushing = this.write().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private async write(): Promise<void> {
    const { database, analytics, clock, logger } = this.options;
    const opens = this.opens;
    const sent = [...this.sent];
    const acks = [...this.acks];
    const deviceAcks = this.deviceAcks;
    const closes = this.closes;
    this.opens = [];
    this.sent = new Map();
    this.acks = new Map();
    this.deviceAcks = [];
    this.closes = [];
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
        sent,
        async (batch) => {
          const rows = await database.query<{ id: string; user_id: string }>(MARK_SENT, [batch.map(([id]) => id), now.toISOString()]);
          for (const r of rows) analytics.record({ notificationId: r.id, userId: r.user_id, eventType: "sent", metadata: { channel: "websocket" }, timestamp: now });
        },
        this.setAside("sent mark"),
      );
      sent.length = 0;
      await writeIsolating(
        acks,
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
      acks.length = 0;
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
      // Put back what was not written, ahead of anything newer, and try again next tick.
      logger.warn({ err }, "realtime delivery log flush failed; will retry");
      this.opens = opens.concat(this.opens);
      for (const [id, user] of sent) this.sent.set(id, user);
      for (const [id, user] of acks) if (!this.acks.has(id)) this.acks.set(id, user);
      this.deviceAcks = deviceAcks.concat(this.deviceAcks);
      this.closes = closes.concat(this.closes);
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

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    this.state = "stopped";
  }
}
