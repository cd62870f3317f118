/**
 * Limits shared by the HTTP layer and the realtime server: fixed-window counters (Redis or in-process),
 * the client-address rule (TRUST_PROXY) and the per-address failed-authentication budget. Built once by
 * the composition root (src/herald.ts) and given to both.
 */
import type { Redis } from "ioredis";
import { type TrustFunction, type TrustProxy, trustFunction } from "./address.js";
import { AuthFailureLimit } from "./auth-failures.js";
import { LocalCounter, RedisCounter, type WindowCounter } from "./counter.js";

export { type TrustFunction, type TrustProxy, addressOf, trustFunction } from "./address.js";
export { AuthFailureLimit, type Bucket, DEFAULT_AUTH_FAILURES_PER_MINUTE, WINDOW_MS } from "./auth-failures.js";
export { type Hit, LocalCounter, RedisCounter, type WindowCounter } from "./counter.js";

export interface Limits {
  counter: WindowCounter;
  trust: TrustFunction;
  authFailures: AuthFailureLimit;
  close(): Promise<void>;
}

export interface LimitsOptions {
  trustProxy: TrustProxy;
  authFailuresPerMinute: number;
  /** The bus's Redis client: the counters get a connection of their own to the same server. */
  redis?: Redis | undefined;
  /** Key prefix ("herald:" by default), so deployments (and test runs) sharing a Redis keep separate counters. */
  redisPrefix?: string | undefined;
}

export async function createLimits(o: LimitsOptions): Promise<Limits> {
  // Its own Redis connection, without auto-pipelining: ioredis sends a script command that goes through
  // an auto-pipeline as EVAL with the whole Lua text every time (its "already loaded" mark is per
  // pipeline), which made the Redis check about a sixth of the server time of a 429.
  const redis = o.redis?.duplicate({ enableAutoPipelining: false });
  if (redis) {
    redis.on("error", () => undefined); // the bus's connections report the outage
    // Serve once the shared counters are reachable (or after 2 s without Redis): a limiter that
    // started on local counters and moved to Redis mid-window would split a credential's budget.
    await new Promise<void>((resolve) => {
      if (redis.status === "ready") return resolve();
      const timer = setTimeout(resolve, 2_000);
      redis.once("ready", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  const counter = redis ? new RedisCounter(redis, `${o.redisPrefix ?? "herald:"}ratelimit:`, new LocalCounter()) : new LocalCounter();
  const trust = trustFunction(o.trustProxy);
  return {
    counter,
    trust,
    authFailures: new AuthFailureLimit(counter, o.authFailuresPerMinute, trust),
    async close() {
      redis?.disconnect();
    },
  };
}
