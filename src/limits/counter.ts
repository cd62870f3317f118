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

/** Fixed-window counting: the hit's count in the current window of `windowMs` for `key`; undefined = not counted. */
export interface WindowCounter {
  hit(key: string, windowMs: number): Promise<Hit | undefined>;
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

// INCR and the window's expiry in one round trip; an expiry lost (PTTL -1) is set again.
const HIT_SCRIPT = `
local c = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return {c, t}`;

type Scripted = {
  heraldRateHit(k: string, ms: number): Promise<[number, number]>;
};

/**
 * Counters in Redis under `prefix`, shared by every instance. While the
 * client is not ready the local counters serve at once: ioredis queues a
 * command while disconnected and rejects it only after its retries (seconds),
 * and a flood must stay limited (per instance) during a Redis outage.
 */
export class RedisCounter implements WindowCounter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly local: LocalCounter,
  ) {
    if (!("heraldRateHit" in redis)) redis.defineCommand("heraldRateHit", { numberOfKeys: 1, lua: HIT_SCRIPT });
  }

  async hit(key: string, windowMs: number): Promise<Hit | undefined> {
    if (this.redis.status !== "ready") return this.local.hit(key, windowMs);
    try {
      const [count, resetMs] = await (this.redis as unknown as Scripted).heraldRateHit.call(this.redis, `${this.prefix}${key}`, windowMs);
      return { count, resetMs };
    } catch {
      return undefined; // a command lost with the connection: let the request through rather than fail it
    }
  }
}
