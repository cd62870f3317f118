/**
 * Every read query of the analytics service. They read the rollups of
 * migration 0005, never COUNT(DISTINCT) over the raw events:
 * - analytics_firsts (one row per notification and event type) for one
 *   notification, one user, and the few minutes at the edges of a window;
 * - analytics_rollup (15-minute buckets) for platform-wide windows;
 * - analytics_group_stats for top notifications.
 * A platform window [since, until] reads whole buckets in [lo, hi) from the
 * rollup and the partial edges [since, lo) and [hi, until] from the firsts,
 * so results are exact for any window, not rounded to a bucket.
 * The per-channel counts of migration 0014 are read the same way from
 * analytics_channel_firsts and analytics_channel_rollup. Raw events added to
 * rollup figures are only those already rolled up (sql.ts: rolledUp), so an
 * answer is as of one roll-up even while newer events wait for the next.
 */
import type { Queryable } from "../db/index.js";
import type { AnalyticsChannel } from "./events.js";
import { headlineEvent, rolledUp } from "./sql.js";
import { type EventCounts, type TrendInterval, ceilQuarter, countsFrom, floorQuarter, zeroCounts } from "./metrics.js";

export interface TypeCounts {
  type: string;
  counts: EventCounts;
}

/** Distinct counts for one notification, plus its raw event counts. */
export async function notificationCounts(db: Queryable, id: string): Promise<{ counts: EventCounts; events: EventCounts; known: boolean }> {
  const [firsts, raw, exists] = await Promise.all([
    db.query<{ event_type: string; n: number }>("SELECT event_type, 1 AS n FROM analytics_firsts WHERE notification_id = $1", [id]),
    db.query<{ event_type: string; n: number }>(
      `SELECT event_type, count(*)::int AS n FROM analytics_events e WHERE notification_id = $1 AND ${rolledUp("e")} GROUP BY event_type`,
      [id],
    ),
    db.query("SELECT 1 FROM notifications WHERE id = $1", [id]),
  ]);
  return { counts: countsFrom(firsts), events: countsFrom(raw), known: exists.length > 0 || firsts.length > 0 };
}

/** Distinct counts per notification type for one user in [since, until]. */
export async function userCountsByType(db: Queryable, userId: string, since: Date, until: Date): Promise<TypeCounts[]> {
  const rows = await db.query<{ notification_type: string; event_type: string; n: number }>(
    `SELECT notification_type, event_type, count(*)::int AS n
     FROM analytics_firsts
     WHERE user_id = $1 AND first_at >= $2 AND first_at <= $3
     GROUP BY notification_type, event_type`,
    [userId, since.toISOString(), until.toISOString()],
  );
  return foldByType(rows);
}

const COLUMNS = "sent, delivered, opened, clicked, archived, deleted";
/** One firsts row as rollup columns (1 in its event type's column). */
const FIRST_AS_COLUMNS = `(event_type = 'sent')::int, (event_type = 'delivered')::int, (event_type = 'opened')::int,
  (event_type = 'clicked')::int, (event_type = 'archived')::int, (event_type = 'deleted')::int`;
const SUMS = `sum(sent)::float8 AS sent, sum(delivered)::float8 AS delivered, sum(opened)::float8 AS opened,
  sum(clicked)::float8 AS clicked, sum(archived)::float8 AS archived, sum(deleted)::float8 AS deleted`;

type CountColumns = Record<keyof EventCounts, number | string>;
const countsOf = (r: CountColumns): EventCounts => ({
  sent: Number(r.sent),
  delivered: Number(r.delivered),
  opened: Number(r.opened),
  clicked: Number(r.clicked),
  archived: Number(r.archived),
  deleted: Number(r.deleted),
});

/**
 * Platform-wide distinct counts and raw event totals per notification type in
 * [since, until]. Each edge is its own UNION branch so each is a plain range
 * scan (an OR of two ranges made the planner read the whole table).
 */
