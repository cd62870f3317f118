/**
 * A small TTL cache for preferences, metrics and top lists. Redis when
 * configured (shared by every instance, so a delete invalidates everywhere),
 * with a short-lived local copy of the per-user entries every creation reads
 * (NearCache, near-cache.ts); else in process.
 */
import type { Redis } from "ioredis";
import { LRUCache } from "lru-cache";

export interface Cache {
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, ttlSeconds: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Sets several keys with one TTL in one round trip. */
  setMany(entries: readonly (readonly [string, unknown])[], ttlSeconds: number): Promise<void>;
  /** Deletes several keys in one round trip. */
  deleteMany(keys: readonly string[]): Promise<void>;
  /** Deletes every key starting with `prefix`. */
  deletePrefix(prefix: string): Promise<void>;
}

/** Entries a MemoryCache keeps at most; beyond it the least recently used goes. */
export const MEMORY_CACHE_MAX_ENTRIES = 50_000;

/** In process (lru-cache): entries expire after their TTL, and at most `maxEntries` are kept. */
export class MemoryCache implements Cache {
  // Boxed: lru-cache takes `undefined` as "delete", and a cached value may be anything.
  private readonly entries: LRUCache<string, { value: unknown }>;

  constructor(now: () => number = Date.now, maxEntries = MEMORY_CACHE_MAX_ENTRIES) {
    // ttlResolution 0: read the clock at every check (an injected clock may jump).
    this.entries = new LRUCache({ max: maxEntries, perf: { now }, ttlResolution: 0 });
  }

  async get<T>(key: string): Promise<T | undefined> {
    return this.entries.get(key)?.value as T | undefined;
  }
  async set(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    // lru-cache keeps an entry while its age is <= ttl (0: forever); here it expires when its age reaches the TTL.
    const ttl = Math.ceil(ttlSeconds * 1000) - 1;
    if (ttl > 0) this.entries.set(key, { value }, { ttl });
    else this.entries.delete(key);
  }
  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }
  async setMany(entries: readonly (readonly [string, unknown])[], ttlSeconds: number): Promise<void> {
    for (const [key, value] of entries) await this.set(key, value, ttlSeconds);
  }
  async deleteMany(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.entries.delete(key);
  }
  async deletePrefix(prefix: string): Promise<void> {
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
  }
}

export class RedisCache implements Cache {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "herald:cache:",
  ) {}

  /**
   * While Redis is unreachable, reads miss and fills are skipped at once
   * instead of waiting in ioredis's offline queue (a creation must not hang
   * on its preferences cache during an outage). Deletes still queue: an
   * invalidation must not be lost.
   */
  private get connected(): boolean {
    return this.redis.status === "ready";
  }

  async get<T>(key: string): Promise<T | undefined> {
    if (!this.connected) return undefined;
    try {
      const raw = await this.redis.get(this.prefix + key);
      return raw === null ? undefined : (JSON.parse(raw) as T);
    } catch {
      return undefined; // a cache miss, not an outage
    }
  }
  async set(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    if (!this.connected) return;
    await this.redis.set(this.prefix + key, JSON.stringify(value), "EX", ttlSeconds).catch(() => undefined);
  }
  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key).catch(() => undefined);
  }
  async setMany(entries: readonly (readonly [string, unknown])[], ttlSeconds: number): Promise<void> {
    if (entries.length === 0) return; // generation bumps are invalidations: they queue like deletes
    const pipeline = this.redis.pipeline();
    for (const [key, value] of entries) pipeline.set(this.prefix + key, JSON.stringify(value), "EX", ttlSeconds);
    await pipeline.exec().catch(() => undefined);
  }
  async deleteMany(keys: readonly string[]): Promise<void> {
    // UNLINK frees memory off Redis's main thread; chunks keep each command small.
    for (let i = 0; i < keys.length; i += 1000) {
      await this.redis.unlink(...keys.slice(i, i + 1000).map((k) => this.prefix + k)).catch(() => undefined);
    }
  }
  async deletePrefix(prefix: string): Promise<void> {
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", `${escapeGlob(this.prefix + prefix)}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await this.redis.del(...keys);
    } while (cursor !== "0");
  }
}

/** A prefix taken literally by SCAN MATCH: a user id such as "*" must not match every user's keys. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

export {
  type Invalidation,
  type InvalidationKind,
  NEAR_CACHE_CHANNEL,
  NEAR_CACHE_MAX_ENTRIES,
  NEAR_CACHE_PREFIXES,
  NEAR_CACHE_TTL_MS,
  NearCache,
  type NearCacheOptions,
} from "./near-cache.js";
