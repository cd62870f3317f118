/**
 * Streamed export of raw events and of per-notification aggregates, as CSV
 * (RFC 4180) or a JSON array. Rows are read by keyset pagination in chunks
 * (default 5,000), and each chunk is serialised and yielded before the next
 * is read, so memory stays flat whatever the size of the table.
 */
import type { Queryable } from "../db/index.js";

export const EXPORT_FORMATS = ["csv", "json"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_KINDS = ["events", "aggregates"] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

export interface ExportOptions {
  format: ExportFormat;
  kind: ExportKind;
  since: Date;
  until: Date;
  /** Restrict to one user's events/notifications. */
  userId?: string | undefined;
  chunkSize?: number;
}

export type ExportRow = Record<string, string | number | null>;

export const EVENT_COLUMNS = ["id", "notificationId", "userId", "eventType", "timestamp", "metadata", "channel"] as const;
export const AGGREGATE_COLUMNS = [
  "notificationId",
  "userId",
  "type",
  "sent",
  "delivered",
  "opened",
  "clicked",
  "archived",
  "deleted",
] as const;

/** Raw events in [since, until], ordered by (timestamp, id). `metadata` is its JSON text. */
export async function* eventRows(db: Queryable, o: ExportOptions): AsyncGenerator<ExportRow[]> {
  const size = o.chunkSize ?? 5000;
  let after: { ts: string; id: string } = { ts: "-infinity", id: "0" };
  for (;;) {
    const rows = await db.query<{
      id: string;
      notification_id: string;
      user_id: string;
      event_type: string;
      ts: string;
      iso: string;
      metadata: string | null;
      channel: string | null;
    }>(
      // ORDER BY names the table's columns: a bare "id" would sort by the text alias.
      `SELECT e.id::text AS id, e.notification_id::text AS notification_id, e.user_id, e.event_type, e.timestamp::text AS ts,
              to_char(e.timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS iso, e.metadata::text AS metadata, e.channel
       FROM analytics_events e
       WHERE e.timestamp >= $1 AND e.timestamp <= $2 AND (e.timestamp, e.id) > ($3::timestamptz, $4::bigint)
         AND ($6::text IS NULL OR e.user_id = $6)
       ORDER BY e.timestamp, e.id
       LIMIT $5`,
      [o.since.toISOString(), o.until.toISOString(), after.ts, after.id, size, o.userId ?? null],
    );
    if (rows.length === 0) return;
    yield rows.map((r) => ({
      id: r.id,
      notificationId: r.notification_id,
      userId: r.user_id,
      eventType: r.event_type,
      timestamp: r.iso,
      metadata: r.metadata,
      channel: r.channel,
    }));
    const last = rows[rows.length - 1]!;
    // The full-precision timestamp text is the cursor (the ISO column is rounded to ms).
    after = { ts: last.ts, id: last.id };
    if (rows.length < size) return;
  }
}

/** Per notification: distinct counts of each event type first seen in [since, until], ordered by notification id. */
export async function* aggregateRows(db: Queryable, o: ExportOptions): AsyncGenerator<ExportRow[]> {
  const size = o.chunkSize ?? 5000;
  // The nil UUID sorts first and is never generated (gen_random_uuid is v4).
  let after = "00000000-0000-0000-0000-000000000000";
  for (;;) {
    const rows = await db.query<Record<string, string | number>>(
      `SELECT notification_id::text AS "notificationId", min(user_id) AS "userId", min(notification_type) AS type,
              count(*) FILTER (WHERE event_type = 'sent')::int AS sent,
              count(*) FILTER (WHERE event_type = 'delivered')::int AS delivered,
              count(*) FILTER (WHERE event_type = 'opened')::int AS opened,
              count(*) FILTER (WHERE event_type = 'clicked')::int AS clicked,
              count(*) FILTER (WHERE event_type = 'archived')::int AS archived,
              count(*) FILTER (WHERE event_type = 'deleted')::int AS deleted
       FROM analytics_firsts
       WHERE notification_id > $1::uuid AND first_at >= $2 AND first_at <= $3
         AND ($5::text IS NULL OR user_id = $5)
       GROUP BY notification_id
       ORDER BY notification_id
       LIMIT $4`,
      [after, o.since.toISOString(), o.until.toISOString(), size, o.userId ?? null],
    );
    if (rows.length === 0) return;
    yield rows as ExportRow[];
    after = String(rows[rows.length - 1]!.notificationId);
    if (rows.length < size) return;
  }
}

/** The serialised export, chunk by chunk (one string per database page). */
export async function* exportChunks(db: Queryable, o: ExportOptions): AsyncGenerator<string> {
  const columns = o.kind === "events" ? EVENT_COLUMNS : AGGREGATE_COLUMNS;
  const pages = o.kind === "events" ? eventRows(db, o) : aggregateRows(db, o);
  if (o.format === "csv") {
    yield `${columns.join(",")}\r\n`;
    for await (const rows of pages) yield rows.map((r) => `${columns.map((c) => csvField(r[c] ?? null)).join(",")}\r\n`).join("");
    return;
  }
  yield "[";
  let firstRow = true;
  for await (const rows of pages) {
    const parts = rows.map((r) => {
      const value = o.kind === "events" ? { ...r, metadata: r.metadata == null ? null : JSON.parse(String(r.metadata)) } : r;
      return JSON.stringify(value);
    });
    yield (firstRow ? "\n" : ",\n") + parts.join(",\n");
    firstRow = false;
  }
  yield "\n]\n";
}

/**
 * One CSV field: quoted when it holds a comma, quote, CR or LF (quotes
 * doubled); null is empty. Text beginning with = + - @, tab or CR is
 * prefixed with a single quote so a spreadsheet shows it instead of running
 * it as a formula (OWASP CSV injection); numbers are data and left as they are.
 */
export function csvField(value: string | number | null): string {
  if (value === null) return "";
  const s = typeof value === "string" && /^[=+\-@\t\r]/.test(value) ? `'${value}` : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
