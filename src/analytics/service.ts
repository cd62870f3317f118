/**
 * The guide's AnalyticsService: tracking through the batched ingest, and the
 * metrics of docs/delivery.md (Analytics) read from the rollups (queries.ts), cached
 * (metrics 5 min, top notifications 1 h) and invalidated when the ingest
 * flushes new events (cache.ts). Reads first flush this process's pending
 * events, so a read right after `trackEvent` sees it.
 */
import type { Cache } from "../cache/index.js";
import type { Database } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { AnalyticsIngest } from "./ingest.js";
import { notFound, validationError } from "../errors/index.js";
import { isEventType, EVENT_TYPES } from "./events.js";
import { check } from "./validate.js";
import { exportChunks } from "./export.js";
import { type Metrics, type TrendInterval, withRates, zeroCounts, type EventCounts } from "./metrics.js";
import { notificationCounts, platformCountsByType, topGroups, trendRows, trendStart, userCountsByType } from "./queries.js";
import { AnalyticsCache } from "./cache.js";
import { NOTIFICATION_TYPES } from "../protocol/index.js";

export interface AnalyticsDeps {
  database: Database;
  cache: Cache;
  clock: Clock;
  logger: Logger;
  analytics: AnalyticsIngest;
}

export interface NotificationMetrics extends Metrics {
  notificationId: string;
  /** Raw events per type (repeat opens included), for context; the rates use the distinct counts. */
  events: EventCounts;
}
export interface UserMetrics extends Metrics {
  userId: string;
  days: number;
  since: string;
  until: string;
}
export interface TypeMetrics extends Metrics {
  type: string;
}
export interface TrendBucket extends Metrics {
  /** First instant of the bucket (UTC ISO). */
  start: string;
  /** Local date of the bucket start in the requested zone, YYYY-MM-DD. */
  local: string;
}
export interface Trends {
  interval: TrendInterval;
  timeZone: string;
  since: string;
  until: string;
  buckets: TrendBucket[];
}
export interface TopNotification extends Metrics {
  /** Broadcast id for a broadcast, else the notification id. */
  id: string;
  broadcast: boolean;
  type: string;
  title: string | null;
}
export interface Overview extends Metrics {
  days: number | null;
  since: string | null;
  until: string;
  /** Raw events recorded in the window. */
  events: number;
  byType: TypeMetrics[];
}

const DAY_MS = 86_400_000;

export class AnalyticsService {
  private readonly cache: AnalyticsCache;

  constructor(readonly deps: AnalyticsDeps) {
    this.cache = AnalyticsCache.for(deps.cache, deps.analytics, deps.logger);
  }

  /** Records an event (batched; written within the ingest interval). Throws HERALD_VALIDATION on bad input. */
  async trackEvent(notificationId: string, userId: string, eventType: string, metadata?: Record<string, unknown> | null): Promise<void> {
    check.uuid(notificationId, "notificationId");
    check.eventUserId(userId);
    const type = check.eventType(eventType);
    check.metadata(metadata);
    const { analytics, clock } = this.deps;
    analytics.record({ notificationId, userId, eventType: type, metadata: metadata ?? null, timestamp: clock.now() });
  }

  /**
   * What a provider may do: track what its client observed (`opened`,
   * `clicked`) on one of its own notifications; another's (or none) is 404.
   * Sent, delivered, archived and deleted are recorded by Herald itself.
   */
  async trackOwnEvent(userId: string, notificationId: string, eventType: string, metadata?: Record<string, unknown> | null): Promise<void> {
    if (!isEventType(eventType)) return this.trackEvent(notificationId, userId, eventType, metadata);
    check.uuid(notificationId, "notificationId");
    const { database } = this.deps;
    const owned = await database.query("SELECT 1 FROM notifications WHERE id = $1 AND user_id = $2", [notificationId, userId]);
    if (owned.length === 0) throw notFound("Notification");
    check.clientEventType(eventType);
    await this.trackEvent(notificationId, userId, eventType, metadata);
  }

  /** An admin's tracking: any event type, recorded for the notification's owner; an unknown notification is 404. */
  async trackEventForOwner(notificationId: string, eventType: string, metadata?: Record<string, unknown> | null): Promise<void> {
    check.uuid(notificationId, "notificationId");
    const { database } = this.deps;
    const [owner] = await database.query<{ user_id: string }>("SELECT user_id FROM notifications WHERE id = $1", [notificationId]);
    if (!owner) throw notFound("Notification");
    await this.trackEvent(notificationId, owner.user_id, eventType, metadata);
  }

  /** Distinct counts and rates of one notification. `requireExisting` makes an unknown id a 404. */
  async getNotificationMetrics(notificationId: string, options: { requireExisting?: boolean } = {}): Promise<NotificationMetrics> {
    check.uuid(notificationId, "notificationId");
    const { database } = await this.fresh();
    const cache = this.cache;
    const result = await cache.remember(cache.notificationKey(notificationId), 300, async () => {
      const { counts, events, known } = await notificationCounts(database, notificationId);
      return { known, metrics: { notificationId, ...withRates(counts), events } };
    });
    if (options.requireExisting && !result.known) throw notFound("Notification");
    return result.metrics;
  }

  /** One user's distinct counts and rates over the last `days` days (default 30). */
  async getUserMetrics(userId: string, days = 30): Promise<UserMetrics> {
    const d = check.days(days);
    const { database, clock } = await this.fresh();
    const cache = this.cache;
    return cache.remember(await cache.userKey(userId, `metrics:${d}`), 300, async () => {
      const until = clock.now();
      const since = new Date(until.getTime() - d * DAY_MS);
      const total = zeroCounts();
      for (const t of await userCountsByType(database, userId, since, until)) addCounts(total, t.counts);
      return { userId, days: d, since: since.toISOString(), until: until.toISOString(), ...withRates(total) };
    });
  }

