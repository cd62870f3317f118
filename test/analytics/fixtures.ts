/** Shared helpers for the analytics tests: a service on a test database with a manual clock, rows, a CSV parser. */
import { AnalyticsIngest, AnalyticsService, type EventType } from "../../src/analytics/index.js";
import { MemoryCache } from "../../src/cache/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";

export interface AnalyticsHarness {
  db: TestDatabase;
  clock: ManualClock;
  ingest: AnalyticsIngest;
  service: AnalyticsService;
  cache: MemoryCache;
  /** Records an event at an explicit time (through the real ingest). */
  event(notificationId: string, userId: string, eventType: EventType, at: string | Date, metadata?: Record<string, unknown>): void;
  notification(n: { id: string; userId: string; type: string; title?: string; broadcastId?: string }): Promise<void>;
  close(): Promise<void>;
}

export async function analyticsHarness(now: string): Promise<AnalyticsHarness> {
  const db = await openTestDatabase();
  const clock = new ManualClock(now);
  // Not started: the tests decide when to flush (reads flush first anyway).
  const ingest = new AnalyticsIngest({ database: db, clock, logger: silentLogger, intervalMs: 60_000, batchSize: 100_000 });
  const cache = new MemoryCache(() => clock.now().getTime());
  const service = new AnalyticsService({ database: db, cache, clock, logger: silentLogger, analytics: ingest });
  return {
    db,
    clock,
    ingest,
    service,
    cache,
    event(notificationId, userId, eventType, at, metadata) {
      ingest.record({ notificationId, userId, eventType, timestamp: new Date(at), metadata: metadata ?? null });
    },
    async notification(n) {
      await db.query(
        `INSERT INTO notifications (id, user_id, type, priority, title, message, broadcast_id) VALUES ($1, $2, $3, 'normal', $4, 'body', $5)`,
        [n.id, n.userId, n.type, n.title ?? `title ${n.id.slice(0, 4)}`, n.broadcastId ?? null],
      );
    },
    async close() {
      await ingest.stop();
      await db.cleanup();
    },
  };
}

/** A readable fixed UUID: uuid(7) = 00000000-0000-4000-8000-000000000007. */
export function uuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
}

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF) returning objects keyed by the header row. */
export function parseCsv(text: string): Record<string, string>[] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      record.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      i++;
    } else field += c;
  }
  if (field !== "" || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  const [header, ...rows] = records;
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i] ?? ""])));
}

/** INSERT_EVENTS' parameters (src/analytics/sql.ts) for `delivered` in-app events of these notifications (user u<n>) at `at`. */
export function deliveredEvents(ids: number[], at: string): unknown[][] {
  return [ids.map(uuid), ids.map((n) => `u${n}`), ids.map(() => "delivered"), ids.map(() => at), ids.map(() => null), ids.map(() => "in_app")];
}

/** Every table a roll-up reads or writes: roll-up tests start each case from none. */
export const TRUNCATE_ROLLUPS =
  "TRUNCATE analytics_events, analytics_firsts, analytics_rollup, analytics_group_stats, analytics_channel_firsts, analytics_channel_rollup";

/** The one number a `SELECT ... AS n` answers (0 for NULL). */
export function countIn(db: { query<T>(sql: string): Promise<T[]> }): (sql: string) => Promise<number> {
  return async (sql) => Number((await db.query<{ n: number | string | null }>(sql))[0]!.n ?? 0);
}
