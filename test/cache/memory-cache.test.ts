/** The in-process Cache (src/cache, on lru-cache): expiry at the TTL on an injected clock, the size bound, bulk and prefix deletes. */
import { describe, expect, it } from "vitest";
import { MemoryCache } from "../../src/cache/index.js";

function cacheAt(start = 1_700_000_000_000, maxEntries?: number) {
  const clock = { t: start };
  return { clock, cache: new MemoryCache(() => clock.t, maxEntries) };
}

describe("MemoryCache", () => {
  it("keeps an entry until its age reaches the TTL, then misses", async () => {
    const { clock, cache } = cacheAt();
    await cache.set("k", { a: 1 }, 300);
    clock.t += 299_999;
    expect(await cache.get("k")).toEqual({ a: 1 });
    clock.t += 1;
    expect(await cache.get("k")).toBeUndefined();
  });

  it("a TTL of zero stores nothing (and drops what was there)", async () => {
    const { cache } = cacheAt();
    await cache.set("k", 1, 60);
    await cache.set("k", 2, 0);
    expect(await cache.get("k")).toBeUndefined();
  });

  it("caches null and falsy values as values", async () => {
    const { cache } = cacheAt();
    await cache.set("null", null, 60);
    await cache.set("zero", 0, 60);
    await cache.set("empty", "", 60);
    expect(await cache.get("null")).toBeNull();
    expect(await cache.get("zero")).toBe(0);
    expect(await cache.get("empty")).toBe("");
  });

  it("is bounded: beyond maxEntries the least recently used entry goes", async () => {
    const { cache } = cacheAt(undefined, 3);
    await cache.setMany([["a", 1], ["b", 2], ["c", 3]], 60);
    expect(await cache.get("a")).toBe(1); // a is now the most recently used
    await cache.set("d", 4, 60);
    expect(await cache.get("b")).toBeUndefined();
    expect([await cache.get("a"), await cache.get("c"), await cache.get("d")]).toEqual([1, 3, 4]);
  });

  it("deletes one key, several, or every key under a prefix", async () => {
    const { cache } = cacheAt();
    await cache.setMany([["user:1:a", 1], ["user:1:b", 2], ["user:2:a", 3], ["top", 4], ["other", 5]], 60);
    await cache.delete("other");
    await cache.deletePrefix("user:1:");
    expect(await cache.get("user:1:a")).toBeUndefined();
    expect(await cache.get("user:1:b")).toBeUndefined();
    expect(await cache.get("user:2:a")).toBe(3);
    await cache.deleteMany(["user:2:a", "top"]);
    expect([await cache.get("user:2:a"), await cache.get("top"), await cache.get("other")]).toEqual([undefined, undefined, undefined]);
  });
});