export async function platformCountsByType(
  db: Queryable,
  since: Date,
  until: Date,
): Promise<{ byType: TypeCounts[]; events: number }> {
  const { lo, hi } = interior(since, until);
  const rows = await db.query<CountColumns & { notification_type: string; events: number }>(
    `SELECT notification_type, ${SUMS}, sum(events)::float8 AS events FROM (
       SELECT notification_type, ${COLUMNS}, events FROM analytics_rollup WHERE bucket >= $3 AND bucket < $4
       UNION ALL
       SELECT notification_type, ${FIRST_AS_COLUMNS}, 0 FROM analytics_firsts WHERE first_at >= $1 AND first_at < $3
       UNION ALL
       SELECT notification_type, ${FIRST_AS_COLUMNS}, 0 FROM analytics_firsts WHERE first_at >= $4 AND first_at <= $2
       UNION ALL
       SELECT ${EVENT_TYPE_OF}, 0, 0, 0, 0, 0, 0, 1 FROM analytics_events e WHERE e.timestamp >= $1 AND e.timestamp < $3 AND ${headlineEvent("e")} AND ${rolledUp("e")}
       UNION ALL
       SELECT ${EVENT_TYPE_OF}, 0, 0, 0, 0, 0, 0, 1 FROM analytics_events e WHERE e.timestamp >= $4 AND e.timestamp <= $2 AND ${headlineEvent("e")} AND ${rolledUp("e")}
     ) w GROUP BY notification_type`,
    [since.toISOString(), until.toISOString(), lo.toISOString(), hi.toISOString()],
  );
  return {
    byType: rows.map((r) => ({ type: r.notification_type, counts: countsOf(r) })).sort((a, b) => a.type.localeCompare(b.type)),
    events: rows.reduce((s, r) => s + Number(r.events), 0),
  };
}

/** A raw event's notification type, as the ingest recorded it in its firsts. */
const EVENT_TYPE_OF = `COALESCE((SELECT f.notification_type FROM analytics_firsts f WHERE f.notification_id = e.notification_id LIMIT 1), 'unknown')`;

export interface TrendRow {
  start: Date;
  local: string;
  counts: EventCounts;
}

/** First instant of the `interval` bucket (in `tz`) that holds `days` before `now`. */
export async function trendStart(db: Queryable, interval: TrendInterval, days: number, tz: string, now: Date): Promise<Date> {
  const [row] = await db.query<{ start: Date | string }>(
    "SELECT date_trunc($1, ($2::timestamptz - make_interval(days => $3)) AT TIME ZONE $4) AT TIME ZONE $4 AS start",
    [interval, now.toISOString(), days, tz],
  );
  return new Date(row!.start);
}

/**
 * Distinct counts per `interval` bucket of local time in `tz` from `since`
 * (a bucket start) to `until`, every bucket present (zeros included).
 * Buckets are date_trunc of local time: days start at local midnight, weeks
 * on Monday (ISO), months on the 1st. With `userId`, that user's firsts only.
 */
export async function trendRows(
  db: Queryable,
  opts: { interval: TrendInterval; tz: string; since: Date; until: Date; userId?: string | undefined },
): Promise<TrendRow[]> {
  // `since` is a local bucket start, hence on a 15-minute boundary: whole
  // rollup buckets from there up to `hi`, then the firsts of the last minutes.
  const hi = new Date(Math.max(opts.since.getTime(), floorQuarter(opts.until.getTime())));
  const source = opts.userId
    ? `SELECT first_at AS at, ${FIRST_AS_COLUMNS} FROM analytics_firsts WHERE user_id = $5 AND first_at >= $3 AND first_at <= $4`
    : `SELECT bucket AS at, ${COLUMNS} FROM analytics_rollup WHERE bucket >= $3 AND bucket < $5
       UNION ALL
       SELECT first_at, ${FIRST_AS_COLUMNS} FROM analytics_firsts WHERE first_at >= $5 AND first_at <= $4`;
  const params: unknown[] = [opts.interval, opts.tz, opts.since.toISOString(), opts.until.toISOString(), opts.userId ?? hi.toISOString()];
  const rows = await db.query<CountColumns & { start: Date | string; local: string }>(
    `WITH buckets AS (
       SELECT g AS local_start, g AT TIME ZONE $2 AS start
       FROM generate_series(date_trunc($1, $3::timestamptz AT TIME ZONE $2),
                            date_trunc($1, $4::timestamptz AT TIME ZONE $2),
                            ('1 ' || $1)::interval) g
     ),
     counted AS (
       SELECT date_trunc($1, at AT TIME ZONE $2) AS local_start, ${SUMS}
       FROM (${source}) s(at, ${COLUMNS})
       GROUP BY 1
     )
     SELECT b.start, to_char(b.local_start, 'YYYY-MM-DD') AS local,
            COALESCE(c.sent, 0) AS sent, COALESCE(c.delivered, 0) AS delivered, COALESCE(c.opened, 0) AS opened,
            COALESCE(c.clicked, 0) AS clicked, COALESCE(c.archived, 0) AS archived, COALESCE(c.deleted, 0) AS deleted
     FROM buckets b LEFT JOIN counted c USING (local_start)
     ORDER BY b.local_start`,
    params,
  );
  return rows.map((r) => ({ start: new Date(r.start), local: r.local, counts: countsOf(r) }));
}

