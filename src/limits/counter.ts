/**
 * Fixed-window counters: in Redis when reachable (shared by every instance), in this process while it is
 * not. What the HTTP rate limits and the WebSocket upgrades' failed-authentication budget count with.
 */
import type { Redis } from "ioredis";

export interface Hit {
  count: number;
  /** Milliseconds until the window ends. */
  resetMs: number;
}

/** Fixed-window counting: the hit's count in the current window of `windowMs` for `key` (every hit is counted). */
export interface WindowCounter {
  hit(key: string, windowMs: number): Promise<Hit>;
}

export class LocalCounter implements WindowCounter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private nextSweep = 0;
  constructor(private readonly now: () => number = Date.now) {}

  async hit(key: string, windowMs: number): Promise<Hit> {
    const now = this.now();
    if (now >= this.nextSweep) this.sweep(now, windowMs);
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count += 1;
    return { count: w.count, resetMs: w.resetAt - now };
  }

  /** Ended windows go, so the map holds only the callers of the current window. */
  private sweep(now: number, windowMs: number): void {
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
    this.nextSweep = now + windowMs;
  }
}

// Every hit of a batch in one round trip, in order (a key hit twice counts twice): INCR and the
// window's expiry per key; an expiry lost (PTTL -1) is set again. Returns count, ttl per key.
const HITS_SCRIPT = `
local out = {}
for i = 1, #KEYS do
  local c = redis.call('INCR', KEYS[i])
  local t = redis.call('PTTL', KEYS[i])
  if t < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[i]); t = tonumber(ARGV[i]) end
  out[2 * i - 1] = c
  out[2 * i] = t
end
return out`;

type Scripted = {
  /** (number of keys, ...keys, ...windowMs) */
  heraldRateHits(...args: (string | number)[]): Promise<number[]>;
};

/** Hits sent in one script call at most (keeps each call short on Redis's one thread). */
const MAX_HITS_PER_CALL = 500;

interface PendingHit {
  key: string;
  windowMs: number;
  resolve: (hit: Hit) => void;
}

/**
 * Counters in Redis under `prefix`, shared by every instance. While the
 * client is not ready the local counters serve at once: ioredis queues a
 * command while disconnected and rejects it only after its retries (seconds),
 * and a flood must stay limited (per instance) during a Redis outage.
 *
 * The hits of one event-loop turn go to Redis together, in one script call
 * at the turn's end (setImmediate), each answered with its exact count: one
 * write and one script run per turn instead of one per request (ioredis's
 * auto-pipelining flushes per tick, and each request is a tick of its own).
 * The rate limiter's Redis writes were 9% of the main thread's time under
 * load (issue 17's profile).
 */
export class RedisCounter implements WindowCounter {
  private pending: PendingHit[] = [];
  private scheduled = false;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly local: LocalCounter,
  ) {
    if (!("heraldRateHits" in redis)) redis.defineCommand("heraldRateHits", { lua: HITS_SCRIPT });
  }

  hit(key: string, windowMs: number): Promise<Hit> {
    if (this.redis.status !== "ready") return this.local.hit(key, windowMs);
    return new Promise((resolve) => {
      this.pending.push({ key, windowMs, resolve });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.send());
    });
  }

  private send(): void {
    const all = this.pending;
    this.pending = [];
    this.scheduled = false;
    if (this.redis.status !== "ready") {
      // Lost since the hits were taken: the local counters answer, as they would have then.
      for (const h of all) void this.local.hit(h.key, h.windowMs).then(h.resolve);
      return;
    }
    for (let i = 0; i < all.length; i += MAX_HITS_PER_CALL) void this.call(all.slice(i, i + MAX_HITS_PER_CALL));
  }

  private async call(hits: PendingHit[]): Promise<void> {
    try {
      const args: (string | number)[] = [hits.length];
      for (const h of hits) args.push(`${this.prefix}${h.key}`);
      for (const h of hits) args.push(h.windowMs);
      const out = await (this.redis as unknown as Scripted).heraldRateHits.call(this.redis, ...args);
      for (let i = 0; i < hits.length; i++) hits[i]!.resolve({ count: out[2 * i]!, resetMs: out[2 * i + 1]! });
    } catch {
      // The call failed (connection lost, or one key of the batch unusable, e.g. of another type):
      // the local counters answer, so no hit of the batch goes uncounted and a flood stays limited here.
      for (const h of hits) void this.local.hit(h.key, h.windowMs).then(h.resolve);
    }
  }
}