  /** One user's metrics per notification type over the last `days` days; every known type listed. */
  async getMetricsByType(userId: string, days = 30): Promise<TypeMetrics[]> {
    const d = check.days(days);
    const { database, clock } = await this.fresh();
    const cache = this.cache;
    return cache.remember(await cache.userKey(userId, `by-type:${d}`), 300, async () => {
      const until = clock.now();
      const rows = await userCountsByType(database, userId, new Date(until.getTime() - d * DAY_MS), until);
      return byTypeWithAllTypes(rows);
    });
  }

  /** Distinct counts per day, week (ISO, Monday) or month of local time in `timeZone`, over the last `days` days. */
  async getTrends(options: { interval?: string; days?: number; timeZone?: string; userId?: string } = {}): Promise<Trends> {
    const interval = check.interval(options.interval ?? "day");
    const days = check.days(options.days ?? 30);
    const timeZone = check.timeZone(options.timeZone ?? "UTC");
    const { database, clock } = await this.fresh();
    const cache = this.cache;
    const what = `trends:${interval}:${days}:${timeZone}`;
    const key = options.userId ? await cache.userKey(options.userId, what) : await cache.platformKey(what);
    return cache.remember(key, 300, async () => {
      const until = clock.now();
      const since = await trendStart(database, interval, days, timeZone, until).catch(rethrowZone(timeZone));
      const rows = await trendRows(database, { interval, tz: timeZone, since, until, userId: options.userId });
      return {
        interval,
        timeZone,
        since: since.toISOString(),
        until: until.toISOString(),
        buckets: rows.map((r) => ({ start: r.start.toISOString(), local: r.local, ...withRates(r.counts) })),
      };
    });
  }

  /**
   * Best groups (a broadcast, or a single notification) by open or click
   * rate among those delivered at least `minDelivered` times (default 10).
   */
  async getTopNotifications(options: { by?: string; limit?: number; minDelivered?: number } = {}): Promise<TopNotification[]> {
    const by = check.topBy(options.by ?? "open");
    const limit = check.limit(options.limit ?? 10);
    const minDelivered = check.minDelivered(options.minDelivered ?? 10);
    const { database } = await this.fresh();
    const cache = this.cache;
    return cache.remember(await cache.platformKey(`top:${by}:${limit}:${minDelivered}`), 3600, async () =>
      (await topGroups(database, by, limit, minDelivered)).map((g) => ({
        id: g.id,
        broadcast: g.broadcast,
        type: g.type,
        title: g.title,
        ...withRates(g.counts),
      })),
    );
  }

  /** Platform-wide totals (all time, or the last `days` days) with a per-type breakdown. */
  async getOverview(options: { days?: number } = {}): Promise<Overview> {
    const days = options.days === undefined ? null : check.days(options.days);
    const { database, clock } = await this.fresh();
    const cache = this.cache;
    return cache.remember(await cache.platformKey(`overview:${days ?? "all"}`), 300, async () => {
      const until = clock.now();
      const since = days === null ? null : new Date(until.getTime() - days * DAY_MS);
      const { byType, events } = await platformCountsByType(database, since ?? new Date(0), until);
      const total = zeroCounts();
      for (const t of byType) addCounts(total, t.counts);
      return {
        days,
        since: since?.toISOString() ?? null,
        until: until.toISOString(),
        ...withRates(total),
        events,
        byType: byTypeWithAllTypes(byType),
      };
    });
  }

  /**
   * The export as a stream of text chunks (CSV or a JSON array), read in
   * pages of 5,000 rows. Options are validated here, before any chunk.
   */
  exportData(options: { format?: string; kind?: string; days?: number; userId?: string; chunkSize?: number }): AsyncGenerator<string> {
    const format = check.exportFormat(options.format ?? "csv");
    const kind = check.exportKind(options.kind ?? "events");
    const days = options.days === undefined ? undefined : check.days(options.days);
    const self = this;
    return (async function* () {
      const { database, clock } = await self.fresh();
      const until = clock.now();
      const since = days === undefined ? new Date(0) : new Date(until.getTime() - days * DAY_MS);
      yield* exportChunks(database, { format, kind, since, until, userId: options.userId, chunkSize: options.chunkSize });
    })();
  }

  /** Dependencies, after this process's pending events are written (read-your-writes). */
  private async fresh(): Promise<AnalyticsDeps> {
    const deps = this.deps;
    await deps.analytics.flush().catch((err) => deps.logger.warn({ err }, "analytics flush before read failed"));
    return deps;
  }
}

function addCounts(into: EventCounts, add: EventCounts): void {
  for (const t of EVENT_TYPES) into[t] += add[t];
}

function byTypeWithAllTypes(rows: { type: string; counts: EventCounts }[]): TypeMetrics[] {
  const map = new Map<string, EventCounts>(KNOWN_TYPES.map((t) => [t, zeroCounts()]));
  for (const r of rows) addCounts(map.get(r.type) ?? (map.set(r.type, zeroCounts()).get(r.type) as EventCounts), r.counts);
  return [...map].sort(([a], [b]) => a.localeCompare(b)).map(([type, counts]) => ({ type, ...withRates(counts) }));
}

const KNOWN_TYPES: readonly string[] = NOTIFICATION_TYPES;


/** PostgreSQL and ICU may disagree on a zone name: the database's refusal is still a 400. */
function rethrowZone(tz: string) {
  return (err: unknown): never => {
    if ((err as { code?: string }).code === "22023") throw validationError(`Unknown time zone ${tz}`, [{ field: "tz", message: "not known to the database" }]);
    throw err;
  };
}