/** A count per (channel, outcome). */
export interface ChannelCountRow {
  channel: string;
  outcome: string;
  n: number;
}

/** One notification's channel outcomes (each 0 or 1). */
export function notificationChannelCounts(db: Queryable, id: string): Promise<ChannelCountRow[]> {
  return db.query<ChannelCountRow>("SELECT channel, outcome, 1 AS n FROM analytics_channel_firsts WHERE notification_id = $1", [id]);
}

/** One user's counts per channel and outcome in [since, until]. */
export function userChannelCounts(db: Queryable, userId: string, since: Date, until: Date): Promise<ChannelCountRow[]> {
  return db.query<ChannelCountRow>(
    `SELECT channel, outcome, count(*)::int AS n FROM analytics_channel_firsts
     WHERE user_id = $1 AND first_at >= $2 AND first_at <= $3
     GROUP BY channel, outcome`,
    [userId, since.toISOString(), until.toISOString()],
  );
}

/** The channel rollup's columns as (channel, outcome, n) rows. */
const CHANNEL_ROWS = `SELECT channel, 'sent' AS outcome, sum(sent)::float8 AS n FROM w GROUP BY channel
  UNION ALL SELECT channel, 'delivered', sum(delivered)::float8 FROM w GROUP BY channel
  UNION ALL SELECT channel, 'failed', sum(failed)::float8 FROM w GROUP BY channel`;
const FIRST_AS_CHANNEL_COLUMNS = "channel, (outcome = 'sent')::int, (outcome = 'delivered')::int, (outcome = 'failed')::int";

/** Platform-wide counts per channel and outcome in [since, until]: whole buckets from the rollup, the edges from the firsts. */
export function platformChannelCounts(db: Queryable, since: Date, until: Date): Promise<ChannelCountRow[]> {
  const { lo, hi } = interior(since, until);
  return db.query<ChannelCountRow>(
    `WITH w(channel, sent, delivered, failed) AS (
       SELECT channel, sent, delivered, failed FROM analytics_channel_rollup WHERE bucket >= $3 AND bucket < $4
       UNION ALL
       SELECT ${FIRST_AS_CHANNEL_COLUMNS} FROM analytics_channel_firsts WHERE first_at >= $1 AND first_at < $3
       UNION ALL
       SELECT ${FIRST_AS_CHANNEL_COLUMNS} FROM analytics_channel_firsts WHERE first_at >= $4 AND first_at <= $2
     )
     ${CHANNEL_ROWS}`,
    [since.toISOString(), until.toISOString(), lo.toISOString(), hi.toISOString()],
  );
}

/**
 * Counts per channel and outcome per `interval` bucket of local time in `tz`
 * (keyed by the bucket's local date, as trendRows), from `since` (a bucket
 * start) to `until`; one user's with `userId`, one channel's with `channel`.
 * Buckets without any are absent.
 */
