/**
 * NearCache on real Redis with a real Redis bus (skipped without REDIS_URL):
 * two instances, A and B, share one key prefix and one bus prefix, as two
 * Herald processes would. Proves: another instance's write reaches a local
 * copy with its invalidation; the writer reads its own write at once; a fill
 * that an invalidation overtook is not kept, locally nor (a reader's set of a
 * row read before the change) in Redis, also when several readers on one
 * instance missed the key together; a reader that never sets blocks fills for
 * at most the local TTL; a lost invalidation costs at most the local TTL; a
 * bus reconnect and a Redis outage serve nothing local.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { RedisBus } from "../../src/bus/index.js";
import { type Cache, type Invalidation, NEAR_CACHE_CHANNEL, NEAR_CACHE_TTL_MS, NearCache, RedisCache } from "../../src/cache/index.js";
import { watchInvalidation } from "./invalidations.js";

const url = process.env.REDIS_URL;

interface Instance {
  origin: string;
  bus: RedisBus;
  shared: RedisCache;
  near: NearCache;
}

describe.skipIf(!url)("NearCache over Redis, two instances", () => {
  const prefix = `herald-near-${randomUUID()}:`;
  const cachePrefix = `${prefix}cache:`;
  const raw = url ? new Redis(url) : undefined;
  const started: Instance[] = [];

  async function instance(
    options: { now?: () => number; shared?: (real: RedisCache) => Cache; available?: () => boolean; busPrefix?: string; maxEntries?: number; ordered?: boolean } = {},
  ): Promise<Instance> {
    const origin = `i-${randomUUID().slice(0, 8)}`;
    const busPrefix = options.busPrefix ?? prefix;
    const bus = new RedisBus(url!, busPrefix);
    await bus.client.ping(); // RedisCache skips reads and fills until its connection is ready
    const shared = new RedisCache(bus.client, `${busPrefix}cache:`);
    const near = new NearCache({
      shared: options.shared ? options.shared(shared) : shared,
      bus,
      sharedAvailable: options.available ?? (() => bus.client.status === "ready"),
      origin,
      // A clock that moves only when a test moves it: a local copy's life, a pending miss and a recent fill
      // (NEAR_CACHE_TTL_MS each) must not run out between two steps of a test on a loaded machine.
      now: options.now ?? (() => 1_000_000),
      maxEntries: options.maxEntries,
      // As src/runtime.ts builds it: RedisCache on the bus's publishing client.
      sharedWritesOrderedWithBus: options.ordered ?? true,
    });
    await near.start();
    const made = { origin, bus, shared, near };
    started.push(made);
    return made;
  }

  /** B writes `value` and A has seen B's invalidation, so nothing in flight can drop what A reads next. */
  async function seed(a: Instance, b: Instance, key: string, value: unknown): Promise<void> {
    const { arrived } = await watchInvalidation(a.bus, b.origin, key);
    await b.near.set(key, value, 3600);
    await arrived;
  }

  /** What Redis holds for a near key (null: nothing). */
  const inRedis = (key: string) => raw!.get(cachePrefix + key);

  /** Writes Redis behind every instance's back: an invalidation that was lost. */
  const writeBehindTheBack = (key: string, value: unknown) => raw!.set(cachePrefix + key, JSON.stringify(value), "EX", 3600);

  afterEach(async () => {
    for (const { near, bus } of started.splice(0)) {
      await near.stop();
      await bus.close();
    }
  });
  afterAll(async () => {
    const keys = await raw!.keys("herald-near-*");
    if (keys.length > 0) await raw!.del(...keys);
    raw!.disconnect();
  });

  it("a change on B is what A serves once B's invalidation reached A, though A held a local copy", async () => {
    const [a, b] = [await instance(), await instance()];
    const key = `prefs:${randomUUID()}`;
    await seed(a, b, key, { soundVolume: 70 });
    expect(await a.near.get(key)).toEqual({ soundVolume: 70 });
    // The copy is local: Redis changed behind A's back and A still serves what it holds.
    await writeBehindTheBack(key, { soundVolume: 1 });
    expect(await a.near.get(key)).toEqual({ soundVolume: 70 });

    const { arrived } = await watchInvalidation(a.bus, b.origin, key);
    await b.near.set(key, { soundVolume: 20 }, 3600);
    await arrived;
    expect(await a.near.get(key)).toEqual({ soundVolume: 20 });

    const { arrived: deleted } = await watchInvalidation(a.bus, b.origin, key);
    await b.near.deleteMany([key, "analytics:ugen:x"]);
    await deleted;
    expect(await a.near.get(key)).toBeUndefined();
  });

  it("the writer reads its own write at once, before its invalidation comes back", async () => {
    const [a, b] = [await instance(), await instance()];
    const key = `tz:${randomUUID()}`;
    await seed(a, b, key, "UTC");
    expect(await a.near.get(key)).toBe("UTC");
    expect(a.near.size).toBe(1);
    // B filled the key just before this change: when the change reaches B, B deletes its fill again (the fill
    // may have overtaken it). That delete must be done before A fills, or it may land after A's fill.
    const undone = await watchInvalidation(a.bus, b.origin, key, "undo");
    await a.near.delete(key);
    expect(a.near.size).toBe(0);
    expect(await a.near.get(key)).toBeUndefined();
    await undone.arrived;
    await a.near.set(key, "Asia/Tokyo", 3600);
    expect(await a.near.get(key)).toBe("Asia/Tokyo");
  });

  it("a fill overtaken by an invalidation is not kept: A read the old value, B deleted it, B's message reached A before A's answer", async () => {
    // A's reads of Redis are real, but their answers are held until the test lets them through.
    let hold: { answered: () => void; release: Promise<void> } | undefined;
    const a = await instance({
      shared: (real) =>
        Object.assign(Object.create(real) as RedisCache, {
          async get<T>(key: string): Promise<T | undefined> {
            const value = await real.get<T>(key);
            const held = hold;
            if (held) {
              held.answered();
              await held.release;
            }
            return value;
          },
        }),
    });
    const b = await instance();
    const key = `recipient:${randomUUID()}`;
    const gate = () => {
      let answered!: () => void;
      let release!: () => void;
      const answeredP = new Promise<void>((r) => (answered = r));
      hold = { answered, release: new Promise<void>((r) => (release = r)) };
      return { answered: answeredP, release };
    };

    // Control: a held fill that nothing overtook is kept.
    await seed(a, b, key, { inDirectory: true });
    let g = gate();
    let reading = a.near.get(key);
    await g.answered;
    g.release();
    expect(await reading).toEqual({ inDirectory: true });
    expect(a.near.size).toBe(1);

    // The race: A's read has its (old) answer, then B's delete and its invalidation reach A first.
    const raced = `recipient:${randomUUID()}`;
    await seed(a, b, raced, { inDirectory: true });
    g = gate();
    reading = a.near.get(raced);
    await g.answered;
    const { arrived } = await watchInvalidation(a.bus, b.origin, raced);
    await b.near.delete(raced);
    await arrived;
    g.release();
    hold = undefined;
    expect(await reading).toEqual({ inDirectory: true }); // what Redis answered, to this one caller
    expect(a.near.size).toBe(1); // the control's key only
    expect(await a.near.get(raced)).toBeUndefined();
  });

  it("Redis's own fill race: a set after a miss that a delete overtook is not written, here or from another instance", async () => {
    const [a, b] = [await instance(), await instance()];
    // Control: miss, then fill: written.
    const plain = `prefs:${randomUUID()}`;
    expect(await a.near.get(plain)).toBeUndefined();
    await a.near.set(plain, { soundVolume: 70 }, 3600);
    expect(await inRedis(plain)).not.toBeNull();

    // A missed and read the old row; B's change (delete) reaches A before A's set.
    const key = `prefs:${randomUUID()}`;
    expect(await a.near.get(key)).toBeUndefined();
    const { arrived } = await watchInvalidation(a.bus, b.origin, key);
    await b.near.delete(key);
    await arrived;
    await a.near.set(key, { soundVolume: 70 }, 3600);
    expect(await inRedis(key)).toBeNull();

    // The same with the writer on A itself.
    const own = `tz:${randomUUID()}`;
    expect(await a.near.get(own)).toBeUndefined();
    await a.near.delete(own);
    await a.near.set(own, "UTC", 3600);
    expect(await inRedis(own)).toBeNull();
  });

  it("two readers on one instance miss one key and another instance's change reaches it between their sets: no old row stays in Redis, and the key fills again after", async () => {
    const [a, b] = [await instance(), await instance()];
    const key = `prefs:${randomUUID()}`;
    // A batch of creations for one user: both readers miss Redis and read the old row.
    expect(await Promise.all([a.near.get(key), a.near.get(key)])).toEqual([undefined, undefined]);
    // The first sets before any change was heard: written.
    await a.near.set(key, { soundVolume: "old-1" }, 3600);
    expect(await inRedis(key)).toBe(JSON.stringify({ soundVolume: "old-1" }));
    // B commits a change and deletes the key; A hears it (and deletes its recent fill again).
    const heard = await watchInvalidation(a.bus, b.origin, key);
    const undone = await watchInvalidation(b.bus, a.origin, key, "undo");
    await b.near.delete(key);
    await heard.arrived;
    // The second reader sets the row it read before the change.
    await a.near.set(key, { soundVolume: "old-2" }, 3600);
    await undone.arrived;
    expect(await inRedis(key)).toBeNull();
    expect(await b.near.get(key)).toBeUndefined();

    // A reader after the change fills as usual.
    expect(await a.near.get(key)).toBeUndefined();
    await a.near.set(key, { soundVolume: "new" }, 3600);
    expect(await inRedis(key)).toBe(JSON.stringify({ soundVolume: "new" }));
  });

  it("two readers on one instance miss one key, another instance's change reaches it before either set: neither is written (by key, and by prefix as an erasure deletes)", async () => {
    const [a, b] = [await instance(), await instance()];
    for (const change of ["key", "prefix"] as const) {
      const user = randomUUID();
      const key = `prefs:${user}`;
      expect(await Promise.all([a.near.get(key), a.near.get(key)])).toEqual([undefined, undefined]);
      const heard = await watchInvalidation(a.bus, b.origin, key);
      await (change === "key" ? b.near.delete(key) : b.near.deletePrefix(`prefs:${user}`));
      await heard.arrived;
      await a.near.set(key, { soundVolume: "old-1" }, 3600);
      await a.near.set(key, { soundVolume: "old-2" }, 3600);
      expect(await inRedis(key), change).toBeNull();
      expect(await b.near.get(key), change).toBeUndefined();
    }
  });

  it("a reader that missed after the change sets first, the overtaken one after it: the old row is not written", async () => {
    const [a, b] = [await instance(), await instance()];
    const key = `prefs:${randomUUID()}`;
    expect(await a.near.get(key)).toBeUndefined(); // reader 1: will read the old row
    const heard = await watchInvalidation(a.bus, b.origin, key);
    await b.near.delete(key);
    await heard.arrived;
    expect(await a.near.get(key)).toBeUndefined(); // reader 2: reads the new row
    // A set does not say whose it is: reader 2's is not written either, as it could be reader 1's.
    await a.near.set(key, { soundVolume: "new" }, 3600);
    await a.near.set(key, { soundVolume: "old" }, 3600);
    expect(await inRedis(key)).toBeNull();
  });

  it("a key whose pending miss was pushed out by newer keys is not filled until NEAR_CACHE_TTL_MS after that (what happened to it is unknown; injected clock)", async () => {
    let now = 1_000_000;
    const a = await instance({ now: () => now, maxEntries: 2 });
    const b = await instance();
    const [first, second, third] = [`prefs:${randomUUID()}`, `prefs:${randomUUID()}`, `prefs:${randomUUID()}`];
    expect(await a.near.get(first)).toBeUndefined();
    expect(await a.near.get(second)).toBeUndefined();
    expect(await a.near.get(third)).toBeUndefined();
    // B's change of the first key reaches A after A forgot that key's miss: it finds nothing to mark.
    const heard = await watchInvalidation(a.bus, b.origin, first);
    await b.near.delete(first);
    await heard.arrived;
    await a.near.set(first, { soundVolume: "old" }, 3600);
    expect(await inRedis(first)).toBeNull();
    now += NEAR_CACHE_TTL_MS;
    expect(await a.near.get(first)).toBeUndefined();
    await a.near.set(first, { soundVolume: "new" }, 3600);
    expect(await inRedis(first)).toBe(JSON.stringify({ soundVolume: "new" }));
  });

  it("a reader that never sets blocks fills of its key for at most NEAR_CACHE_TTL_MS after its miss, once a change overtook it (injected clock)", async () => {
    let now = 1_000_000;
    const a = await instance({ now: () => now });
    const b = await instance();
    const key = `tz:${randomUUID()}`;
    expect(await Promise.all([a.near.get(key), a.near.get(key)])).toEqual([undefined, undefined]);
    const heard = await watchInvalidation(a.bus, b.origin, key);
    await b.near.delete(key);
    await heard.arrived;
    await a.near.set(key, "old", 3600); // one overtaken reader; the other failed and never sets
    expect(await inRedis(key)).toBeNull();
    // A later reader's set could be the missing one's: not written while that one may still come.
    now += NEAR_CACHE_TTL_MS - 1;
    expect(await a.near.get(key)).toBeUndefined();
    await a.near.set(key, "new", 3600);
    expect(await inRedis(key)).toBeNull();
    now += 1;
    expect(await a.near.get(key)).toBeUndefined();
    await a.near.set(key, "new", 3600);
    expect(await inRedis(key)).toBe(JSON.stringify("new"));
  });

  it("Redis's own fill race, later: a delete from another instance that arrives after our fill deletes it again", async () => {
    const [a, b] = [await instance(), await instance()];
    const key = `recipient:${randomUUID()}`;
    expect(await a.near.get(key)).toBeUndefined();
    const filled = await watchInvalidation(a.bus, a.origin, key);
    await a.near.set(key, { inDirectory: false }, 3600);
    await filled.arrived;
    expect(await raw!.get(cachePrefix + key)).not.toBeNull();
    // B's delete ran in Redis before A's set; its message reaches A only now.
    const undone = await watchInvalidation(b.bus, a.origin, key);
    const change: Invalidation = { origin: b.origin, kind: "change", keys: [key] };
    await b.bus.publish(NEAR_CACHE_CHANNEL, JSON.stringify(change));
    await undone.arrived;
    expect(await raw!.get(cachePrefix + key)).toBeNull();
  });

  it("A's delete reaches B with the DEL itself, before A has its answer, and B then reads the change (writes ordered on the bus's connection)", async () => {
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    // A's shared delete sends its DEL at once and hands its answer back only when the test says.
    const holdingAnswers = (real: RedisCache): Cache =>
      Object.assign(Object.create(real) as RedisCache, {
        delete: async (key: string) => {
          const sent = real.delete(key);
          await answered;
          await sent;
        },
      });
    const [a, b] = [await instance({ shared: holdingAnswers }), await instance()];
    const key = `prefs:${randomUUID()}`;
    await seed(b, a, key, { soundVolume: 70 });
    expect(await b.near.get(key)).toEqual({ soundVolume: 70 });
    const { arrived } = await watchInvalidation(b.bus, a.origin, key, "change");
    const deleting = a.near.delete(key);
    await arrived;
    // Redis ran the DEL before the PUBLISH: B's next read misses instead of filling the old value again.
    expect(await inRedis(key)).toBeNull();
    expect(await b.near.get(key)).toBeUndefined();
    answer();
    await deleting;
  });

  it("a lost invalidation is served at most NEAR_CACHE_TTL_MS (injected clock)", async () => {
    let now = 1_000_000;
    const a = await instance({ now: () => now });
    const b = await instance();
    const key = `prefs:${randomUUID()}`;
    await seed(a, b, key, { soundVolume: 70 });
    expect(await a.near.get(key)).toEqual({ soundVolume: 70 });
    await writeBehindTheBack(key, { soundVolume: 5 });
    now += NEAR_CACHE_TTL_MS - 1;
    expect(await a.near.get(key)).toEqual({ soundVolume: 70 });
    now += 1;
    expect(await a.near.get(key)).toEqual({ soundVolume: 5 });
  });

  it("a reconnect of the bus drops every local copy (what was published meanwhile is lost)", async () => {
    // Alone on its own prefix, so its subscriber is the one connection of that name.
    const own = `herald-near-${randomUUID()}:`;
    const a = await instance({ busPrefix: own });
    const keys = [`prefs:${randomUUID()}`, `tz:${randomUUID()}`];
    for (const key of keys) {
      const { arrived } = await watchInvalidation(a.bus, a.origin, key);
      await a.near.set(key, "before", 3600);
      await arrived;
      expect(await a.near.get(key)).toBe("before");
      await raw!.set(`${own}cache:${key}`, JSON.stringify("after"), "EX", 60);
      expect(await a.near.get(key)).toBe("before");
    }
    expect(a.near.size).toBe(2);
    // A fill begun before the reconnect may carry a row from before a change whose message was lost.
    const pending = `recipient:${randomUUID()}`;
    expect(await a.near.get(pending)).toBeUndefined();

    const reconnected = new Promise<void>((resolve) => a.bus.onReconnect(resolve));
    const clients = (await raw!.call("CLIENT", "LIST", "TYPE", "pubsub")) as string;
    const id = clients
      .split("\n")
      .filter((line) => line.includes(` name=${own}sub `))
      .map((line) => /\bid=(\d+)/.exec(line)?.[1]);
    expect(id).toHaveLength(1);
    await raw!.client("KILL", "ID", id[0]!);
    await reconnected;
    expect(a.near.size).toBe(0);
    for (const key of keys) expect(await a.near.get(key)).toBe("after");
    await a.near.set(pending, { inDirectory: true }, 3600);
    expect(await raw!.get(`${own}cache:${pending}`)).toBeNull();
  });

  it("while Redis is unreachable nothing local is served, and copies from before the outage are gone after it", async () => {
    let available = true;
    const a = await instance({ available: () => available });
    const b = await instance();
    const key = `prefs:${randomUUID()}`;
    await seed(a, b, key, { soundVolume: 70 });
    expect(await a.near.get(key)).toEqual({ soundVolume: 70 });
    await writeBehindTheBack(key, { soundVolume: 5 });
    available = false;
    // Read from the shared cache, as RedisCache alone would (which misses when Redis is really down).
    expect(await a.near.get(key)).toEqual({ soundVolume: 5 });
    expect(a.near.size).toBe(0);
    available = true;
    expect(await a.near.get(key)).toEqual({ soundVolume: 5 });
  });

  it("analytics keys are not near-cached: every read asks Redis", async () => {
    const [a, b] = [await instance(), await instance()];
    await b.near.set("analytics:p:metrics", { sent: 1 }, 60);
    expect(await a.near.get("analytics:p:metrics")).toEqual({ sent: 1 });
    await writeBehindTheBack("analytics:p:metrics", { sent: 2 });
    expect(await a.near.get("analytics:p:metrics")).toEqual({ sent: 2 });
    expect(a.near.size).toBe(0);
  });
});
