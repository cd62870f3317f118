/**
 * The guide's AnalyticsService: tracking through the batched ingest, and the
 * metrics of docs/delivery.md (Analytics) read from the rollups (queries.ts), cached
 * (metrics 5 min, top notifications 1 h) and invalidated when a roll-up
 * pass folds new events in (cache.ts). Reads first flush this process's
 * pending events and catch the rollups up (roller.ts), so a read right after
 * `trackEvent` sees it, and the overview and trends say as of when their
 * figures are exact (`asOf`). Beside the headline,
 * `byChannel` counts sent, delivered and failed per channel (migration 0014).
 */
import type { Cache } from "../cache/index.js";
import type { Database } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { AnalyticsIngest } from "./ingest.js";
import { notFound, validationError } from "../errors/index.js";
import { ANALYTICS_CHANNELS, type AnalyticsChannel, EVENT_TYPES, isEventType } from "./events.js";
import { check } from "./validate.js";
import { exportChunks } from "./export.js";
import {
  type ByChannel,
  type EventCounts,
  type Metrics,
  type TrendInterval,
  channelCountsFrom,
  withRates,
  zeroByChannel,
  zeroCounts,
} from "./metrics.js";
import {
  channelTrendRows,
  notificationChannelCounts,
  notificationCounts,
  platformChannelCounts,
  platformCountsByType,
  topGroups,
  trendRows,
  trendStart,
  userChannelCounts,
  userCountsByType,
} from "./queries.js";
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
  /** Which channels sent, delivered or failed it (0 or 1 each). */
  byChannel: ByChannel;
}
export interface UserMetrics extends Metrics {
  userId: string;
  days: number;
  since: string;
  until: string;
  /** Per channel: notifications sent, delivered (where the channel reports it) and failed; digests per e-mail. */
  byChannel: ByChannel;
}
export interface TypeMetrics extends Metrics {
  type: string;
}
export interface TrendBucket extends Metrics {
  /** First instant of the bucket (UTC ISO). */
  start: string;
  /** Local date of the bucket start in the requested zone, YYYY-MM-DD. */
  local: string;
  /** Every channel's counts, or only the requested channel's. */
  byChannel: Partial<ByChannel>;
}
export interface Trends {
  interval: TrendInterval;
  /** Every event committed before this instant is counted (ISO; the rollups' catch-up before the figures were computed). */
  asOf: string | null;
  timeZone: string;
  /** The channel the buckets' `byChannel` is narrowed to, or null for all. */
  channel: AnalyticsChannel | null;
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
  /** Every event committed before this instant is counted (ISO; the rollups' catch-up before the figures were computed). */
  asOf: string | null;
  days: number | null;
  since: string | null;
  until: string;
  /** Raw events recorded in the window. */
  events: number;
  byType: TypeMetrics[];
  byChannel: ByChannel;
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
      const [{ counts, events, known }, channels] = await Promise.all([
        notificationCounts(database, notificationId),
        notificationChannelCounts(database, notificationId),
      ]);
      const byChannel = channelCountsFrom(channels, zeroByChannel()) as ByChannel;
      return { known, metrics: { notificationId, ...withRates(counts), events, byChannel } };
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
      const [byType, channels] = await Promise.all([userCountsByType(database, userId, since, until), userChannelCounts(database, userId, since, until)]);
      for (const t of byType) addCounts(total, t.counts);
      const byChannel = channelCountsFrom(channels, zeroByChannel()) as ByChannel;
      return { userId, days: d, since: since.toISOString(), until: until.toISOString(), ...withRates(total), byChannel };
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

  /**
   * Distinct counts per day, week (ISO, Monday) or month of local time in
   * `timeZone`, over the last `days` days, with each bucket's counts per
   * channel (only `channel`'s when given).
   */
  async getTrends(options: { interval?: string; days?: number; timeZone?: string; userId?: string; channel?: string } = {}): Promise<Trends> {
    const interval = check.interval(options.interval ?? "day");
    const days = check.days(options.days ?? 30);
    const timeZone = check.timeZone(options.timeZone ?? "UTC");
    const channel = options.channel === undefined ? null : check.channel(options.channel);
    const { database, clock, asOf } = await this.fresh();
    const cache = this.cache;
    const what = `trends:${interval}:${days}:${timeZone}:${channel ?? "all"}`;
    const key = options.userId ? await cache.userKey(options.userId, what) : await cache.platformKey(what);
    // asOf is this read's catch-up, not the cached computation's: the cache is cleared whenever a pass folds rows in.
    const trends = await cache.remember(key, 300, async (): Promise<Omit<Trends, "asOf">> => {
      const until = clock.now();
      const since = await trendStart(database, interval, days, timeZone, until).catch(rethrowZone(timeZone));
      const range = { interval, tz: timeZone, since, until, userId: options.userId };
      const [rows, channelRows] = await Promise.all([trendRows(database, range), channelTrendRows(database, { ...range, channel: channel ?? undefined })]);
      const byLocal = new Map<string, typeof channelRows>();
      for (const r of channelRows) {
        const list = byLocal.get(r.local);
        if (list) list.push(r);
        else byLocal.set(r.local, [r]);
      }
      const channels = channel ? [channel] : ANALYTICS_CHANNELS;
      return {
        interval,
        timeZone,
        channel,
        since: since.toISOString(),
        until: until.toISOString(),
        buckets: rows.map((r) => ({
          start: r.start.toISOString(),
          local: r.local,
          ...withRates(r.counts),
          byChannel: channelCountsFrom(byLocal.get(r.local) ?? [], zeroByChannel(channels)),
        })),
      };
    });
    return { ...trends, asOf };
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
    const { database, clock, asOf } = await this.fresh();
    const cache = this.cache;
    const overview = await cache.remember(await cache.platformKey(`overview:${days ?? "all"}`), 300, async (): Promise<Omit<Overview, "asOf">> => {
      const until = clock.now();
      const since = days === null ? null : new Date(until.getTime() - days * DAY_MS);
      const [{ byType, events }, channels] = await Promise.all([
        platformCountsByType(database, since ?? new Date(0), until),
        platformChannelCounts(database, since ?? new Date(0), until),
      ]);
      const total = zeroCounts();
      for (const t of byType) addCounts(total, t.counts);
      return {
        days,
        since: since?.toISOString() ?? null,
        until: until.toISOString(),
        ...withRates(total),
        events,
        byType: byTypeWithAllTypes(byType),
        byChannel: channelCountsFrom(channels, zeroByChannel()) as ByChannel,
      };
    });
    return { ...overview, asOf };
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

  /**
   * Dependencies, after this process's pending events are written and the
   * rollups caught up (read-your-writes, and every instance's committed
   * events), with the instant the rollups are exact as of (null if no
   * catch-up has completed in this process).
   */
  private async fresh(): Promise<AnalyticsDeps & { asOf: string | null }> {
    const deps = this.deps;
    await deps.analytics.flush().catch((err) => deps.logger.warn({ err }, "analytics flush before read failed"));
    return { ...deps, asOf: deps.analytics.rollups.asOf?.toISOString() ?? null };
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
