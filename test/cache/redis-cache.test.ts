/** RedisCache against a real Redis (skipped without REDIS_URL): prefixes are literal, never glob patterns. */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisCache } from "../../src/cache/index.js";

const url = process.env.REDIS_URL;

describe.skipIf(!url)("RedisCache", () => {
  let redis: Redis;
  let cache: RedisCache;
  const prefix = `herald:test:${process.pid}:${Date.now()}:`;

  beforeAll(async () => {
    redis = new Redis(url!);
    cache = new RedisCache(redis, prefix);
    await redis.ping();
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it("deletePrefix takes the prefix literally: a user id of '*' or '[a-z]*' drops only its own entries", async () => {
    for (const user of ["*", "[a-z]*", "alice", "bob"]) await cache.set(`analytics:u:${user}:metrics`, { user }, 60);
    await cache.deletePrefix("analytics:u:*:");
    await cache.deletePrefix("analytics:u:[a-z]*:");
    expect(await cache.get("analytics:u:*:metrics")).toBeUndefined();
    expect(await cache.get("analytics:u:[a-z]*:metrics")).toBeUndefined();
    expect(await cache.get("analytics:u:alice:metrics")).toEqual({ user: "alice" });
    expect(await cache.get("analytics:u:bob:metrics")).toEqual({ user: "bob" });
  });
});
