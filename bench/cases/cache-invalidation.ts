/**
 * Cross-instance cache invalidation: how long after instance A deletes a
 * near-cached key (what a preference change does once committed) instance B
 * has dropped its local copy, against a bare Redis PUBLISH -> message round
 * trip between two plain connections, measured in the same run. Herald's path
 * is that round trip with a DEL sent ahead of the PUBLISH on the same
 * connection (one write, one Redis turn more), so a little over 1x the
 * baseline is the physical expectation. The README's cross-instance figure comes from here;
 * its guarantee (5 s at worst, a lost message) is checked by
 * test/notifications/cluster-preferences.test.ts.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { RedisBus } from "../../src/bus/index.js";
import { type Invalidation, NEAR_CACHE_CHANNEL, NearCache, RedisCache } from "../../src/cache/index.js";
import type { BenchOptions } from "../lib/context.js";
import type { CaseResult } from "../lib/report.js";
import { median, percentile } from "../lib/stats.js";

const NAME = "cache invalidation: A's delete to B's copy dropped";
const GOAL_RATIO = 3;

interface Instance {
  origin: string;
  bus: RedisBus;
  near: NearCache;
}

async function instance(url: string, busPrefix: string): Promise<Instance> {
  const bus = new RedisBus(url, busPrefix);
  await bus.client.ping();
  const origin = `bench-${randomUUID().slice(0, 8)}`;
  // As src/runtime.ts builds it: the shared cache on the bus's publishing client.
  const near = new NearCache({ shared: new RedisCache(bus.client, `${busPrefix}cache:`), sharedWritesOrderedWithBus: true, bus, sharedAvailable: () => bus.client.status === "ready", origin });
  await near.start();
  return { origin, bus, near };
}

/** Resolves with the time (performance.now()) the next message from `origin` of `kind` reaches `bus`, after every handler subscribed before it. */
function messageWatch(bus: RedisBus) {
  let waiting: { origin: string; kind: Invalidation["kind"]; resolve: (at: number) => void } | undefined;
  const ready = bus.subscribe(NEAR_CACHE_CHANNEL, (raw) => {
    const at = performance.now();
    const message = JSON.parse(raw) as Invalidation;
    if (waiting && message.origin === waiting.origin && message.kind === waiting.kind) {
      const { resolve } = waiting;
      waiting = undefined;
      resolve(at);
    }
  });
  return {
    ready,
    next(origin: string, kind: Invalidation["kind"]): Promise<number> {
      return new Promise((resolve) => (waiting = { origin, kind, resolve }));
    },
  };
}

export async function cacheInvalidation(o: BenchOptions): Promise<CaseResult[]> {
  const url = process.env.REDIS_URL;
  const rows = (p: number) => `${NAME}, p${p}`;
  if (!url) {
    return [50, 99].map((p) => ({ name: rows(p), unit: "ms", herald: [], baseline: [], baselineName: "bare PUBLISH -> message", higherIsBetter: false, goal: `<= ${GOAL_RATIO}x`, saturated: false, errors: [], note: "skipped: REDIS_URL not set" }));
  }
  const samples = o.quick ? 300 : 1000;
  const busPrefix = `herald-bench-${randomUUID()}:`;
  const a = await instance(url, busPrefix);
  const b = await instance(url, busPrefix);
  // Subscribed after B's NearCache: RedisBus runs a message's handlers in order, so B has dropped its copy when this one runs.
  const atB = messageWatch(b.bus);
  await atB.ready;
  const publisher = new Redis(url);
  const subscriber = new Redis(url);
  const channel = `${busPrefix}bare`;
  let bareArrived: ((at: number) => void) | undefined;
  subscriber.on("message", () => bareArrived?.(performance.now()));
  await subscriber.subscribe(channel);
  const errors: string[] = [];
  const herald: number[][] = [[], []];
  const bare: number[][] = [[], []];
  try {
    for (let round = 0; round < o.rounds; round++) {
      const heraldMs: number[] = [];
      const bareMs: number[] = [];
      for (let i = 0; i < samples; i++) {
        // B holds a local copy: it fills Redis, hears its own fill, then reads the value back.
        const key = `prefs:bench-${round}-${i}`;
        const filled = atB.next(b.origin, "fill");
        await b.near.set(key, { soundVolume: 70 }, 60);
        await filled;
        await b.near.get(key);
        const before = b.near.size;
        if (before !== 1) {
          errors.push(`round ${round}: B held ${before} local copies before the change, not 1`);
          break;
        }
        const dropped = atB.next(a.origin, "change");
        const started = performance.now();
        await a.near.delete(key);
        heraldMs.push((await dropped) - started);
        if (b.near.size !== 0) errors.push(`round ${round}: B still held its copy after A's invalidation arrived`);

        const arrived = new Promise<number>((resolve) => (bareArrived = resolve));
        const sent = performance.now();
        await publisher.publish(channel, JSON.stringify({ origin: a.origin, kind: "change", keys: [key] }));
        bareMs.push((await arrived) - sent);
      }
      for (const [j, p] of [50, 99].entries()) {
        herald[j]!.push(percentile(heraldMs, p));
        bare[j]!.push(percentile(bareMs, p));
      }
    }
  } finally {
    await a.near.stop();
    await b.near.stop();
    await a.bus.close();
    await b.bus.close();
    const keys = await publisher.keys(`${busPrefix}*`);
    if (keys.length > 0) await publisher.del(...keys);
    publisher.disconnect();
    subscriber.disconnect();
  }
  return [50, 99].map((p, j) => {
    const medianRatio = median(herald[j]!.map((h, r) => h / bare[j]![r]!));
    return {
      name: rows(p),
      unit: "ms",
      herald: herald[j]!,
      baseline: bare[j]!,
      baselineName: "bare PUBLISH -> message",
      higherIsBetter: false,
      goal: `<= ${GOAL_RATIO}x`,
      goalMet: medianRatio <= GOAL_RATIO,
      saturated: false,
      errors: j === 0 ? errors : [],
      ...(j === 0 ? { note: `${samples} changes per round, alternating with a bare publish; Herald's path is the baseline's with a DEL ahead of the PUBLISH on the same connection, so a little over 1x is what the wire allows` } : {}),
    };
  });
}
