/**
 * Metric caching on the shared Cache (Redis when configured): metrics 5 min,
 * top notifications 1 h. Invalidation follows the rollups (not the ingest:
 * a raw row counts once it is rolled up): after each roll-up pass that folded
 * rows in, the touched notifications' entries are deleted and the touched
 * users' and the platform's generations are replaced, which orphans every key
 * built on the old generation without a SCAN over the key space. The pass
 * may be another instance's: with Redis the cache is shared, so whoever rolls
 * up invalidates for all.
 */
import { randomUUID } from "node:crypto";
import type { Cache } from "../cache/index.js";
import type { Logger } from "../observability/index.js";
import type { AnalyticsIngest } from "./ingest.js";

/** Longer than any entry's TTL, so an expired generation cannot revive an old entry. */
const GENERATION_TTL = 2 * 3600;
const PREFIX = "analytics:";

/** One per (ingest, cache) pair, so several services on one runtime invalidate once. */
const instances = new WeakMap<AnalyticsIngest, WeakMap<Cache, AnalyticsCache>>();

export class AnalyticsCache {
  static for(cache: Cache, ingest: AnalyticsIngest, logger: Logger): AnalyticsCache {
    let byCache = instances.get(ingest);
    if (!byCache) {
      byCache = new WeakMap();
      instances.set(ingest, byCache);
    }
    let instance = byCache.get(cache);
    if (!instance) {
      instance = new AnalyticsCache(cache, logger);
      byCache.set(cache, instance);
      ingest.rollups.onRolledUp((rolled) => instance!.invalidate(rolled.notifications, rolled.users));
    }
    return instance;
  }

  private constructor(
    private readonly cache: Cache,
    private readonly logger: Logger,
  ) {}

  notificationKey(id: string): string {
    return `${PREFIX}n:${id}`;
  }

  async userKey(userId: string, what: string): Promise<string> {
    const gen = (await this.cache.get<string>(`${PREFIX}ugen:${userId}`)) ?? "0";
    return `${PREFIX}u:${userId}:${gen}:${what}`;
  }

  async platformKey(what: string): Promise<string> {
    const gen = (await this.cache.get<string>(`${PREFIX}pgen`)) ?? "0";
    return `${PREFIX}p:${gen}:${what}`;
  }

  /** The cached value under `key`, else `compute()` stored for `ttlSeconds`. */
  async remember<T>(key: string, ttlSeconds: number, compute: () => Promise<T>): Promise<T> {
    const hit = await this.cache.get<T>(key);
    if (hit !== undefined) return hit;
    const value = await compute();
    await this.cache.set(key, value, ttlSeconds);
    return value;
  }

  async invalidate(notifications: readonly string[], users: readonly string[]): Promise<void> {
    // Two commands per roll-up pass, however many notifications and users it touched.
    const generations: [string, string][] = [[`${PREFIX}pgen`, randomUUID()], ...[...users].map((u): [string, string] => [`${PREFIX}ugen:${u}`, randomUUID()])];
    const ops = [this.cache.setMany(generations, GENERATION_TTL), this.cache.deleteMany([...notifications].map((id) => this.notificationKey(id)))];
    const failed = (await Promise.allSettled(ops)).filter((r) => r.status === "rejected").length;
    if (failed > 0) this.logger.warn({ failed }, "analytics cache invalidation incomplete");
  }
}