export async function channelTrendRows(
  db: Queryable,
  opts: { interval: TrendInterval; tz: string; since: Date; until: Date; userId?: string | undefined; channel?: AnalyticsChannel | undefined },
): Promise<(ChannelCountRow & { local: string })[]> {
  const hi = new Date(Math.max(opts.since.getTime(), floorQuarter(opts.until.getTime())));
  const source = opts.userId
    ? `SELECT first_at, ${FIRST_AS_CHANNEL_COLUMNS} FROM analytics_channel_firsts WHERE user_id = $5 AND first_at >= $3 AND first_at <= $4`
    : `SELECT bucket, channel, sent, delivered, failed FROM analytics_channel_rollup WHERE bucket >= $3 AND bucket < $5
       UNION ALL
       SELECT first_at, ${FIRST_AS_CHANNEL_COLUMNS} FROM analytics_channel_firsts WHERE first_at >= $5 AND first_at <= $4`;
  return db.query<ChannelCountRow & { local: string }>(
    `WITH s(at, channel, sent, delivered, failed) AS (${source}),
     w(local, channel, sent, delivered, failed) AS (
       SELECT to_char(date_trunc($1, at AT TIME ZONE $2), 'YYYY-MM-DD'), channel, sent, delivered, failed FROM s
       WHERE $6::text IS NULL OR channel = $6
     )
     SELECT local, channel, 'sent' AS outcome, sum(sent)::float8 AS n FROM w GROUP BY local, channel
     UNION ALL SELECT local, channel, 'delivered', sum(delivered)::float8 FROM w GROUP BY local, channel
     UNION ALL SELECT local, channel, 'failed', sum(failed)::float8 FROM w GROUP BY local, channel`,
    [opts.interval, opts.tz, opts.since.toISOString(), opts.until.toISOString(), opts.userId ?? hi.toISOString(), opts.channel ?? null],
  );
}

export interface TopRow {
  id: string;
  broadcast: boolean;
  type: string;
  title: string | null;
  counts: EventCounts;
}

/** Groups (a broadcast, or one notification) with at least `minDelivered` deliveries, best rate first. */
export async function topGroups(db: Queryable, by: "open" | "click", limit: number, minDelivered: number): Promise<TopRow[]> {
  const numerator = by === "open" ? "opened" : "clicked";
  const rows = await db.query<{
    id: string;
    broadcast: boolean;
    type: string;
    title: string | null;
    sent: number;
    delivered: number;
    opened: number;
    clicked: number;
    archived: number;
    deleted: number;
  }>(
    `SELECT g.group_id::text AS id, g.broadcast,
            g.notification_type AS type, g.title, g.sent, g.delivered, g.opened, g.clicked, g.archived, g.deleted
     FROM analytics_group_stats g
     WHERE g.delivered >= $1
     ORDER BY g.${numerator}::float8 / g.delivered DESC, g.delivered DESC, g.group_id
     LIMIT $2`,
    [Math.max(1, minDelivered), limit],
  );
  return rows.map((r) => ({
    id: r.id,
    broadcast: r.broadcast,
    type: r.type,
    title: r.title,
    counts: { sent: r.sent, delivered: r.delivered, opened: r.opened, clicked: r.clicked, archived: r.archived, deleted: r.deleted },
  }));
}

/** Whole 15-minute buckets inside [since, until]: [lo, hi). Empty (lo = hi = since) for short windows. */
function interior(since: Date, until: Date): { lo: Date; hi: Date } {
  const lo = ceilQuarter(since.getTime());
  const hi = floorQuarter(until.getTime());
  return lo < hi ? { lo: new Date(lo), hi: new Date(hi) } : { lo: since, hi: since };
}

function foldByType(rows: { notification_type: string; event_type: string; n: number | string }[]): TypeCounts[] {
  const byType = new Map<string, EventCounts>();
  for (const r of rows) {
    let counts = byType.get(r.notification_type);
    if (!counts) {
      counts = zeroCounts();
      byType.set(r.notification_type, counts);
    }
    countsFrom([r], counts);
  }
  return [...byType].map(([type, counts]) => ({ type, counts })).sort((a, b) => a.type.localeCompare(b.type));
}
